/**
 * Authorization sees the request the router dispatches. Every registered route (enumerated from
 * the app, so a route added later is covered without anyone remembering) is sent, on a raw
 * socket, in every odd form of request target and Host header there is, with no key, a wrong key
 * and an inference key; each must be refused, and nothing may change.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { classify } from '../../src/http/auth'
import { fixtureModel, type Harness, harness, waitFor } from '../helpers'
import { pool, rawRequest, sendRaw } from './raw'

const MGMT = 'mgmt-key-for-security-tests-0123456789'
const INFER = 'infer-key-for-security-tests-0123456789'
const AUTH_ON = {
  LLAMACTL_REQUIRE_MANAGEMENT_AUTH: 'true',
  LLAMACTL_REQUIRE_INFERENCE_AUTH: 'true',
  LLAMACTL_METRICS_PUBLIC: 'false',
  LLAMACTL_MANAGEMENT_KEYS: MGMT,
  LLAMACTL_INFERENCE_KEYS: INFER,
  // thousands of wrong keys from one address: this suite is about what they reach, not about
  // the slow-down of repeated failures (test/api/auth-failures.test.ts)
  LLAMACTL_AUTH_MAX_FAILURES: '0',
}

let h: Harness
let port: number
let viewBefore: string
/** The instance as requests could change it: without what moves by itself (uptime, and the request limit the backend reports once it is up). */
const stable = () => {
  const { uptime: _u, requests: _r, ...rest } = h.manager.get('inst').view() as unknown as Record<string, unknown>
  return JSON.stringify(rest)
}

beforeAll(async () => {
  h = await harness(AUTH_ON)
  port = Number(new URL(h.listen()).port)
  const res = await h.request('POST', '/api/v1/instances/inst?wait=ready', { backend_options: { model: fixtureModel('m') } }, { authorization: `Bearer ${MGMT}` })
  expect(res.status).toBe(201)
  viewBefore = stable()
})
afterAll(async () => {
  await h?.close()
})

interface Route {
  method: string
  path: string
  cls: ReturnType<typeof classify>
}

/** Every route of the app with a concrete path, its class, and the methods to send. */
function routes(): Route[] {
  const out: Route[] = []
  for (const r of h.app.routes.routes) {
    const path = r.path.replace(':name', 'inst').replace(':id', '1').replace('*', 'health')
    const cls = classify(r.path)
    for (const method of r.method === 'ALL' ? ['GET', 'POST', 'DELETE'] : [r.method]) out.push({ method, path, cls })
  }
  return out
}

/** The odd forms of one route's request: [label, request line target, Host header lines, version]. */
function forms(path: string, hostPort: string): [string, string, string[], string?][] {
  const rest = path.slice(1)
  const host = [`Host: ${hostPort}`]
  return [
    ['short Host with a prefix', `/xx${path}`, ['Host: a']],
    ['one-letter Host', path, ['Host: a']],
    ['three-letter Host with a prefix', `/x${path}`, ['Host: abc']],
    ['HTTP/1.0 without Host', path, [], 'HTTP/1.0'],
    ['HTTP/1.0 without Host, prefixed', `/xx${path}`, [], 'HTTP/1.0'],
    ['HTTP/1.1 without Host', path, []],
    ['empty Host', path, ['Host: ']],
    ['Host with a slash', path, ['Host: a/b']],
    ['Host with a query', path, ['Host: a?b']],
    ['Host with userinfo', path, ['Host: a@b']],
    ['Host with a bad port', path, ['Host: localhost:99999']],
    ['unclosed IPv6 Host', path, ['Host: [::1']],
    ['two Host headers', path, ['Host: a', `Host: ${hostPort}`]],
    ['foreign Host (DNS rebinding)', path, ['Host: attacker.example']],
    ['absolute-form', `http://x${path}`, host],
    ['absolute-form, short host', `http://a/xx${path}`, ['Host: a']],
    ['absolute-form without Host', `http://${hostPort}${path}`, []],
    ['dot segments', `/xx/..${path}`, host],
    ['encoded dot segments', `/xx/%2e%2e${path}`, host],
    ['leading double slash', `/${path}`, host],
    ['inner double slash', path.replace('/v1/', '/v1//'), host],
    ['trailing slash', `${path}/`, host],
    ['; parameter', `${path};x=1`, host],
    ['; parameter on the first segment', `/${rest.replace('/', ';x/')}`, host],
    ['encoded slashes', `/${rest.replaceAll('/', '%2F')}`, host],
    ['encoded backslashes', `/${rest.replaceAll('/', '%5C')}`, host],
    ['backslashes', `/${rest.replaceAll('/', '\\')}`, host],
    ['encoded first letter', `/%${path.charCodeAt(1).toString(16)}${path.slice(2)}`, host],
    ['upper case', path.toUpperCase(), host],
    ['fragment', `${path}#x`, host],
  ]
}

const CREDENTIALS: [string, string[]][] = [
  ['no key', []],
  ['a wrong key', ['Authorization: Bearer not-a-key-at-all']],
  ['an inference key', [`Authorization: Bearer ${INFER}`]],
]

/** A refusal: 4xx, or the page's redirect to sign in. Never 2xx, never 5xx, never a stack. */
function refused(cls: string, status: number, headers: Record<string, string>): boolean {
  if (status >= 400 && status < 500) return true
  return cls === 'page' && status === 303 && headers.location === '/ui/login'
}

describe('the request the router dispatches is the request that was authorised', () => {
  test('every route, in every odd form, with no key, a wrong key and an inference key, is refused and changes nothing', async () => {
    const all = routes()
    expect(all.length).toBeGreaterThan(40)
    const hostPort = `127.0.0.1:${port}`
    const jobs: (() => Promise<string | null>)[] = []
    for (const r of all) {
      if (r.cls === 'public') continue
      for (const [credName, cred] of CREDENTIALS) {
        // an inference key is meant to open /v1
        if (credName === 'an inference key' && r.cls === 'inference') continue
        for (const [label, target, hostLines, version] of forms(r.path, hostPort)) {
          const body = r.method === 'GET' || r.method === 'DELETE' ? '' : JSON.stringify({ model: 'inst', backend_options: { model: 'x.gguf' }, name: 'k' })
          const text = rawRequest(r.method, target, [...hostLines, ...cred], body, version)
          jobs.push(async () => {
            const res = await sendRaw(port, text).catch((e: Error) => e)
            if (res instanceof Error) return `${r.method} ${r.path} [${label}, ${credName}]: ${res.message.slice(0, 120)}`
            if (res.body.includes(' at ') && /\.(ts|js):\d+/.test(res.body)) return `${r.method} ${r.path} [${label}, ${credName}]: a stack in the answer`
            if (!refused(r.cls, res.status, res.headers)) return `${r.method} ${r.path} [${label}, ${credName}] → ${res.status} ${res.body.slice(0, 120)}`
            return null
          })
        }
      }
    }
    expect(jobs.length).toBeGreaterThan(2000)
    const failures = (await pool(jobs, 16)).filter((x) => x !== null)
    expect(failures).toEqual([])
    // nothing changed: the one instance is as it was, no key was made
    expect(h.manager.list().map((i) => i.name)).toEqual(['inst'])
    expect(stable()).toBe(viewBefore)
    expect(h.manager.get('inst').status).toBe('running')
    expect(h.keys.list()).toHaveLength(0)
  }, 120_000)

  test('asterisk-form and authority-form targets are refused', async () => {
    for (const text of [
      rawRequest('OPTIONS', '*', [`Host: 127.0.0.1:${port}`]),
      rawRequest('GET', '*', [`Host: 127.0.0.1:${port}`]),
      rawRequest('CONNECT', `127.0.0.1:${port}`, [`Host: 127.0.0.1:${port}`]),
      rawRequest('CONNECT', 'localhost:80', ['Host: a']),
    ]) {
      const res = await sendRaw(port, text)
      expect([text.split('\r\n')[0], res.status]).toEqual([text.split('\r\n')[0], 400])
    }
  })

  test('the same requests with a management key reach their route in the plain form only', async () => {
    const ok = await sendRaw(port, rawRequest('GET', '/api/v1/instances', [`Host: 127.0.0.1:${port}`, `Authorization: Bearer ${MGMT}`]))
    expect(ok.status).toBe(200)
    // a short Host is a valid host name; the path it names is the one served
    const short = await sendRaw(port, rawRequest('GET', '/xx/api/v1/instances', ['Host: localhost', `Authorization: Bearer ${MGMT}`]))
    expect(short.status).toBe(404)
    const dup = await sendRaw(port, rawRequest('GET', '//api/v1/instances', [`Host: 127.0.0.1:${port}`, `Authorization: Bearer ${MGMT}`]))
    expect(dup.status).toBe(400)
  })

  test('/metrics with a trailing slash needs a metrics or management key like /metrics', async () => {
    for (const path of ['/metrics', '/metrics/']) {
      const inf = await sendRaw(port, rawRequest('GET', path, [`Host: 127.0.0.1:${port}`, `Authorization: Bearer ${INFER}`]))
      expect([path, inf.status]).toEqual([path, 403])
      const none = await sendRaw(port, rawRequest('GET', path, [`Host: 127.0.0.1:${port}`]))
      expect([path, none.status]).toEqual([path, 401])
      const mgmt = await sendRaw(port, rawRequest('GET', path, [`Host: 127.0.0.1:${port}`, `Authorization: Bearer ${MGMT}`]))
      expect([path, mgmt.status]).toEqual([path, 200])
    }
  })

  test('the router itself refuses a request the front door did not let in for that route', async () => {
    // Skipping the front door (app.handle) and calling the router directly: every route that is
    // not public must refuse, so a front door that misreads a path cannot open a route.
    const failures: string[] = []
    for (const r of routes()) {
      if (r.cls === 'public') continue
      const res = await h.app.routes.handle(
        new Request(`http://localhost${r.path}`, {
          method: r.method,
          headers: { authorization: `Bearer ${MGMT}`, 'content-type': 'application/json' },
          body: r.method === 'GET' ? undefined : '{}',
        }),
      )
      const text = await res.text()
      if (res.status !== 400 || !text.includes('does not match the route')) failures.push(`${r.method} ${r.path} → ${res.status} ${text.slice(0, 100)}`)
    }
    expect(failures).toEqual([])
    expect(h.manager.get('inst').status).toBe('running')
  })

  test('an unknown path with no Host is a plain 400, an unknown route a 404 {"error"}; neither carries a stack or a path of the machine', async () => {
    const noHost = await sendRaw(port, rawRequest('GET', '/nothing/here', [], '', 'HTTP/1.0'))
    expect(noHost.status).toBe(400)
    expect(JSON.parse(noHost.body).error).toContain('Host')
    const unknown = await sendRaw(port, rawRequest('GET', '/nothing/here', [`Host: 127.0.0.1:${port}`]))
    expect(unknown.status).toBe(404)
    expect(JSON.parse(unknown.body)).toEqual({ error: 'no route for GET /nothing/here' })
    for (const r of [noHost, unknown]) {
      expect(r.body.length).toBeLessThan(300)
      expect(r.body).not.toContain(process.cwd())
    }
  })
})

describe('Host and cross-site requests, with auth off', () => {
  let open: Harness
  let openPort: number
  beforeAll(async () => {
    open = await harness()
    openPort = Number(new URL(open.listen()).port)
  })
  afterAll(async () => {
    await open?.close()
  })

  test('a Host llamactl is not served under is 403 (DNS rebinding), even with auth off', async () => {
    const res = await sendRaw(openPort, rawRequest('GET', '/api/v1/instances', ['Host: attacker.example:8080']))
    expect(res.status).toBe(403)
    expect(JSON.parse(res.body).error).toContain('server.allowed_hosts')
    for (const hostLine of ['Host: localhost:1', `Host: 127.0.0.1:${openPort}`, 'Host: [::1]:8080', 'Host: app.localhost']) {
      const ok = await sendRaw(openPort, rawRequest('GET', '/api/v1/instances', [hostLine]))
      expect([hostLine, ok.status]).toEqual([hostLine, 200])
    }
  })

  test('a page on another site cannot change anything: Origin, Sec-Fetch-Site and text/plain JSON are refused', async () => {
    const host = `Host: 127.0.0.1:${openPort}`
    const body = JSON.stringify({ backend_options: { model: fixtureModel('m') } })
    const textPlain = (extra: string[]) =>
      `POST /api/v1/instances/evil HTTP/1.1\r\n${[host, ...extra, 'Content-Type: text/plain', `Content-Length: ${body.length}`, 'Connection: close'].join('\r\n')}\r\n\r\n${body}`
    const cases: [string, string][] = [
      ['foreign Origin', rawRequest('POST', '/api/v1/instances/evil', [host, 'Origin: http://attacker.example'], body)],
      ['Origin null', rawRequest('POST', '/api/v1/instances/evil', [host, 'Origin: null'], body)],
      ['another port on this host', rawRequest('POST', '/api/v1/instances/evil', [host, 'Origin: http://127.0.0.1:8001'], body)],
      ['Sec-Fetch-Site cross-site', rawRequest('POST', '/api/v1/instances/evil', [host, 'Sec-Fetch-Site: cross-site'], body)],
      ['Sec-Fetch-Site same-site', rawRequest('DELETE', '/api/v1/instances/evil', [host, 'Sec-Fetch-Site: same-site'])],
      ['JSON sent as text/plain', textPlain([])],
      ['JSON sent as text/plain to /v1', `POST /v1/chat/completions HTTP/1.1\r\n${[host, 'Content-Type: text/plain', `Content-Length: ${body.length}`, 'Connection: close'].join('\r\n')}\r\n\r\n${body}`],
    ]
    for (const [label, text] of cases) {
      const res = await sendRaw(openPort, text)
      expect([label, res.status]).toEqual([label, label.includes('text/plain') ? 415 : 403])
    }
    expect(open.manager.list()).toHaveLength(0)
    // the same origin, and clients that are no browser, still work
    const same = await sendRaw(openPort, rawRequest('POST', '/api/v1/instances/mine?wait=ready', [host, `Origin: http://127.0.0.1:${openPort}`, 'Sec-Fetch-Site: same-origin'], body))
    expect(same.status).toBe(201)
    await waitFor(() => open.manager.get('mine').status === 'running')
  })
})

describe('bodies that would tie up the event loop', () => {
  test('JSON nested beyond 64 levels is a 400 before validation, and changes nothing', async () => {
    const h2 = await harness()
    try {
      const deep = `{"backend_options":{"model":"x","extra":${'['.repeat(100_000)}${']'.repeat(100_000)}}}`
      const res = await h2.request('POST', '/api/v1/instances/deep?wait=ready', deep)
      expect(res.status).toBe(400)
      expect((await res.json()).error).toContain('more than 64 deep')
      const keys = await h2.request('POST', '/api/v1/auth/keys', `{"name":"k","instances":${'['.repeat(65)}${']'.repeat(65)}}`)
      expect(keys.status).toBe(400)
      expect(h2.manager.list()).toHaveLength(0)
      // 64 is fine as far as nesting goes (the field is then refused for what it is)
      const ok = await h2.request('POST', '/api/v1/instances/deep?wait=ready', `{"backend_options":{"model":"x"},"environment":${'['.repeat(62)}${']'.repeat(62)}}`)
      expect((await ok.json()).error).not.toContain('deep')
    } finally {
      await h2.close()
    }
  })
})
