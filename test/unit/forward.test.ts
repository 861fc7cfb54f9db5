import { describe, expect, test } from 'bun:test'
import { BadGateway } from '../../src/errors'
import { forward, type ForwardOptions, PROXY_CSP, responseHeaders, targetUrl, upstreamHeaders } from '../../src/http/forward'

describe('forward', () => {
  test('a backend that cannot be reached is BadGateway (502), and onDone runs once', async () => {
    const closed = Bun.serve({ hostname: '127.0.0.1', port: 0, fetch: () => new Response('') })
    const port = closed.port
    closed.stop(true)
    let done = 0
    const err = await forward({
      base: `http://127.0.0.1:${port}`,
      pathAndQuery: '/health',
      method: 'GET',
      headers: new Headers(),
      body: null,
      signal: new AbortController().signal,
      extraResponseHeaders: {},
      onDone: () => done++,
    }).catch((e) => e)
    expect(err).toBeInstanceOf(BadGateway)
    expect(err.status).toBe(502)
    expect(err.message).toContain('could not be reached')
    expect(done).toBe(1)
  })

  test('targetUrl never leaves the base origin', () => {
    const base = 'http://127.0.0.1:8001'
    for (const p of ['/x', '//evil.com/x', '/@evil.com', '@evil.com', '/..//evil.com', '/%2F%2Fevil.com', '/\\\\evil.com/']) {
      expect(targetUrl(base, p).origin).toBe(base)
    }
  })

  test('upstream headers drop hop-by-hop, Connection-named, Authorization and Cookie; add the backend key', () => {
    const h = upstreamHeaders(
      new Headers({ connection: 'close, x-secret', 'x-secret': '1', te: 'trailers', authorization: 'Bearer mine', cookie: 'a=b', 'x-keep': 'y', host: 'evil' }),
      'backend-key',
    )
    expect([...h.keys()].sort()).toEqual(['authorization', 'x-keep'])
    expect(h.get('authorization')).toBe('Bearer backend-key')
  })

  test('answers are sandboxed (a policy the backend or response_headers set cannot replace it) and set no cookie on llamactl', () => {
    const upstream = new Headers({ 'content-security-policy': "default-src 'self'", 'content-type': 'text/html' })
    upstream.append('set-cookie', 'llamactl_session=fixed; Path=/ui')
    upstream.append('clear-site-data', '"cookies"')
    const h = responseHeaders(upstream, { 'content-security-policy': "script-src 'self'" })
    expect(h.get('content-security-policy')).toBe(`script-src 'self', ${PROXY_CSP}`)
    expect(PROXY_CSP).toStartWith('sandbox ')
    expect(PROXY_CSP).not.toContain('allow-same-origin')
    expect(h.has('set-cookie')).toBe(false)
    expect(h.has('clear-site-data')).toBe(false)
    expect(h.get('content-type')).toBe('text/html')
  })
})

describe('forward, a connection closed before any answer', () => {
  // A backend that drops the first connection it gets without answering, as a server closing a
  // reused keep-alive connection does, and answers on the next.
  async function flakyBackend() {
    let connections = 0
    const bodies: string[] = []
    const server = Bun.listen({
      hostname: '127.0.0.1',
      port: 0,
      socket: {
        open() {
          connections++
        },
        data(s, d) {
          const text = d.toString()
          bodies.push(text.slice(text.indexOf('\r\n\r\n') + 4))
          if (connections === 1) return void s.end()
          s.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok')
        },
      },
    })
    return { server, connections: () => connections, bodies }
  }
  const options = (port: number, body: ForwardOptions['body']): ForwardOptions => ({
    base: `http://127.0.0.1:${port}`,
    pathAndQuery: '/v1/chat/completions',
    method: 'POST',
    headers: new Headers({ 'content-type': 'application/json' }),
    body,
    signal: new AbortController().signal,
    extraResponseHeaders: {},
    onDone: () => {},
  })

  test('a body held in memory is sent once more, on a new connection', async () => {
    const b = await flakyBackend()
    try {
      const res = await forward(options(b.server.port, new TextEncoder().encode('{"model":"m"}')))
      expect([res.status, await res.text()]).toEqual([200, 'ok'])
      expect(b.connections()).toBe(2)
      expect(b.bodies).toEqual(['{"model":"m"}', '{"model":"m"}'])
    } finally {
      b.server.stop(true)
    }
  })

  test('a streamed body, which cannot be sent again, is a 502', async () => {
    const b = await flakyBackend()
    try {
      const body = new ReadableStream({ start: (c) => (c.enqueue(new TextEncoder().encode('{"model":"m"}')), c.close()) })
      const err = await forward(options(b.server.port, body)).catch((e) => e)
      expect(err).toBeInstanceOf(BadGateway)
      expect(b.connections()).toBe(1)
    } finally {
      b.server.stop(true)
    }
  })
})
