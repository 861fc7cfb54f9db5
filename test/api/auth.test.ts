import { afterEach, describe, expect, test } from 'bun:test'
import { existsSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { classify, PUBLIC_EXACT, PUBLIC_PREFIXES } from '../../src/http/auth'
import { type Harness, harness, waitFor } from '../helpers'

const MGMT = 'mgmt-key-for-tests-0123456789'
const INFER = 'infer-key-for-tests-0123456789'
const on = { LLAMACTL_REQUIRE_MANAGEMENT_AUTH: 'true', LLAMACTL_REQUIRE_INFERENCE_AUTH: 'true', LLAMACTL_METRICS_PUBLIC: 'false', LLAMACTL_MANAGEMENT_KEYS: MGMT, LLAMACTL_INFERENCE_KEYS: INFER }

let h: Harness
afterEach(async () => {
  await h?.close()
})

const bearer = (k: string) => ({ authorization: `Bearer ${k}` })

async function call(method: string, path: string, headers: Record<string, string> = {}, body?: unknown) {
  const res = await h.request(method, path, body, headers)
  const text = await res.text()
  return { status: res.status, text, headers: res.headers, json: () => JSON.parse(text) }
}

describe('every route is shut without the right key', () => {
  test('each registered route refuses a missing key, a wrong key and the wrong kind of key', async () => {
    h = await harness(on)
    const routes = h.app.routes.routes.map((r) => ({ method: r.method, path: r.path }))
    expect(routes.length).toBeGreaterThan(15)
    const checked: string[] = []
    for (const { method, path } of routes) {
      const concrete = path.replace(':name', 'inst').replace(':id', '1').replace('*', 'health')
      const cls = classify(concrete)
      if (cls === 'public') continue
      const m = method === 'ALL' ? 'GET' : method
      if (cls === 'page') {
        // the page checks its own session: without one (a Bearer key is no session) it sends you to sign in
        for (const headers of [{}, bearer(MGMT)]) {
          const res = await call(m, concrete, headers)
          expect([`${m} ${concrete}`, res.status, res.headers.get('location')]).toEqual([`${m} ${concrete}`, 303, '/ui/login'])
        }
        const hx = await call(m, concrete, { 'hx-request': 'true' })
        expect([`${m} ${concrete}`, hx.status, hx.headers.get('hx-redirect')]).toEqual([`${m} ${concrete}`, 401, '/ui/login'])
        checked.push(`${m} ${concrete}`)
        continue
      }
      const none = await call(m, concrete)
      expect([`${m} ${concrete}`, none.status]).toEqual([`${m} ${concrete}`, 401])
      expect(none.json().error).toContain('Authorization: Bearer')
      const wrong = await call(m, concrete, bearer('not-a-key'))
      expect([`${m} ${concrete}`, wrong.status]).toEqual([`${m} ${concrete}`, 401])
      if (cls === 'management') {
        const kind = await call(m, concrete, bearer(INFER))
        expect([`${m} ${concrete}`, kind.status]).toEqual([`${m} ${concrete}`, 403])
      }
      checked.push(`${m} ${concrete}`)
    }
    expect(checked.length).toBeGreaterThan(15)
  })

  test('the public list is short and documented', () => {
    expect([...PUBLIC_EXACT].sort()).toEqual(['/', '/ui/login', '/ui/logout'])
    expect(PUBLIC_PREFIXES).toEqual(['/ui/assets/'])
  })

  test('a management key works everywhere; an inference key works for /v1 only', async () => {
    h = await harness(on)
    expect((await call('GET', '/api/v1/instances', bearer(MGMT))).status).toBe(200)
    expect((await call('GET', '/v1/models', bearer(MGMT))).status).toBe(200)
    expect((await call('GET', '/v1/models', bearer(INFER))).status).toBe(200)
    expect((await call('GET', '/api/v1/instances', bearer(INFER))).status).toBe(403)
  })

  test('with auth off, routes are open', async () => {
    h = await harness()
    expect((await call('GET', '/api/v1/instances')).status).toBe(200)
    expect((await call('GET', '/v1/models')).status).toBe(200)
  })
})

describe('inference keys made through the API', () => {
  test('create shows the secret once; list and get never do; delete takes effect on the next request', async () => {
    h = await harness(on)
    const created = await call('POST', '/api/v1/auth/keys', bearer(MGMT), { name: 'ci bot' })
    expect(created.status).toBe(201)
    const k = created.json()
    expect(k.key).toMatch(/^llamactl-[A-Za-z0-9_-]{40,}$/)
    expect(k).toMatchObject({ name: 'ci bot', expires_at: null, instances: null })
    const list = await call('GET', '/api/v1/auth/keys', bearer(MGMT))
    expect(list.text).not.toContain(k.key)
    expect(list.text).not.toContain('hash')
    expect(list.json()).toEqual([{ id: k.id, name: 'ci bot', user_id: 'system', permission_mode: 'allow_all', created_at: k.created_at, updated_at: k.created_at, expires_at: null, last_used_at: null, instances: null }])
    const one = await call('GET', `/api/v1/auth/keys/${k.id}`, bearer(MGMT))
    expect(one.text).not.toContain(k.key)
    // the key works for inference, not management
    expect((await call('GET', '/v1/models', bearer(k.key))).status).toBe(200)
    expect((await call('GET', '/api/v1/instances', bearer(k.key))).status).toBe(403)
    // stored as a hash only
    expect(h.store.listKeys()[0]!.hash).not.toContain(k.key)
    expect(JSON.stringify(h.store.listKeys())).not.toContain(k.key)
    expect((await call('DELETE', `/api/v1/auth/keys/${k.id}`, bearer(MGMT))).status).toBe(204)
    expect((await call('GET', '/v1/models', bearer(k.key))).status).toBe(401)
    expect((await call('GET', `/api/v1/auth/keys/${k.id}`, bearer(MGMT))).status).toBe(404)
  })

  test('a key limited to instances gets 403 for others and sees only its own in /v1/models', async () => {
    h = await harness(on)
    for (const n of ['mine', 'theirs']) await call('POST', `/api/v1/instances/${n}?wait=ready`, bearer(MGMT), { backend_options: { model: 'x' } })
    const k = (await call('POST', '/api/v1/auth/keys', bearer(MGMT), { name: 'limited', instances: ['mine'] })).json()
    const models = (await call('GET', '/v1/models', bearer(k.key))).json()
    expect(models.data.map((m: { id: string }) => m.id)).toEqual(['mine'])
    expect((await call('GET', '/v1/models/theirs', bearer(k.key))).status).toBe(404)
    const ok = await call('POST', '/v1/chat/completions', { ...bearer(k.key), 'content-type': 'application/json' }, { model: 'mine', messages: [] })
    expect(ok.status).toBe(200)
    const no = await call('POST', '/v1/chat/completions', { ...bearer(k.key), 'content-type': 'application/json' }, { model: 'theirs', messages: [] })
    expect(no.status).toBe(403)
    expect(no.json().error).toContain('may not use instance "theirs"')
  })

  test('an expired key is refused', async () => {
    h = await harness(on)
    // At least one whole second left when it is made (floor(now) + 1 could be a millisecond away).
    const k = (await call('POST', '/api/v1/auth/keys', bearer(MGMT), { name: 'short', expires_at: Math.floor(Date.now() / 1000) + 2 })).json()
    expect((await call('GET', '/v1/models', bearer(k.key))).status).toBe(200)
    await waitFor(async () => (await call('GET', '/v1/models', bearer(k.key))).status === 401, 5000, 100)
  })

  test('bad key requests are 400 and create nothing', async () => {
    h = await harness(on)
    for (const body of [{}, { name: '' }, { name: 'x', expires_at: 1 }, { name: 'x', instances: ['ghost'] }, { name: 'x', extra: 1 }, { name: 'x', instances: ['../x'] }]) {
      const res = await call('POST', '/api/v1/auth/keys', bearer(MGMT), body)
      expect([JSON.stringify(body), res.status]).toEqual([JSON.stringify(body), 400])
    }
    expect((await call('GET', '/api/v1/auth/keys/abc', bearer(MGMT))).status).toBe(400)
    expect(h.store.listKeys()).toHaveLength(0)
  })

  test('keys never appear in error messages or instance logs', async () => {
    h = await harness(on)
    const secret = 'llamactl-this-is-a-wrong-secret-key'
    const res = await call('GET', '/api/v1/instances', bearer(secret))
    expect(res.status).toBe(401)
    expect(res.text).not.toContain(secret)
    expect((await call('POST', '/api/v1/instances/i?wait=ready', bearer(MGMT), { backend_options: { model: 'x' } })).status).toBe(201)
    // requests that reached the backend with each key, so its log had the chance to show them
    expect((await call('POST', '/v1/chat/completions', { ...bearer(INFER), 'content-type': 'application/json' }, { model: 'i' })).status).toBe(200)
    const echo = await call('GET', '/api/v1/instances/i/proxy/echo', bearer(MGMT))
    expect(echo.status).toBe(200)
    expect(echo.text).not.toContain(MGMT)
    const logs = h.manager.get('i').log.tail().join('\n')
    expect(logs).not.toContain(MGMT)
    expect(logs).not.toContain(INFER)
  })
})

describe('the generated management key', () => {
  test('is made on first start with mode 0600 and reused later', async () => {
    h = await harness({ LLAMACTL_REQUIRE_MANAGEMENT_AUTH: 'true' })
    const file = join(h.config.data_dir, 'management.key')
    expect(h.keys.generatedKeyFile).toBe(file)
    expect(existsSync(file)).toBe(true)
    expect(statSync(file).mode & 0o777).toBe(0o600)
    const key = readFileSync(file, 'utf8').trim()
    expect((await call('GET', '/api/v1/instances', bearer(key))).status).toBe(200)
    const { KeyRing } = await import('../../src/auth/keys')
    const again = new KeyRing(h.config, h.store)
    expect(again.authenticate(key)?.kind).toBe('management')
    expect(readFileSync(file, 'utf8').trim()).toBe(key)
  })
})

describe('page sessions', () => {
  async function login(key: string) {
    const res = await h.request('POST', '/ui/login', `key=${encodeURIComponent(key)}`, { 'content-type': 'application/x-www-form-urlencoded' })
    return res
  }

  test('sign in with a management key gives an HttpOnly SameSite=Strict cookie; CSRF is required to change things; sign out ends it', async () => {
    h = await harness(on)
    const bad = await login(INFER)
    expect(bad.status).toBe(303)
    expect(bad.headers.get('set-cookie')).toBeNull()
    const res = await login(MGMT)
    expect(res.status).toBe(303)
    const setCookie = res.headers.get('set-cookie')!
    expect(setCookie).toContain('HttpOnly')
    expect(setCookie).toContain('SameSite=Strict')
    const cookie = setCookie.split(';')[0]!
    expect((await call('GET', '/api/v1/instances', { cookie })).status).toBe(200)
    const noCsrf = await call('POST', '/api/v1/instances/x?wait=ready', { cookie, 'content-type': 'application/json' }, { backend_options: { model: 'x' } })
    expect(noCsrf.status).toBe(403)
    expect(noCsrf.json().error).toContain('CSRF')
    expect(h.manager.list()).toHaveLength(0)
    const crossOrigin = await call('GET', '/api/v1/instances', { cookie, origin: 'http://evil.example', host: 'localhost' })
    expect(crossOrigin.status).toBe(403)
    // session cookies never work for inference
    expect((await call('GET', '/v1/models', { cookie })).status).toBe(401)
    await h.request('POST', '/ui/logout', undefined, { cookie })
    expect((await call('GET', '/api/v1/instances', { cookie })).status).toBe(401)
  })
})

describe('CORS', () => {
  test('no cross-origin access unless configured', async () => {
    h = await harness(on)
    const res = await h.request('GET', '/v1/models', undefined, { ...bearer(INFER), origin: 'http://app.example' })
    expect(res.headers.get('access-control-allow-origin')).toBeNull()
  })

  test('allowed origins get CORS headers and preflights; others get 403 preflights', async () => {
    h = await harness({ ...on, LLAMACTL_ALLOWED_ORIGINS: 'http://app.example' })
    const pre = await h.request('OPTIONS', '/v1/chat/completions', undefined, { origin: 'http://app.example', 'access-control-request-method': 'POST' })
    expect(pre.status).toBe(204)
    expect(pre.headers.get('access-control-allow-origin')).toBe('http://app.example')
    expect(pre.headers.get('access-control-allow-headers')).toContain('authorization')
    expect(pre.headers.get('access-control-allow-credentials')).toBeNull()
    const res = await h.request('GET', '/v1/models', undefined, { ...bearer(INFER), origin: 'http://app.example' })
    expect(res.headers.get('access-control-allow-origin')).toBe('http://app.example')
    const other = await h.request('OPTIONS', '/v1/models', undefined, { origin: 'http://evil.example', 'access-control-request-method': 'GET' })
    expect(other.status).toBe(403)
  })

  test('"*" opens Bearer-key requests to any origin, never cookie sessions', async () => {
    h = await harness({ ...on, LLAMACTL_ALLOWED_ORIGINS: '*' })
    const res = await h.request('GET', '/v1/models', undefined, { ...bearer(INFER), origin: 'http://any.example' })
    expect(res.status).toBe(200)
    expect(res.headers.get('access-control-allow-origin')).toBe('*')
    const login = await h.request('POST', '/ui/login', `key=${MGMT}`, { 'content-type': 'application/x-www-form-urlencoded' })
    const cookie = login.headers.get('set-cookie')!.split(';')[0]!
    const cross = await h.request('GET', '/api/v1/instances', undefined, { cookie, origin: 'http://any.example', host: 'localhost' })
    expect(cross.status).toBe(403)
  })
})

describe('limits', () => {
  test('a client that stalls is cut; a response that stays silent longer than idle_timeout is not', async () => {
    h = await harness({ LLAMACTL_IDLE_TIMEOUT: '1' })
    // the first token at once, the last after 6 s of silence: longer than Bun's idle cut (1 s, checked every ~4 s)
    await h.json('POST', '/api/v1/instances/slow?wait=ready', { backend_options: { model: 'x' }, environment: { FAKE_TOKEN_DELAY_MS: '6000' } })
    const base = h.listen()
    const port = Number(new URL(base).port)
    let closedAt = 0
    await Bun.connect({
      hostname: '127.0.0.1',
      port,
      socket: {
        open(s) {
          s.write('GET /api/v1/instances HTTP/1.1\r\nHost: x\r\n') // headers never finished
        },
        data() {},
        close() {
          closedAt = Date.now()
        },
      },
    })
    const res = await fetch(`${base}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'slow', stream: true, max_tokens: 1 }),
    })
    expect(await res.text()).toContain('[DONE]')
    await waitFor(() => closedAt > 0, 15000, 50)
  }, 30000)

  test('oversized headers are refused', async () => {
    h = await harness()
    const base = h.listen()
    const res = await fetch(`${base}/api/v1/instances`, { headers: { 'x-big': 'y'.repeat(200 * 1024) } })
    expect(res.status).toBe(431)
    // and the server goes on answering
    expect((await fetch(`${base}/api/v1/instances`)).status).toBe(200)
  })
})
