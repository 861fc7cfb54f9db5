/** Raw HTTP/1.x on a socket: requests exactly as written, which fetch would normalise away. */
import { connect } from 'node:net'

export interface RawResponse {
  status: number
  headers: Record<string, string>
  body: string
  raw: string
}

/** Sends `text` as it is and reads until the server closes (or `timeoutMs`). */
export function sendRaw(port: number, text: string, timeoutMs = 5000): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    const chunks: Buffer[] = []
    const timer = setTimeout(() => {
      socket.destroy()
      finish()
    }, timeoutMs)
    let done = false
    const finish = () => {
      if (done) return
      done = true
      clearTimeout(timer)
      const raw = Buffer.concat(chunks).toString('latin1')
      const head = raw.indexOf('\r\n\r\n')
      const lines = raw.slice(0, head === -1 ? raw.length : head).split('\r\n')
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '')
      if (!m) return reject(new Error(`no HTTP response to ${JSON.stringify(text.slice(0, 200))}: ${JSON.stringify(raw.slice(0, 200))}`))
      const headers: Record<string, string> = {}
      for (const l of lines.slice(1)) {
        const c = l.indexOf(':')
        if (c > 0) headers[l.slice(0, c).toLowerCase()] = l.slice(c + 1).trim()
      }
      resolve({ status: Number(m[1]), headers, body: head === -1 ? '' : raw.slice(head + 4), raw })
    }
    socket.on('data', (d: Buffer) => chunks.push(d))
    socket.on('end', finish)
    socket.on('close', finish)
    socket.on('error', () => finish())
    socket.write(text)
  })
}

/** A request line, headers and body, with Connection: close. */
export function rawRequest(method: string, target: string, headers: string[], body = '', version = 'HTTP/1.1'): string {
  const h = [...headers, 'Connection: close']
  if (body) h.push('Content-Type: application/json', `Content-Length: ${Buffer.byteLength(body)}`)
  return `${method} ${target} ${version}\r\n${h.map((x) => `${x}\r\n`).join('')}\r\n${body}`
}

/** Runs `jobs` with at most `width` at once. */
export async function pool<T>(jobs: (() => Promise<T>)[], width = 16): Promise<T[]> {
  const out: T[] = new Array(jobs.length)
  let next = 0
  await Promise.all(
    Array.from({ length: Math.min(width, jobs.length) }, async () => {
      while (next < jobs.length) {
        const i = next++
        out[i] = await jobs[i]!()
      }
    }),
  )
  return out
}
