/**
 * server.max_buffered_body_size: the bytes of /v1 request bodies held in memory at once, across
 * every request. Sent on raw sockets so a body can be held half-sent while others arrive.
 */
import { afterEach, describe, expect, spyOn, test } from 'bun:test'
import { connect, type Socket } from 'node:net'
import { type Harness, harness, waitFor } from '../helpers'

let h: Harness
const sockets: Socket[] = []
let logged: ReturnType<typeof spyOn> | undefined
afterEach(async () => {
  logged?.mockRestore()
  logged = undefined
  for (const s of sockets.splice(0)) s.destroy()
  await h?.close()
})

interface Raw {
  socket: Socket
  /** The first response on the connection: status, headers (lower-case names), body. */
  response: Promise<{ status: number; headers: Record<string, string>; body: string }>
  /** Resolves when the server has closed the connection. */
  closed: Promise<void>
}

/** Opens a connection and writes `head` (request line and headers) and `first` bytes of body. */
function raw(port: number, head: string, first = ''): Raw {
  const socket = connect(port, '127.0.0.1')
  sockets.push(socket)
  socket.on('error', () => {})
  let text = ''
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()))
  const response = new Promise<{ status: number; headers: Record<string, string>; body: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no response in 10 s; so far: ${JSON.stringify(text.slice(0, 200))}`)), 10000)
    const done = () => {
      const end = text.indexOf('\r\n\r\n')
      if (end === -1) return false
      const [statusLine, ...lines] = text.slice(0, end).split('\r\n')
      const headers: Record<string, string> = {}
      for (const l of lines) headers[l.slice(0, l.indexOf(':')).toLowerCase()] = l.slice(l.indexOf(':') + 1).trim()
      const body = text.slice(end + 4)
      if (Buffer.byteLength(body) < Number(headers['content-length'] ?? 0)) return false
      clearTimeout(timer)
      resolve({ status: Number(statusLine!.split(' ')[1]), headers, body })
      return true
    }
    socket.on('data', (d) => {
      text += d.toString()
      done()
    })
    socket.on('close', () => {
      if (!done()) {
        clearTimeout(timer)
        reject(new Error(`closed without a response; got ${JSON.stringify(text.slice(0, 200))}`))
      }
    })
  })
  response.catch(() => {})
  socket.write(head + first)
  return { socket, response, closed }
}

const post = (length: number | 'chunked') =>
  `POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n${length === 'chunked' ? 'Transfer-Encoding: chunked' : `Content-Length: ${length}`}\r\n\r\n`

/** A JSON body for instance `model`, exactly `size` bytes long. */
function body(model: string, size: number): string {
  const start = `{"model":"${model}","messages":[{"role":"user","content":"hi"}],"pad":"`
  return `${start}${'a'.repeat(size - start.length - 2)}"}`
}

const chunk = (s: string) => `${Buffer.byteLength(s).toString(16)}\r\n${s}\r\n`

async function buffered(): Promise<number> {
  const text = await (await h.request('GET', '/metrics')).text()
  const m = /^llamactl_buffered_request_body_bytes (\d+)$/m.exec(text)
  if (!m) throw new Error('no llamactl_buffered_request_body_bytes in /metrics')
  return Number(m[1])
}

async function create(name: string) {
  const res = await h.json('POST', `/api/v1/instances/${name}?wait=ready`, { backend_options: { model: 'x' } })
  expect(res.status).toBe(201)
}

describe('bytes of request bodies held at once', () => {
  test('past server.max_buffered_body_size a /v1 body is refused with 503 and Retry-After; declared lengths up front, chunked ones as they arrive', async () => {
    h = await harness({ LLAMACTL_MAX_INFERENCE_BODY_SIZE: '600000', LLAMACTL_MAX_BUFFERED_BODY_SIZE: '1000000' })
    await create('m')
    const port = Number(new URL(h.listen()).port)
    const full = body('m', 500000)

    // Two half-sent bodies of 500,000 declared bytes each take the whole budget.
    const a = raw(port, post(500000), full.slice(0, 1000))
    const b = raw(port, post(500000), full.slice(0, 1000))
    await waitFor(async () => (await buffered()) === 1000000, 10000)

    // A third is refused from its Content-Length alone, before any of its body is read.
    const c = raw(port, post(500000))
    const refused = await c.response
    expect(refused.status).toBe(503)
    expect(refused.headers['retry-after']).toBe('1')
    expect(JSON.parse(refused.body).error).toContain('server.max_buffered_body_size')
    // 413 still comes first for a body over the per-request limit.
    const tooBig = await raw(port, post(700000)).response
    expect(tooBig.status).toBe(413)

    // The first completes: its 500,000 bytes go back.
    a.socket.write(full.slice(1000))
    expect((await a.response).status).toBe(200)
    await waitFor(async () => (await buffered()) === 500000, 10000)

    // A chunked body is counted as it arrives: 200,000 and 400,000 fit beside b, 600,000 does not.
    const d = raw(port, post('chunked'))
    const chunked = body('m', 600000)
    d.socket.write(chunk(chunked.slice(0, 200000)))
    await waitFor(async () => (await buffered()) >= 700000, 10000)
    d.socket.write(chunk(chunked.slice(200000, 400000)))
    await waitFor(async () => (await buffered()) >= 900000, 10000)
    d.socket.write(chunk(chunked.slice(400000)) + '0\r\n\r\n')
    const late = await d.response
    expect(late.status).toBe(503)
    expect(late.headers['retry-after']).toBe('1')
    await waitFor(async () => (await buffered()) === 500000, 10000)

    b.socket.write(full.slice(1000))
    expect((await b.response).status).toBe(200)
    await waitFor(async () => (await buffered()) === 0, 10000)

    // With room again, the same chunked body goes through.
    const e = raw(port, post('chunked'))
    e.socket.write(chunk(chunked.slice(0, 300000)) + chunk(chunked.slice(300000)) + '0\r\n\r\n')
    expect((await e.response).status).toBe(200)
    await waitFor(async () => (await buffered()) === 0, 10000)
  })

  test('no reservation leaks: after refused, failed, aborted and completed requests the count is back to 0', async () => {
    h = await harness({ LLAMACTL_MAX_INFERENCE_BODY_SIZE: '300000', LLAMACTL_MAX_BUFFERED_BODY_SIZE: '400000', LLAMACTL_REQUIRE_INFERENCE_AUTH: 'true', LLAMACTL_INFERENCE_KEYS: 'inference-key-0123456789' })
    await create('m')
    await create('other')
    const keyHead = (length: number) => post(length).replace('Host:', 'Authorization: Bearer inference-key-0123456789\r\nHost:')
    const port = Number(new URL(h.listen()).port)
    const full = body('m', 300000)
    logged = spyOn(console, 'error')
    for (let round = 0; round < 5; round++) {
      // one holds 300,000 bytes half-sent; a second of 300,000 is refused
      const holder = raw(port, keyHead(300000), full.slice(0, 100))
      await waitFor(async () => (await buffered()) === 300000, 10000)
      expect((await raw(port, keyHead(300000)).response).status).toBe(503)
      // small bodies that fail after they were read: no model, unknown instance, not JSON
      for (const [text, status] of [['{"messages":[]}', 400], ['{"model":"ghost"}', 400], ['{"model": ', 400]] as const) {
        expect((await raw(port, keyHead(Buffer.byteLength(text)), text).response).status).toBe(status)
      }
      // a client that goes away mid-body
      const quitter = raw(port, keyHead(50000), full.slice(0, 100))
      await waitFor(async () => (await buffered()) === 350000, 10000)
      quitter.socket.destroy()
      await waitFor(async () => (await buffered()) === 300000, 10000)
      holder.socket.write(full.slice(100))
      expect((await holder.response).status).toBe(200)
      await waitFor(async () => (await buffered()) === 0, 10000)
    }
    // A client leaving mid-body is its own doing (499), not an internal error with a dump.
    expect(logged.mock.calls.filter((c: unknown[]) => String(c[0]).includes('internal error'))).toEqual([])
    // a stream: the reservation is given back once the backend has the body, not when the stream ends
    const res = await fetch(`http://127.0.0.1:${port}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer inference-key-0123456789' },
      body: JSON.stringify({ model: 'm', stream: true, max_tokens: 3, messages: [{ role: 'user', content: 'hi' }] }),
    })
    expect(res.status).toBe(200)
    await res.text()
    expect(await buffered()).toBe(0)
    // a wrong key never gets a body read at all
    const denied = await raw(port, post(1000).replace('Host:', 'Authorization: Bearer wrong-key-0000000000\r\nHost:')).response
    expect(denied.status).toBe(401)
    expect(await buffered()).toBe(0)
  })
})
