/**
 * The benchmark's measurements check every answer: a wrong status, a wrong body or a stream cut
 * short throws an error naming the measurement (bench/check.ts), against a small server that
 * answers each way.
 */
import { afterAll, describe, expect, test } from 'bun:test'
import { isChat, isHealth, readChecked, streamChat } from '../../bench/check'

const chunk = (content: string) => `data: ${JSON.stringify({ object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content } }] })}\n\n`
const sse = (body: string) => new Response(body, { headers: { 'content-type': 'text/event-stream' } })
const json = (data: unknown, status = 200) => Response.json(data, { status })

const server = Bun.serve({
  hostname: '127.0.0.1',
  port: 0,
  fetch(req) {
    switch (new URL(req.url).pathname) {
      case '/health': return json({ status: 'ok' })
      case '/loading': return json({ error: { code: 503, message: 'Loading model' } }, 503)
      case '/chat': return json({ object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content: 'hi' } }] })
      case '/html': return new Response('<html>debug</html>', { headers: { 'content-type': 'text/html' } })
      case '/list': return json({ object: 'list', data: [] })
      case '/stream': return sse(`${chunk('a')}${chunk(' b')}data: [DONE]\n\n`)
      case '/stream-cut': return sse(`${chunk('a')}${chunk(' b')}`)
      case '/stream-no-token': return sse('data: [DONE]\n\n')
      case '/stream-not-chunks': return sse(`data: {"object":"error"}\n\ndata: [DONE]\n\n`)
      case '/stream-as-json': return json({ object: 'chat.completion', choices: [] })
      case '/stream-502': return json({ error: 'backend gone' }, 502)
      default: return json({ error: 'not found' }, 404)
    }
  },
})
afterAll(() => server.stop(true))
const url = (p: string) => `http://127.0.0.1:${server.port}${p}`
const get = async (measure: string, p: string, ok: (j: Record<string, any>) => boolean) => readChecked(measure, `GET ${p}`, await fetch(url(p)), ok)
const streamOf = (p: string) => streamChat('streaming', url(p), '{}', {})

describe('plain answers', () => {
  test('a right answer passes', async () => {
    await get('latency.health', '/health', isHealth)
    await get('latency.chat', '/chat', isChat)
  })

  test('a quick 503 throws, naming the measurement and the status', async () => {
    const e = await get('on_demand', '/loading', isChat).catch((x: Error) => x)
    expect(e).toBeInstanceOf(Error)
    expect((e as Error).name).toBe('WrongResponse')
    expect((e as Error).message).toStartWith('on_demand: GET /loading answered 503: ')
    expect((e as Error).message).toContain('Loading model')
  })

  test('a 200 with a body that is not JSON, or not the answer asked for, throws', async () => {
    await expect(get('latency.health', '/html', isHealth)).rejects.toThrow('latency.health: GET /html answered 200 with a body that is not JSON: <html>debug</html>')
    await expect(get('latency.chat', '/list', isChat)).rejects.toThrow('latency.chat: GET /list answered 200 with the wrong body: {"object":"list","data":[]}')
    await expect(get('latency.health', '/chat', isHealth)).rejects.toThrow('latency.health: GET /chat answered 200 with the wrong body')
  })
})

describe('streams', () => {
  test('a whole stream gives its time to first byte, gaps, events and tokens', async () => {
    const r = await streamOf('/stream')
    expect(r.tokens).toBe(2)
    expect(r.events).toBe(3)
    expect(r.reads).toBeGreaterThanOrEqual(1)
    expect(r.gaps).toHaveLength(r.reads - 1)
  })

  test('a stream cut short, without a token, of other events, not a stream, or an error throws', async () => {
    await expect(streamOf('/stream-cut')).rejects.toThrow('streaming: POST http://127.0.0.1:')
    await expect(streamOf('/stream-cut')).rejects.toThrow('the stream did not end with [DONE] (2 events')
    await expect(streamOf('/stream-no-token')).rejects.toThrow('a stream without a token')
    await expect(streamOf('/stream-not-chunks')).rejects.toThrow('an event that is not a chunk: {"object":"error"}')
    await expect(streamOf('/stream-as-json')).rejects.toThrow('answered application/json;charset=utf-8, not an event stream')
    await expect(streamOf('/stream-502')).rejects.toThrow('answered 502: {"error":"backend gone"}')
  })
})
