import { afterEach, describe, expect, test } from 'bun:test'
import { connect } from 'node:net'
import { loadConfig } from '../../src/config/load'
import { type Harness, harness, waitFor } from '../helpers'

// Repeated failed sign-ins and wrong Bearer keys from one client address are slowed down, over
// real sockets (the address is the socket's; loopback is limited like any other).
const KEY = 'failures-test-management-key-0123456789'
const on = {
  LLAMACTL_REQUIRE_MANAGEMENT_AUTH: 'true',
  LLAMACTL_REQUIRE_INFERENCE_AUTH: 'true',
  LLAMACTL_MANAGEMENT_KEYS: KEY,
  LLAMACTL_AUTH_MAX_FAILURES: '3',
  LLAMACTL_AUTH_FAILURE_WINDOW: '600',
  LLAMACTL_AUTH_FAILURE_DELAY: '0',
}

let h: Harness | undefined
afterEach(async () => {
  await h?.close()
  h = undefined
})

const bearer = (key: string) => ({ authorization: `Bearer ${key}` })

/** One request over a fresh socket from `localAddress` (any 127.x.y.z is loopback on Linux). */
function rawRequest(base: string, localAddress: string, method: string, path: string, headers: Record<string, string>): Promise<{ status: number; headers: string; body: string }> {
  const { port } = new URL(base)
  return new Promise((resolve, reject) => {
    const sock = connect({ port: Number(port), host: '127.0.0.1', localAddress })
    let buf = ''
    sock.setEncoding('utf8')
    sock.on('data', (d) => (buf += d))
    sock.on('error', reject)
    sock.on('close', () => {
      const [head = '', body = ''] = buf.split('\r\n\r\n')
      resolve({ status: Number(head.split(' ')[1]), headers: head.toLowerCase(), body })
    })
    const lines = Object.entries({ host: `127.0.0.1:${port}`, connection: 'close', ...headers }).map(([k, v]) => `${k}: ${v}\r\n`)
    sock.write(`${method} ${path} HTTP/1.1\r\n${lines.join('')}\r\n`)
  })
}

function login(base: string, key: string) {
  return fetch(`${base}/ui/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: `key=${encodeURIComponent(key)}`,
  })
}

describe('failed authentication is slowed down per client address', () => {
  test('after auth.max_failures wrong keys, 429 with Retry-After and nothing done; the right key still works, and other addresses are not affected', async () => {
    h = await harness(on)
    const base = h.listen()
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${base}/api/v1/instances`, { headers: bearer(`wrong-${i}`) })
      expect(res.status).toBe(401)
    }
    const limited = await fetch(`${base}/api/v1/instances/x`, {
      method: 'POST',
      headers: { ...bearer('wrong-3'), 'content-type': 'application/json' },
      body: JSON.stringify({ backend_options: { model: 'x' } }),
    })
    expect(limited.status).toBe(429)
    const retryAfter = Number(limited.headers.get('retry-after'))
    expect(retryAfter).toBeGreaterThanOrEqual(1)
    expect(retryAfter).toBeLessThanOrEqual(600)
    expect(limited.headers.get('content-type')).toBe('application/json')
    expect(((await limited.json()) as { error: string }).error).toContain('too many failed')
    expect(h.manager.list()).toHaveLength(0)
    // inference routes count the same (one table for the address)
    expect((await fetch(`${base}/v1/models`, { headers: bearer('wrong-4') })).status).toBe(429)
    // another client on the same address with the right key is served
    expect((await fetch(`${base}/api/v1/instances`, { headers: bearer(KEY) })).status).toBe(200)
    // a request with no key is no guess: still the plain 401
    expect((await fetch(`${base}/api/v1/instances`)).status).toBe(401)
    // another address is not limited: its wrong key is a plain 401
    const other = await rawRequest(base, '127.0.0.2', 'GET', '/api/v1/instances', bearer('wrong-other'))
    expect(other.status).toBe(401)
    expect(other.headers).not.toContain('retry-after')
  })

  test('failed sign-ins at /ui/login count too; a right key still signs in', async () => {
    h = await harness(on)
    const base = h.listen()
    for (let i = 0; i < 2; i++) {
      const res = await login(base, `wrong-${i}`)
      expect([res.status, res.headers.get('location')]).toEqual([303, '/ui/login?error=1'])
    }
    // sign-ins and Bearer keys share the address's count
    expect((await fetch(`${base}/api/v1/instances`, { headers: bearer('wrong-2') })).status).toBe(401)
    const limited = await login(base, 'wrong-3')
    expect(limited.status).toBe(429)
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
    expect(limited.headers.get('set-cookie')).toBeNull()
    expect(((await limited.json()) as { error: string }).error).toContain('too many failed')
    const ok = await login(base, KEY)
    expect([ok.status, ok.headers.get('location')]).toEqual([303, '/ui'])
    expect(ok.headers.get('set-cookie')).toContain('llamactl_session=')
  })

  test('with failure answers held for an address, further attempts from it wait their turn: refused unchecked, right key or not', async () => {
    h = await harness({ ...on, LLAMACTL_AUTH_FAILURE_DELAY: '2' })
    const base = h.listen()
    for (let i = 0; i < 3; i++) expect((await fetch(`${base}/api/v1/instances`, { headers: bearer(`wrong-${i}`) })).status).toBe(401)
    const held = Array.from({ length: 4 }, (_, i) => fetch(`${base}/api/v1/instances`, { headers: bearer(`held-${i}`) }))
    const limit = h.keys.failures as unknown as { heldFor(address: string): number }
    await waitFor(() => limit.heldFor('127.0.0.1') === 4, 5000)
    const busy = await fetch(`${base}/api/v1/instances`, { headers: bearer(KEY) })
    expect(busy.status).toBe(429)
    expect(Number(busy.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
    expect((await Promise.all(held)).map((r) => r.status)).toEqual([429, 429, 429, 429])
    expect(limit.heldFor('127.0.0.1')).toBe(0)
    expect((await fetch(`${base}/api/v1/instances`, { headers: bearer(KEY) })).status).toBe(200)
  }, 20000)

  test('auth.max_failures 0 turns the limit off', async () => {
    h = await harness({ ...on, LLAMACTL_AUTH_MAX_FAILURES: '0' })
    const base = h.listen()
    for (let i = 0; i < 12; i++) expect((await fetch(`${base}/api/v1/instances`, { headers: bearer(`wrong-${i}`) })).status).toBe(401)
  })

  test('bad values for the thresholds stop start-up with a clear message', () => {
    const load = (env: Record<string, string>) => () => loadConfig({ env, cwd: '/nonexistent', home: '/nonexistent' })
    expect(load({ LLAMACTL_AUTH_MAX_FAILURES: '-1' })).toThrow('LLAMACTL_AUTH_MAX_FAILURES')
    expect(load({ LLAMACTL_AUTH_FAILURE_WINDOW: '0' })).toThrow('LLAMACTL_AUTH_FAILURE_WINDOW')
    expect(load({ LLAMACTL_AUTH_FAILURE_DELAY: 'soon' })).toThrow('LLAMACTL_AUTH_FAILURE_DELAY')
  })
})
