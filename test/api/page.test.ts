import { afterEach, describe, expect, test } from 'bun:test'
import { readFileSync } from 'node:fs'
import { connect } from 'node:net'
import { resolve } from 'node:path'
import { type Harness, harness, waitFor, fixtureModel } from '../helpers'

const FAKE_MODEL = fixtureModel('fake')
const M_MODEL = fixtureModel('m')
const M2_MODEL = fixtureModel('m2')
const QWEN_MODEL = fixtureModel('qwen-7b')

// The page's routes through app.handle: sessions, CSRF, forms, fragments, the log stream.
const KEY = 'page-test-management-key-0123456789'
const on = { LLAMACTL_REQUIRE_MANAGEMENT_AUTH: 'true', LLAMACTL_MANAGEMENT_KEYS: KEY }

let h: Harness
afterEach(async () => {
  await h?.close()
})

interface Session {
  cookie: string
  csrf: string
}

async function signIn(): Promise<Session> {
  const res = await h.request('POST', '/ui/login', `key=${encodeURIComponent(KEY)}`, { 'content-type': 'application/x-www-form-urlencoded' })
  const cookie = res.headers.get('set-cookie')!.split(';')[0]!
  const page = await (await h.request('GET', '/ui', undefined, { cookie })).text()
  const csrf = /<meta name="csrf-token" content="([^"]+)">/.exec(page)![1]!
  return { cookie, csrf }
}

/** The API with the management key. */
async function api(method: string, path: string, body?: unknown) {
  const res = await h.request(method, path, body, { authorization: `Bearer ${KEY}` })
  const text = await res.text()
  return { status: res.status, body: text ? JSON.parse(text) : null }
}

function get(s: Session | null, path: string, hx = false) {
  return h.request('GET', path, undefined, { ...(s ? { cookie: s.cookie } : {}), ...(hx ? { 'hx-request': 'true' } : {}) })
}

/** A form post as htmx sends it (CSRF in the header) or as a plain browser form (in the body). */
function post(s: Session, path: string, fields: Record<string, string | string[]> = {}, opts: { hx?: boolean; csrf?: 'header' | 'field' | 'none' } = {}) {
  const { hx = true, csrf = 'header' } = opts
  const form = new URLSearchParams()
  for (const [k, v] of Object.entries(fields)) for (const item of Array.isArray(v) ? v : [v]) form.append(k, item)
  if (csrf === 'field') form.set('_csrf', s.csrf)
  return h.request('POST', path, form.toString(), {
    'content-type': 'application/x-www-form-urlencoded',
    cookie: s.cookie,
    ...(hx ? { 'hx-request': 'true' } : {}),
    ...(csrf === 'header' ? { 'x-csrf-token': s.csrf } : {}),
  })
}

const createFields = (name: string, more: Record<string, string | string[]> = {}) => ({
  _mode: 'create',
  name,
  backend_type: 'llama_cpp',
  model: FAKE_MODEL,
  ctx_size: '',
  gpu_layers: '',
  port: '',
  ...more,
})

describe('signing in', () => {
  test('/ goes to /ui; /ui without a session goes to sign-in (htmx requests are told to navigate)', async () => {
    h = await harness(on)
    const root = await get(null, '/')
    expect([root.status, root.headers.get('location')]).toEqual([303, '/ui'])
    const ui = await get(null, '/ui')
    expect([ui.status, ui.headers.get('location')]).toEqual([303, '/ui/login'])
    const frag = await get(null, '/ui', true)
    expect([frag.status, frag.headers.get('hx-redirect')]).toEqual([401, '/ui/login'])
    const login = await get(null, '/ui/login')
    expect(login.status).toBe(200)
    const body = await login.text()
    expect(body).toContain('<form class="card login-card" method="post" action="/ui/login">')
    expect(body).not.toContain('role="alert"')
    expect(await (await get(null, '/ui/login?error=1')).text()).toContain('That is not a management key.')
    const s = await signIn()
    const again = await get(s, '/ui/login')
    expect([again.status, again.headers.get('location')]).toEqual([303, '/ui'])
    await h.request('POST', '/ui/logout', undefined, { cookie: s.cookie })
    expect((await get(s, '/ui')).headers.get('location')).toBe('/ui/login')
  })

  test('pages forbid inline script, framing and other hosts, and are never cached', async () => {
    h = await harness(on)
    const s = await signIn()
    const res = await get(s, '/ui')
    expect(res.headers.get('content-security-policy')).toContain("default-src 'none'; script-src 'self'")
    expect(res.headers.get('x-frame-options')).toBe('DENY')
    expect(res.headers.get('cache-control')).toBe('no-store')
  })

  test('with management auth off the page is open, but changes still need its token', async () => {
    h = await harness()
    expect((await get(null, '/ui/login')).headers.get('location')).toBe('/ui')
    const page = await (await get(null, '/ui')).text()
    expect(page).not.toContain('Sign out')
    const csrf = /<meta name="csrf-token" content="([^"]+)">/.exec(page)![1]!
    const s = { cookie: '', csrf }
    await h.json('POST', '/api/v1/instances/a?wait=ready', { backend_options: { model: 'x' } })
    expect((await post(s, '/ui/instances/a/stop', {}, { csrf: 'none' })).status).toBe(403)
    expect((await post(s, '/ui/instances/a/stop')).status).toBe(200)
    expect(h.manager.get('a').status).toBe('stopped')
  })
})

describe('assets', () => {
  test('htmx, the stylesheet, the script and the icon are served from the binary, cacheable under their hashed URL', async () => {
    h = await harness(on)
    const page = await (await get(await signIn(), '/ui')).text()
    const urls = [...page.matchAll(/(?:src|href)="(\/ui\/assets\/[^"]+)"/g)].map((m) => m[1]!)
    expect(urls).toHaveLength(5) // htmx, page.js, theme.js, the stylesheet, the icon
    for (const url of urls) {
      const res = await get(null, url.replaceAll('&amp;', '&'))
      expect([url, res.status]).toEqual([url, 200])
      expect(res.headers.get('cache-control')).toBe('public, max-age=31536000, immutable')
    }
    const htmx = await get(null, urls.find((u) => u.includes('htmx'))!)
    expect(htmx.headers.get('content-type')).toContain('javascript')
    expect(await htmx.text()).toBe(readFileSync(resolve(import.meta.dir, '../../node_modules/htmx.org/dist/htmx.min.js'), 'utf8'))
    const css = await (await get(null, '/ui/assets/style.css')).text()
    expect(css).toContain('prefers-color-scheme: dark')
    expect((await get(null, '/ui/assets/style.css')).headers.get('cache-control')).toBe('no-cache')
    expect((await get(null, '/ui/assets/nope.js')).status).toBe(404)
    expect((await get(null, '/ui/assets/toString')).status).toBe(404)
  })
})

describe('changes need the session and its CSRF token', () => {
  test('no token, a wrong token or another origin: 403 and nothing happens; the header or the form field: done', async () => {
    h = await harness(on)
    const s = await signIn()
    await api('POST', '/api/v1/instances/a?wait=ready', { backend_options: { model: 'x' } })
    expect((await post(s, '/ui/instances/a/stop', {}, { csrf: 'none' })).status).toBe(403)
    expect((await post({ ...s, csrf: 'wrong' }, '/ui/instances/a/stop')).status).toBe(403)
    const cross = await h.request('POST', '/ui/instances/a/stop', '', {
      cookie: s.cookie,
      'x-csrf-token': s.csrf,
      origin: 'http://evil.example',
      host: 'localhost',
    })
    expect(cross.status).toBe(403)
    expect(h.manager.get('a').status).toBe('running')
    const plain = await post(s, '/ui/instances/a/stop', {}, { hx: false, csrf: 'field' })
    expect([plain.status, plain.headers.get('location')]).toEqual([303, '/ui'])
    expect(h.manager.get('a').status).toBe('stopped')
  })
})

describe('instances', () => {
  test('the list shows each instance, and polling gets the fragment alone', async () => {
    h = await harness(on)
    const s = await signIn()
    await api('POST', '/api/v1/instances/one?wait=ready', { backend_options: { model: 'x' } })
    const page = await (await get(s, '/ui')).text()
    expect(page).toContain('<!doctype html>')
    expect(page).toContain('id="row-one"')
    const frag = await (await get(s, '/ui', true)).text()
    expect(frag.startsWith('<section id="instances"')).toBe(true)
    expect(frag).toContain('<span class="badge s-running">running</span>')
    expect(frag).toContain('llama_cpp')
    expect(frag).toContain(`<td data-label="Port">${h.manager.get('one').port}</td>`)
    expect(frag).toContain('<td data-label="Last request">never</td>')
    expect(frag).toContain('<td data-label="Model" class="model"><span title="x">x</span></td>')
    // A model file shows by its name, a repo as it is.
    await api('POST', '/api/v1/instances/two?wait=ready', { backend_options: { model: QWEN_MODEL } })
    await api('POST', '/api/v1/instances/three', { backend_options: { hf_repo: 'org/model-GGUF:Q4_K_M' }, on_demand_start: true })
    const both = await (await get(s, '/ui', true)).text()
    expect(both).toContain('<span title="qwen-7b.gguf">qwen-7b.gguf</span>')
    expect(both).toContain('<span title="org/model-GGUF:Q4_K_M">org/model-GGUF:Q4_K_M</span>')
  })

  test('the last request shows after a /v1 request', async () => {
    h = await harness(on)
    const s = await signIn()
    await api('POST', '/api/v1/instances/one?wait=ready', { backend_options: { model: 'x' } })
    const chat = await h.request('POST', '/v1/chat/completions', { model: 'one', messages: [{ role: 'user', content: 'hi' }] }, { authorization: `Bearer ${KEY}` })
    expect(chat.status).toBe(200)
    await chat.text()
    expect(await (await get(s, '/ui', true)).text()).toMatch(/<td data-label="Last request">(just now|\d+ s ago)<\/td>/)
    // the last ten minutes: the request and its tokens, in the list and as the instance's chart
    await waitFor(async () => (await (await get(s, '/ui', true)).text()).includes('1 request · '), 2000) // recorded just after the answer
    expect(await (await get(s, '/ui', true)).text()).toContain('1 request · 0 errors · 5 tokens')
    const chart = await (await get(s, '/ui/instances/one/activity', true)).text()
    expect(chart).toContain('<svg class="chart"')
    expect(chart).toContain('1 request · 0 errors')
  })

  test('Connect: the /v1 address and copyable curl, Node and Python snippets, with the instance\'s name where there is one', async () => {
    h = await harness(on)
    const s = await signIn()
    const none = await (await get(s, '/ui')).text()
    expect(none).toContain('<h2 id="connect-title">Connect</h2>')
    expect(none).toContain('&quot;model&quot;: &quot;INSTANCE-NAME&quot;')
    await api('POST', '/api/v1/instances/qwen-7b?wait=ready', { backend_options: { model: 'x' } })
    const one = await (await get(s, '/ui')).text()
    expect(one).toContain('&quot;model&quot;: &quot;qwen-7b&quot;')
    const logs = await (await get(s, '/ui/instances/qwen-7b/logs')).text()
    expect(logs).toContain('data-copy="connect-curl"')
    // Inference auth is off here: no key in the curl line
    expect(logs).toContain('/v1/chat/completions \\\n  -H &quot;Content-Type: application/json&quot;')
    expect(logs).toContain('apiKey: process.env.LLAMACTL_KEY ?? &#39;none&#39;')
    expect(logs).toContain("model: &quot;qwen-7b&quot;, messages")
    expect(logs).toContain('model=&quot;qwen-7b&quot;')
    // The polled list fragment does not carry it (it would be redrawn every 2 s).
    expect(await (await get(s, '/ui', true)).text()).not.toContain('connect-title')
    await h.close()
    h = await harness({ ...on, LLAMACTL_REQUIRE_INFERENCE_AUTH: 'true' })
    const withKey = await (await get(await signIn(), '/ui')).text()
    expect(withKey).toContain('/v1/chat/completions -H &quot;Authorization: Bearer $LLAMACTL_KEY&quot;')
    expect(withKey).toContain('<a href="/ui/keys">make one</a>')
  })

  test('the list shows how many requests wait in an instance\'s queue and how long the first has waited', async () => {
    h = await harness(on)
    const s = await signIn()
    await api('POST', '/api/v1/instances/one?wait=ready', { backend_options: { model: 'x' }, environment: { FAKE_TOKEN_DELAY_MS: '50' }, max_concurrent_requests: 1 })
    const auth = { authorization: `Bearer ${KEY}` }
    const holding = await h.request('POST', '/v1/chat/completions', { model: 'one', stream: true, max_tokens: 20, messages: [{ role: 'user', content: 'hi' }] }, auth)
    const waiting = h.request('POST', '/v1/chat/completions', { model: 'one', max_tokens: 1, messages: [{ role: 'user', content: 'hi' }] }, auth)
    await waitFor(() => h.manager.get('one').queued === 1)
    await Bun.sleep(150)
    expect(await (await get(s, '/ui', true)).text()).toMatch(/1 queued, longest (0\.[1-9]|[1-9]\d*\.\d) s/)
    await holding.text()
    expect((await waiting).status).toBe(200)
    expect(await (await get(s, '/ui', true)).text()).not.toContain('queued')
  })

  test('create from the form: typed values, environment rows, advanced rows (a repeat is a list, empty is a bare flag), supervision', async () => {
    h = await harness(on)
    const s = await signIn()
    const res = await post(
      s,
      '/ui/instances',
      createFields('made', {
        ctx_size: '4096',
        gpu_layers: '99',
        env_key: ['FOO', '', 'BAR'],
        env_value: ['1', '', 'two words'],
        opt_key: ['lora', 'lora', 'embeddings', 'threads', 'alias'],
        opt_value: ['/a.bin', '/b.bin', '', '4', 'x y'],
        auto_restart: 'false',
        max_restarts: '2',
        restart_delay: '0.5',
        on_demand_start: '',
        idle_timeout: '1.5',
      }),
    )
    expect([res.status, res.headers.get('hx-redirect')]).toEqual([200, '/ui'])
    expect(h.manager.get('made').input).toEqual({
      backend_type: 'llama_cpp',
      backend_options: { model: FAKE_MODEL, ctx_size: 4096, gpu_layers: 99, lora: ['/a.bin', '/b.bin'], embeddings: true, threads: 4, alias: 'x y' },
      environment: { FOO: '1', BAR: 'two words' },
      auto_restart: false,
      max_restarts: 2,
      restart_delay: 0.5,
      idle_timeout: 1.5,
    })
    await waitFor(() => h.manager.get('made').status === 'running')
  })

  test("a refused form comes back with everything typed and the server's message next to the field; nothing is made", async () => {
    h = await harness(on)
    const s = await signIn()
    const fields = createFields('bad', { ctx_size: 'lots', env_key: 'K', env_value: '<v>', max_restarts: '3' })
    const res = await post(s, '/ui/instances', fields)
    expect(res.status).toBe(200)
    const form = await res.text()
    expect(form.startsWith('<form id="instance-form"')).toBe(true)
    expect(form).toContain('<p class="field-error" id="err-ctx_size">backend_options.ctx_size: llama-server expects a whole number, got &quot;lots&quot;</p>')
    expect(form).toContain('name="ctx_size" value="lots"')
    expect(form).toContain('name="name" value="bad"')
    expect(form).toContain('name="env_value" value="&lt;v&gt;"')
    expect(form).toContain('name="max_restarts" value="3"')
    expect(h.manager.find('bad')).toBeUndefined()

    const sup = await (await post(s, '/ui/instances', createFields('bad', { max_restarts: 'many' }))).text()
    expect(sup).toMatch(/<p class="field-error" id="err-max_restarts">max_restarts: [^<]*many/)
    const name = await (await post(s, '/ui/instances', createFields('no/slash'))).text()
    expect(name).toContain('<p class="field-error" id="err-name">invalid instance name')
    const port = await (await post(s, '/ui/instances', createFields('p', { port: 'eighty' }))).text()
    expect(port).toContain('id="err-port"')
    const env = await (await post(s, '/ui/instances', createFields('e', { env_key: '1BAD', env_value: 'x' }))).text()
    expect(env).toContain('<p class="field-error" id="err-environment">environment')
    await api('POST', '/api/v1/instances/taken?wait=ready', { backend_options: { model: 'x' } })
    const taken = await (await post(s, '/ui/instances', createFields('taken'))).text()
    expect(taken).toContain('id="err-name">an instance named &quot;taken&quot; already exists')
    // without htmx: the whole page, 422
    const plain = await post(s, '/ui/instances', createFields('bad', { ctx_size: 'lots' }), { hx: false, csrf: 'field' })
    expect(plain.status).toBe(422)
    expect(await plain.text()).toContain('<!doctype html>')
    expect(h.manager.list().map((i) => i.name)).toEqual(['taken'])
  })

  test('changing the backend keeps options the new backend has no field for, as advanced rows', async () => {
    h = await harness(on)
    const s = await signIn()
    const res = await post(s, '/ui/form/refresh', createFields('x', { backend_type: 'vllm', ctx_size: '4096', gpu_layers: '' }))
    const form = await res.text()
    expect(form).toContain('name="max_model_len" value=""')
    expect(form).not.toContain('name="ctx_size"')
    expect(form).toMatch(/name="opt_key" value="ctx_size"[^>]*>\s*<input name="opt_value" value="4096"/)
  })

  test('edit shows the instance\'s own options and saves replacements (a running instance restarts)', async () => {
    h = await harness(on)
    const s = await signIn()
    await api('POST', '/api/v1/instances/ed?wait=ready', { backend_options: { model: M_MODEL, ctx_size: 1024, flash_attn: 'on' }, environment: { A: 'b' }, on_demand_start: false })
    const page = await (await get(s, '/ui/instances/ed/edit')).text()
    expect(page).toContain('name="ctx_size" value="1024"')
    expect(page).toMatch(/name="opt_key" value="flash_attn"[^>]*>\s*<input name="opt_value" value="on"/)
    expect(page).toMatch(/name="env_key" value="A"[^>]*>\s*<input name="env_value" value="b"/)
    expect(page).toMatch(/<option value="false" selected>No<\/option>/)
    const res = await post(s, '/ui/instances/ed/edit', { _mode: 'edit', name: 'ignored', backend_type: 'llama_cpp', model: M2_MODEL, ctx_size: '2048' })
    expect(res.headers.get('hx-redirect')).toBe('/ui')
    await waitFor(() => h.manager.get('ed').status === 'running')
    expect(h.manager.get('ed').input).toEqual({ backend_type: 'llama_cpp', backend_options: { model: M2_MODEL, ctx_size: 2048 } })
    const bad = await (await post(s, '/ui/instances/ed/edit', { _mode: 'edit', backend_type: 'llama_cpp', model: M_MODEL, ctx_size: 'lots' })).text()
    expect(bad).toContain('id="err-ctx_size"')
    expect((await get(s, '/ui/instances/nope/edit')).status).toBe(404)
  })

  test('the form shows and edits the group, suggesting the names other instances have; an edit keeps the options it has no field for', async () => {
    h = await harness(on)
    const s = await signIn()
    await api('POST', '/api/v1/instances/other?wait=ready', { backend_options: { model: M_MODEL }, group: 'small' })
    await api('POST', '/api/v1/instances/kept?wait=ready', { backend_options: { model: M_MODEL }, group: 'large', max_concurrent_requests: 2, queue_timeout: 5 })
    const page = await (await get(s, '/ui/instances/kept/edit')).text()
    expect(page).toContain('name="group" value="large"')
    expect(page).toMatch(/<datalist id="group-names"><option value="large"><\/option><option value="small"><\/option><\/datalist>/)
    const res = await post(s, '/ui/instances/kept/edit', { _mode: 'edit', backend_type: 'llama_cpp', model: M2_MODEL, group: 'small' })
    expect(res.headers.get('hx-redirect')).toBe('/ui')
    await waitFor(() => h.manager.get('kept').status === 'running')
    expect(h.manager.get('kept').input).toEqual({ backend_type: 'llama_cpp', backend_options: { model: M2_MODEL }, group: 'small', max_concurrent_requests: 2, queue_timeout: 5 })
    const bad = await (await post(s, '/ui/instances/kept/edit', { _mode: 'edit', backend_type: 'llama_cpp', model: M_MODEL, group: 'no spaces' })).text()
    expect(bad).toContain('id="err-group"')
  })

  test('the list and the form show an instance\'s aliases; the form edits and clears them, and shows a taken one next to the field', async () => {
    h = await harness(on)
    const s = await signIn()
    await api('POST', '/api/v1/instances/other?wait=ready', { backend_options: { model: M_MODEL }, aliases: ['taken'] })
    await api('POST', '/api/v1/instances/al?wait=ready', { backend_options: { model: M_MODEL }, aliases: ['qwen', 'qwen-7b'] })
    expect(await (await get(s, '/ui')).text()).toContain('also qwen, qwen-7b')
    expect(await (await get(s, '/ui/instances/al/edit')).text()).toContain('name="aliases" value="qwen, qwen-7b"')
    const res = await post(s, '/ui/instances/al/edit', { _mode: 'edit', backend_type: 'llama_cpp', model: M_MODEL, aliases: 'fast,  small qwen' })
    expect(res.headers.get('hx-redirect')).toBe('/ui')
    await waitFor(() => h.manager.get('al').status === 'running')
    expect(h.manager.get('al').input.aliases).toEqual(['fast', 'small', 'qwen'])
    const bad = await (await post(s, '/ui/instances/al/edit', { _mode: 'edit', backend_type: 'llama_cpp', model: M_MODEL, aliases: 'taken' })).text()
    expect(bad).toContain('id="err-aliases"')
    expect(bad).toContain('already an alias of instance')
    expect(h.manager.get('al').input.aliases).toEqual(['fast', 'small', 'qwen'])
    await post(s, '/ui/instances/al/edit', { _mode: 'edit', backend_type: 'llama_cpp', model: M_MODEL, aliases: '' })
    await waitFor(() => h.manager.get('al').status === 'running')
    expect(h.manager.get('al').input.aliases).toBeUndefined()
  })

  test('start, stop, restart and delete answer the list and a message; a failed instance shows why', async () => {
    h = await harness(on)
    const s = await signIn()
    await api('POST', '/api/v1/instances/ok?wait=ready', { backend_options: { model: 'x' } })
    const stop = await (await post(s, '/ui/instances/ok/stop')).text()
    expect(stop).toContain('<span class="badge s-stopped">stopped</span>')
    expect(stop).toContain('<div id="flash" class="flash ok" role="status" hx-swap-oob="true">Stopped ok.</div>')
    const start = await (await post(s, '/ui/instances/ok/start')).text()
    expect(start).toMatch(/Start(ed|ing) ok/)
    await waitFor(() => h.manager.get('ok').status === 'running')
    expect(await (await post(s, '/ui/instances/ok/restart')).text()).toMatch(/Restart(ed|ing) ok/)
    await waitFor(() => h.manager.get('ok').status === 'running')

    const created = await api('POST', '/api/v1/instances/broken?wait=ready', { backend_options: { model: 'crash-on-load' }, auto_restart: false })
    expect(created.status).toBe(500)
    const list = await (await get(s, '/ui', true)).text()
    expect(list).toContain('<span class="badge s-failed">failed</span>')
    expect(list).toContain('exited while loading (exit code 1)')
    expect(list).toContain('error: failed to load model: fake corruption in tensor 7')
    const again = await (await post(s, '/ui/instances/broken/start')).text()
    expect(again).toContain('class="flash error"')
    expect(again).toContain('instance broken failed to start')

    const del = await (await post(s, '/ui/instances/ok/delete')).text()
    expect(del).not.toContain('id="row-ok"')
    await waitFor(() => !h.manager.find('ok'))
    const missing = await (await post(s, '/ui/instances/ok/stop')).text()
    expect(missing).toContain('instance &quot;ok&quot; not found')
  })
})

describe('logs', () => {
  async function readEvents(res: Response, until: (text: string) => boolean, timeoutMs = 5000): Promise<string> {
    const reader = res.body!.getReader()
    let text = ''
    const deadline = Date.now() + timeoutMs
    while (!until(text)) {
      if (Date.now() > deadline) throw new Error(`stream did not show the expected text; got:\n${text}`)
      const { value, done } = await reader.read()
      if (done) break
      text += new TextDecoder().decode(value)
    }
    reader.releaseLock()
    return text
  }

  test('errors and warnings are marked; start, stop and restart from the log page answer its status; the whole log downloads', async () => {
    h = await harness(on)
    const s = await signIn()
    await api('POST', '/api/v1/instances/lg?wait=ready', { backend_options: { model: 'x' } })
    const log = h.manager.get('lg').log
    log.write('err', new TextEncoder().encode('0.00.066.611 W srv    load_model: the slot context exceeds the training context\nerror: failed to open <model>\nplain line\n'))
    const page = await (await get(s, '/ui/instances/lg/logs')).text()
    expect(page).toContain('<span class="ln warn">0.00.066.611 W srv    load_model: the slot context exceeds the training context\n</span>')
    expect(page).toContain('<span class="ln err">error: failed to open &lt;model&gt;\n</span>')
    expect(page).toContain('<span class="ln">plain line\n</span>')
    expect(page).toContain('data-log-search')
    expect(page).toContain('data-log-pause')
    expect(page).toContain('hx-post="/ui/instances/lg/stop?view=logs" hx-target="#log-status"')

    const stopped = await (await post(s, '/ui/instances/lg/stop?view=logs')).text()
    expect(stopped).toContain('<span id="log-status"')
    expect(stopped).toContain('<span class="badge s-stopped">stopped</span>')
    expect(stopped).toContain('<div id="flash" class="flash ok" role="status" hx-swap-oob="true">Stopped lg.</div>')
    expect(stopped).not.toContain('id="instances"')
    // Without htmx, back to the log page.
    const plain = await post(s, '/ui/instances/lg/start?view=logs', {}, { hx: false, csrf: 'field' })
    expect(plain.status).toBe(303)
    expect(plain.headers.get('location')).toBe('/ui/instances/lg/logs')

    const file = await get(s, '/ui/instances/lg/logs/download')
    expect(file.status).toBe(200)
    expect(file.headers.get('content-disposition')).toBe('attachment; filename="lg.log"')
    const text = await file.text()
    expect(text).toContain('error: failed to open <model>\n')
    expect(text).toContain('[llamactl]')
    // the file: the start before the stop is in it as well as what came after
    expect(text.indexOf('stopping')).toBeGreaterThan(text.indexOf('plain line'))
    expect((await h.request('GET', '/ui/instances/lg/logs/download')).status).toBe(303) // no session: sign in first
  })

  test('the page shows the last lines as text; the stream continues after them, resumes by Last-Event-ID and ends with the client', async () => {
    h = await harness(on)
    const s = await signIn()
    await api('POST', '/api/v1/instances/lg?wait=ready', { backend_options: { model: 'x' } })
    const log = h.manager.get('lg').log
    log.note('<script>alert("line")</script>')
    const page = await (await get(s, '/ui/instances/lg/logs')).text()
    expect(page).toContain('&lt;script&gt;alert(&quot;line&quot;)&lt;/script&gt;')
    expect(page).not.toContain('<script>alert')
    const after = Number(/logs\/stream\?after=(\d+)/.exec(page)![1])
    expect(after).toBe(log.written)
    log.note('between page and stream')

    const abort = new AbortController()
    const res = await h.app.handle(
      new Request(`http://localhost/ui/instances/lg/logs/stream?after=${after}`, { headers: { cookie: s.cookie }, signal: abort.signal }),
    )
    expect(res.headers.get('content-type')).toContain('text/event-stream')
    const first = await readEvents(res, (t) => t.includes('between page and stream'))
    expect(first).toMatch(/id: \d+\nevent: lines\ndata: \["\[llamactl\] [^"]+ between page and stream"\]\n\n/)
    // a line with a carriage return stays one event line
    log.write('out', new TextEncoder().encode('live\rline <b>\n'))
    const second = await readEvents(res, (t) => t.includes('live'))
    expect(second).toContain('data: ["live\\rline <b>"]')
    const id = Number([...second.matchAll(/id: (\d+)/g)].pop()![1])
    expect(id).toBe(log.written)
    const listeners = (log as unknown as { listeners: Set<unknown> }).listeners
    expect(listeners.size).toBe(1)
    abort.abort()
    await waitFor(() => listeners.size === 0, 2000)

    log.note('after reconnect')
    const resumed = await h.app.handle(
      new Request('http://localhost/ui/instances/lg/logs/stream?after=0', { headers: { cookie: s.cookie, 'last-event-id': String(id) } }),
    )
    const text = await readEvents(resumed, (t) => t.includes('after reconnect'))
    expect(text).not.toContain('live')
    await resumed.body!.cancel()
    await waitFor(() => listeners.size === 0, 2000)
  })

  test('over a real socket, the stream ends when the client goes away', async () => {
    h = await harness(on)
    const s = await signIn()
    await api('POST', '/api/v1/instances/sock?wait=ready', { backend_options: { model: 'x' } })
    const log = h.manager.get('sock').log
    const listeners = (log as unknown as { listeners: Set<unknown> }).listeners
    const base = h.listen()
    const abort = new AbortController()
    const res = await fetch(`${base}/ui/instances/sock/logs/stream?after=${log.written}`, { headers: { cookie: s.cookie }, signal: abort.signal })
    expect(res.status).toBe(200)
    log.note('over the socket')
    expect(await readEvents(res, (t) => t.includes('over the socket'))).toContain('event: lines')
    expect(listeners.size).toBe(1)
    abort.abort()
    await waitFor(() => listeners.size === 0, 5000)
  })

  test('a client that stops reading is dropped, not queued for without bound (like the API follower)', async () => {
    h = await harness(on)
    const s = await signIn()
    await api('POST', '/api/v1/instances/stall?wait=ready', { backend_options: { model: 'x' } })
    const log = h.manager.get('stall').log
    const listeners = (log as unknown as { listeners: Set<unknown> }).listeners
    const port = new URL(h.listen()).port
    // A raw client that sends the request and then never reads a byte.
    const sock = connect(Number(port), '127.0.0.1')
    sock.pause()
    sock.write(`GET /ui/instances/stall/logs/stream?after=${log.written} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nCookie: ${s.cookie}\r\n\r\n`)
    try {
      await waitFor(() => listeners.size === 1, 5000)
      const line = 'x'.repeat(4096)
      // Up to 48 MB of log while the client reads nothing; the stream must give up well before.
      for (let i = 0; i < 48 && listeners.size > 0; i++) {
        for (let j = 0; j < 256; j++) log.note(line)
        await Bun.sleep(60) // past the stream's 50 ms batching, so each batch is queued
      }
      expect(listeners.size).toBe(0)
    } finally {
      sock.destroy()
    }
  }, 30000)

  test('the status next to the log is its own small fragment; an unknown instance is a 404 page', async () => {
    h = await harness(on)
    const s = await signIn()
    await api('POST', '/api/v1/instances/st?wait=ready', { backend_options: { model: 'x' } })
    expect(await (await get(s, '/ui/instances/st/status', true)).text()).toContain('<span class="badge s-running">running</span>')
    const missing = await get(s, '/ui/instances/none/logs')
    expect(missing.status).toBe(404)
    expect(await missing.text()).toContain('instance &quot;none&quot; not found')
  })
})

describe('inference keys', () => {
  test('create shows the secret once with a copy button; the list never does; revoke ends the key', async () => {
    h = await harness({ ...on, LLAMACTL_REQUIRE_INFERENCE_AUTH: 'true' })
    const s = await signIn()
    await api('POST', '/api/v1/instances/only?wait=ready', { backend_options: { model: 'x' } })
    const made = await (await post(s, '/ui/keys', { name: '<my app>', expires_days: '30', instances: 'only' })).text()
    const secret = /id="new-key" readonly value="([^"]+)"/.exec(made)![1]!
    expect(secret).toMatch(/^llamactl-/)
    expect(made).toContain('data-copy="new-key"')
    expect(made).toContain('&lt;my app&gt;')
    expect(made).toContain('hx-swap-oob="true"') // a fresh form
    const [k] = h.keys.list()
    expect(k).toMatchObject({ name: '<my app>', instances: ['only'] })
    expect(k!.expires_at! - Math.floor(Date.now() / 1000)).toBeGreaterThan(29 * 86400)
    const page = await (await get(s, '/ui/keys')).text()
    expect(page).not.toContain(secret)
    expect(page).toContain(`id="key-${k!.id}"`)
    const models = await h.request('GET', '/v1/models', undefined, { authorization: `Bearer ${secret}` })
    expect(models.status).toBe(200)

    const bad = await (await post(s, '/ui/keys', { name: 'x', expires_days: 'soon' })).text()
    expect(bad).toContain('role="alert">Expires after')
    const noName = await (await post(s, '/ui/keys', { name: '' })).text()
    expect(noName).toContain('role="alert">name:')
    expect(h.keys.list()).toHaveLength(1)

    const revoked = await (await post(s, `/ui/keys/${k!.id}/revoke`)).text()
    expect(revoked).not.toContain(`id="key-${k!.id}"`)
    expect((await h.request('GET', '/v1/models', undefined, { authorization: `Bearer ${secret}` })).status).toBe(401)
    expect(await (await post(s, `/ui/keys/${k!.id}/revoke`)).text()).toContain(`key ${k!.id} not found`)
  })
})

describe('activity', () => {
  test('lists the last requests with their figures, says when there are none, and filters; the table polls itself with its filter', async () => {
    h = await harness(on)
    const s = await signIn()
    await api('POST', '/api/v1/instances/one?wait=ready', { backend_options: { model: 'x' } })
    const empty = await (await get(s, '/ui/activity')).text()
    expect(empty).toContain('No requests yet.')
    expect(empty).toContain('aria-current="page">Activity</a>')
    const chat = await h.request('POST', '/v1/chat/completions', { model: 'one', max_tokens: 3, messages: [{ role: 'user', content: 'hi' }] }, { authorization: `Bearer ${KEY}` })
    await chat.text()
    await waitFor(async () => !(await (await get(s, '/ui/activity/requests', true)).text()).includes('No requests yet'), 2000)
    const frag = await (await get(s, '/ui/activity/requests', true)).text()
    expect(frag.startsWith('<section id="requests"')).toBe(true)
    expect(frag).toContain('hx-trigger="every 2s"')
    expect(frag).toMatch(/<td>one<\/td><td>chat_completions<\/td><td>200<\/td><td class="num">3<\/td><td class="num">3<\/td><td class="num">6000\.0<\/td>/)
    const errorsOnly = await (await get(s, '/ui/activity/requests?outcome=error', true)).text()
    expect(errorsOnly).toContain('No requests yet that match.')
    expect(errorsOnly).toContain('hx-get="/ui/activity/requests?outcome=error"')
    expect((await get(s, '/ui/activity?outcome=sometimes')).status).toBe(400)
  })
})

describe('system', () => {
  test("shows llamactl's version; llama-server's version and devices come from /api/v1/server/* or the server's message", async () => {
    h = await harness(on)
    const s = await signIn()
    const page = await (await get(s, '/ui/system')).text()
    expect(page).toMatch(/Version: \d+\.\d+\.\d+\nCommit: /)
    expect(page).toContain('hx-get="/ui/system/llama-server" hx-trigger="load"')
    // uptime, memory and the settings that say where things are and what the limits are
    expect(page).toMatch(/<p>Up \d+ s, using \d+ MB of memory\.<\/p>/)
    expect(page).toContain('<tr><td><code>instances.max_running_instances</code></td><td>no limit</td></tr>')
    expect(page).toContain(`<tr><td><code>data_dir</code></td><td>${h.manager.config.data_dir}</td></tr>`)
    // memory as the create check sees it; no GPU on this machine
    expect(page).toMatch(/<tr><td><code>RAM available \(\/proc\/meminfo\)<\/code><\/td><td>\d+ MiB<\/td><\/tr>/)
    // each backend's command, found or not (with how to set it)
    expect(page).toMatch(/<td>llama-server<\/td><td><code>[^<]*bun[^<]*<\/code><\/td><td><code>\/[^<]+<\/code><\/td>/)
    expect(page).toContain('<td>vllm serve</td><td><code>vllm</code></td><td><strong>not found</strong> on the PATH: set backends.vllm.command in the config or LLAMACTL_VLLM_COMMAND to its path</td>')
    const frag = await (await get(s, '/ui/system/llama-server', true)).text()
    // what the fake llama-server printed for --version and --list-devices
    expect(frag).toContain('<h3>Version</h3>\n  <pre class="out">version: 0.0.0-fake (build 1, commit fake)\nbuilt with bun for the fast suite\n</pre>')
    expect(frag).toContain('<h3>Devices</h3>\n  <pre class="out">Available devices:\n  FAKE0: Fake GPU (1024 MiB, 1024 MiB free)\n</pre>')
    expect(frag).not.toContain('class="error"')
    await h.close()

    // a llama-server that cannot run: the server's message for each
    h = await harness({ ...on, LLAMACTL_LLAMACPP_COMMAND: '/nonexistent/llama-server', LLAMACTL_LLAMACPP_ARGS: '' })
    const failed = await (await get(await signIn(), '/ui/system/llama-server', true)).text()
    for (const [flag, route] of [['--version', 'version'], ['--list-devices', 'devices']]) {
      expect(failed).toContain(`<p class="error">GET /api/v1/server/${route} answered 500: cannot run /nonexistent/llama-server ${flag}: executable not found: /nonexistent/llama-server</p>`)
    }
    expect(failed).not.toContain('<pre class="out">')
    // GPU memory where nvidia-smi lists GPUs (given here: this machine has none)
    await h.close()
    h = await harness(on)
    h.manager.models.readers = { meminfo: () => 'MemAvailable: 2097152 kB\n', nvidiaSmi: () => '24576, 4096\n24576, 20480\n' }
    const gpu = await (await get(await signIn(), '/ui/system')).text()
    expect(gpu).toContain('<tr><td><code>GPU memory free (nvidia-smi)</code></td><td>24576 MiB on 2 GPUs</td></tr>')
    expect(gpu).toContain('<td>2048 MiB</td>')
  })

  test('import from command line fills the form through parse-command; its message shows next to the command', async () => {
    h = await harness(on)
    const s = await signIn()
    const empty = await (await post(s, '/ui/form/import', createFields('imp', { command: '' }))).text()
    expect(empty).toContain('id="err-command">Paste a command line first.')
    const res = await (await post(s, '/ui/form/import', createFields('imp', { command: 'llama-server -m /m.gguf -c 4096' }))).text()
    expect(res).toContain('name="name" value="imp"')
    expect(res).not.toContain('id="err-command"')
    expect(res).toContain('name="ctx_size" value="4096"')
    expect(res).toContain('value="/m.gguf"')
    const bad = await (await post(s, '/ui/form/import', createFields('imp', { command: 'llama-server -m "unclosed' }))).text()
    expect(bad).toContain('id="err-command"')
    expect(bad).toContain('parse-command answered 400')
  })
})
