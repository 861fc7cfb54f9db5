import { describe, expect, test } from 'bun:test'
import { BadGateway } from '../../src/errors'
import { forward, PROXY_CSP, responseHeaders, targetUrl, upstreamHeaders } from '../../src/http/forward'

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
