/**
 * The page in a real browser: Debian's Chromium, driven by playwright-core, against llamactl on
 * an ephemeral loopback port with authentication on and the fake llama-server as backend.
 * Every request the page makes is recorded (all must go to llamactl) and every console error
 * (there must be none). Screenshots of each screen, light and dark, desktop and phone, go to
 * test-results/screenshots/.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import type { BrowserContext, Page } from 'playwright-core'
import { tinyLlama, writeGguf, writeSplit } from '../fixtures/gguf-writer'
import { type Harness, harness, tempDir, waitFor } from '../helpers'
import { type Browser, openChromium } from './chromium'

const KEY = 'browser-test-management-key-0123456789'

let h: Harness
let base: string
// The model library the Models view lists: a folder with two models, one split in two files.
const modelsDir = tempDir('llamactl-browser-models-')
writeGguf(join(modelsDir, 'tiny-chat-Q8_0.gguf'), tinyLlama({ name: 'tiny chat', chatTemplate: true, fileType: 7, context: 8192 }))
writeSplit(modelsDir, 'big-model', tinyLlama({ name: 'big', layers: 6 }), 2)
let browser: Browser | undefined
let context: BrowserContext
let page: Page
let requests: string[]
let consoleErrors: string[]
const shot = (name: string) => browser!.shot(name)

/** The status badge in an instance's row. */
const badge = (name: string) => page.locator(`#row-${name} .badge`)

beforeAll(async () => {
  h = await harness({ LLAMACTL_REQUIRE_MANAGEMENT_AUTH: 'true', LLAMACTL_MANAGEMENT_KEYS: KEY, LLAMACTL_MODELS_DIRS: modelsDir, LLAMACTL_LLAMACPP_CACHE_DIR: join(modelsDir, 'no-cache') })
  base = h.listen()
  browser = await openChromium(base, { clipboard: true })
  ;({ context, page, requests, consoleErrors } = browser)
}, 60000)

afterAll(async () => {
  await browser?.close()
  await h?.close()
  rmSync(modelsDir, { recursive: true, force: true })
})

describe('the page in Chromium', () => {
  test('sign in with the keyboard (a wrong key is refused)', async () => {
    await page.goto(`${base}/`)
    expect(page.url()).toBe(`${base}/ui/login`)
    await shot('login')
    await page.keyboard.type('not-the-key')
    await page.keyboard.press('Enter')
    await page.waitForURL(`${base}/ui/login?error=1`)
    await expectVisible('#login-error')
    await page.locator('#key').fill(KEY)
    await page.keyboard.press('Enter')
    await page.waitForURL(`${base}/ui`)
    await expectVisible('text=No instances yet')
    await shot('instances-empty')
  })

  test('create an instance with the fake llama-server and watch it become running without a reload', async () => {
    await page.getByRole('link', { name: 'New instance' }).click()
    await page.waitForURL(`${base}/ui/instances/new`)
    await page.locator('#f-name').fill('demo')
    await page.locator('#f-model').fill('load-3000')
    await page.locator('#f-ctx_size').fill('2048')
    await page.locator('#env-rows input[name=env_key]').first().fill('DEMO_VAR')
    await page.locator('#env-rows input[name=env_value]').first().fill('yes')
    await page.getByRole('button', { name: 'Add variable' }).click()
    await expect2(() => page.locator('#env-rows .kv-row').count(), 2)
    await page.locator('#env-rows .kv-row').nth(1).getByRole('button', { name: 'Remove this variable' }).click()
    await expect2(() => page.locator('#env-rows .kv-row').count(), 1)
    await page.locator('details.advanced summary').click()
    await page.locator('#opt-rows input[name=opt_key]').first().fill('threads')
    await page.locator('#opt-rows input[name=opt_value]').first().fill('2')
    await shot('instance-form')
    await page.getByRole('button', { name: 'Create and start' }).click()
    await page.waitForURL(`${base}/ui`)
    await page.evaluate(() => ((window as unknown as { marker: number }).marker = 42))
    await expectText(badge('demo'), 'starting')
    await expectText(badge('demo'), 'running', 10000)
    // the same document: the status changed by polling, not by a reload
    expect(await page.evaluate(() => (window as unknown as { marker?: number }).marker)).toBe(42)
    expect(h.manager.get('demo').input).toEqual({
      backend_type: 'llama_cpp',
      backend_options: { model: 'load-3000', ctx_size: 2048, threads: 2 },
      environment: { DEMO_VAR: 'yes' },
    })
    await expect2(() => page.locator('#row-demo td[data-label=Port]').textContent(), String(h.manager.get('demo').port))
    await shot('instances-running')
  }, 30000)

  test("a page served by a backend through the proxy cannot act with the admin's session", async () => {
    // The session cookie is the page's only: it is not sent to the API or the proxy.
    const cookies = await context.cookies(`${base}/ui`)
    expect(cookies.map((c) => [c.name, c.path, c.httpOnly, c.sameSite])).toEqual([['llamactl_session', '/ui', true, 'Strict']])
    expect(await context.cookies(`${base}/api/v1/instances/demo/proxy/hostile.html`)).toEqual([])
    // Suppose the admin does open a backend's page (here with the key added to that one request,
    // as a reverse proxy in front could): its script runs, but as an opaque origin.
    const hostile = `${base}/api/v1/instances/demo/proxy/hostile.html`
    await context.route(hostile, (route) => route.continue({ headers: { ...route.request().headers(), authorization: `Bearer ${KEY}` } }))
    const tab = await context.newPage()
    try {
      const res = await tab.goto(hostile)
      expect(res!.status()).toBe(200)
      expect(res!.headers()['content-security-policy']).toContain('sandbox')
      const out = tab.locator('#out')
      await out.filter({ hasText: 'done' }).waitFor({ timeout: 15000 })
      const report = (await out.textContent()) ?? ''
      expect(report).toContain('script ran at origin null')
      // no cookie, no storage at an opaque origin
      expect(report).toContain('document.cookie: threw SecurityError')
      expect(report).toContain('localStorage: threw SecurityError')
      expect(report).not.toContain('with the token')
      expect(report).not.toMatch(/: 20\d/) // no attempt got a success
      expect(await tab.locator('#cookie').textContent()).toBe('backend got cookie: none')
      // a plain form posted from the page (a navigation, not a fetch) goes without the session
      const [posted] = await Promise.all([
        tab.waitForResponse((r) => r.url() === `${base}/ui/instances/demo/stop`),
        tab.evaluate(() => {
          const f = document.createElement('form')
          f.method = 'post'
          f.action = '/ui/instances/demo/stop'
          document.body.append(f)
          f.submit()
        }),
      ])
      expect([303, 403]).toContain(posted.status())
      expect(h.manager.get('demo').status).toBe('running')
      expect(h.manager.find('evil')).toBeUndefined()
    } finally {
      await tab.close()
      await context.unroute(hostile)
    }
    expect(h.manager.get('demo').status).toBe('running')
  }, 30000)

  test("llama-server's web UI at /llama-cpp/{name}/: served sandboxed, its script cannot act with the session", async () => {
    expect(await context.cookies(`${base}/llama-cpp/demo/`)).toEqual([])
    const hostile = `${base}/llama-cpp/demo/hostile.html`
    await context.route(hostile, (route) => route.continue({ headers: { ...route.request().headers(), authorization: `Bearer ${KEY}` } }))
    const tab = await context.newPage()
    try {
      const res = await tab.goto(hostile)
      expect(res!.status()).toBe(200)
      expect(res!.headers()['content-security-policy']).toContain('sandbox')
      const out = tab.locator('#out')
      await out.filter({ hasText: 'done' }).waitFor({ timeout: 15000 })
      const report = (await out.textContent()) ?? ''
      expect(report).toContain('script ran at origin null')
      expect(report).toContain('document.cookie: threw SecurityError')
      expect(report).not.toContain('with the token')
      expect(report).not.toMatch(/: 20\d/)
      expect(await tab.locator('#cookie').textContent()).toBe('backend got cookie: none')
      await shot('llama-cpp-webui-sandboxed')
    } finally {
      await tab.close()
      await context.unroute(hostile)
    }
    expect(h.manager.get('demo').status).toBe('running')
    expect(h.manager.find('evil')).toBeUndefined()
  }, 30000)

  test('models: the library with header fields and the estimate; "New instance" is one click to a filled form', async () => {
    await page.getByRole('link', { name: 'Models' }).click()
    await page.waitForURL(`${base}/ui/models`)
    const chat = page.locator('tr.model', { hasText: 'tiny-chat-Q8_0.gguf' })
    await expectText(chat.locator('td[data-label=Quantization]'), 'Q8_0')
    await expectText(chat.locator('td[data-label=Context]'), '8192')
    await expectText(chat.locator('td[data-label="Chat template"]'), 'yes')
    await expectText(chat.locator('td[data-label=Estimate]'), 'RAM')
    await expectText(page.locator('tr.model', { hasText: 'big-model-00001-of-00002.gguf' }), 'llama · 2 files')
    await shot('models-library')
    // Another context size: the estimate follows.
    const before = await chat.locator('td[data-label=Estimate]').textContent()
    await page.locator('#est-ctx').fill('65536')
    await page.getByRole('button', { name: 'Estimate' }).click()
    await page.waitForURL(/ctx_size=65536/)
    expect(await page.locator('tr.model', { hasText: 'tiny-chat-Q8_0.gguf' }).locator('td[data-label=Estimate]').textContent()).not.toBe(before)
    await page.locator('#est-ctx').fill('1024')
    await page.getByRole('button', { name: 'Estimate' }).click()
    await page.waitForURL(/ctx_size=1024/)
    await page.locator('tr.model', { hasText: 'tiny-chat-Q8_0.gguf' }).getByRole('link', { name: /New instance/ }).click()
    await page.waitForURL(/\/ui\/instances\/new\?/)
    expect(await page.locator('#f-model').inputValue()).toBe(join(modelsDir, 'tiny-chat-Q8_0.gguf'))
    expect(await page.locator('#f-ctx_size').inputValue()).toBe('1024')
    expect(await page.locator('#f-name').inputValue()).toBe('tiny-chat-Q8_0')
    await shot('models-library-new-instance-form')
    await page.getByRole('button', { name: 'Create and start' }).click()
    await page.waitForURL(`${base}/ui`)
    await expectText(badge('tiny-chat-Q8_0'), 'running', 10000)
    expect(h.manager.get('tiny-chat-Q8_0').input.backend_options).toEqual({ model: join(modelsDir, 'tiny-chat-Q8_0.gguf'), ctx_size: 1024, parallel: 1 })
    await h.manager.remove('tiny-chat-Q8_0')
  }, 30000)

  test("invalid input shows the server's message next to the field and keeps what was typed", async () => {
    await page.goto(`${base}/ui/instances/new`)
    await page.locator('#f-name').fill('second')
    await page.locator('#f-model').fill('/models/x.gguf')
    await page.locator('#f-ctx_size').fill('lots')
    await page.getByRole('button', { name: 'Create and start' }).click()
    await expectText(page.locator('#err-ctx_size'), 'llama-server expects a whole number')
    expect(await page.locator('#f-ctx_size').getAttribute('aria-invalid')).toBe('true')
    expect(await page.locator('#f-name').inputValue()).toBe('second')
    expect(await page.locator('#f-model').inputValue()).toBe('/models/x.gguf')
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('f-ctx_size')
    expect(page.url()).toBe(`${base}/ui/instances/new`)
    expect(h.manager.find('second')).toBeUndefined()
    await shot('instance-form-error')
  })

  test('import from command line: the answer of parse-command, or its message next to the command', async () => {
    await page.locator('details.import summary').click()
    await page.locator('#f-command').fill('llama-server -m /models/y.gguf -c 8192')
    await page.getByRole('button', { name: 'Fill the form' }).click()
    await waitFor(async () => (await page.locator('#f-model').inputValue()) === '/models/y.gguf')
    expect(await page.locator('#f-ctx_size').inputValue()).toBe('8192')
    expect(await page.locator('#f-name').inputValue()).toBe('second')
    // a command that cannot be read: parse-command's message next to the command
    // the form came back with the import section still open
    await page.locator('#f-command').fill('llama-server -m "unclosed')
    await page.getByRole('button', { name: 'Fill the form' }).click()
    await expectText(page.locator('#err-command'), 'quote')
  })

  test('logs: the last lines, then new ones as they are written (as text, never markup)', async () => {
    await page.goto(`${base}/ui`)
    await page.locator('#logs-demo').click()
    await page.waitForURL(`${base}/ui/instances/demo/logs`)
    await expectText(page.locator('#log'), 'fake-llama-server: model load-3000')
    await expectText(page.locator('[data-log-state]'), 'Following.')
    h.manager.get('demo').log.note('<b>bold?</b> <img src=x onerror=alert(1)> a new line')
    await expectText(page.locator('#log'), '<b>bold?</b> <img src=x onerror=alert(1)> a new line')
    expect(await page.locator('#log b, #log img').count()).toBe(0)
    for (let i = 0; i < 80; i++) h.manager.get('demo').log.note(`line ${i}`)
    await expectText(page.locator('#log'), 'line 79')
    // following: scrolled to the end
    expect(await page.locator('#log').evaluate((el) => el.scrollHeight - el.scrollTop - el.clientHeight)).toBeLessThan(5)
    await expectText(page.locator('#log-status .badge'), 'running')
    // the proxy test's request, against its axes
    expect(await page.locator('#activity svg.chart').count()).toBe(1)
    await expectText(page.locator('#activity svg.chart'), 'now')
    await shot('logs')

    // pause: new lines are held, not shown, until Follow
    await page.getByRole('button', { name: 'Pause' }).click()
    h.manager.get('demo').log.note('held while paused')
    await expectText(page.locator('[data-log-state]'), 'Paused; 1 new line held.')
    expect(await page.locator('#log').textContent()).not.toContain('held while paused')
    await page.getByRole('button', { name: 'Follow' }).click()
    await expectText(page.locator('#log'), 'held while paused')
    // an error line is marked; search shows only the lines with the words
    h.manager.get('demo').log.write('err', new TextEncoder().encode('error: something broke\n'))
    await expectText(page.locator('#log .ln.err').last(), 'error: something broke')
    await page.locator('[data-log-search]').fill('line 7')
    const visible = await page.locator('#log .ln:visible').allTextContents()
    expect(visible.length).toBe(11) // line 7, line 70 … line 79
    expect(visible.every((t) => t.includes('line 7'))).toBe(true)
    await shot('logs-search')
    // Connect: the snippets carry the address the browser used, and copy
    await expectText(page.locator('#connect-curl'), `curl ${base}/v1/chat/completions`)
    await page.locator('[data-copy="connect-curl"]').click()
    expect(await page.evaluate(() => navigator.clipboard.readText())).toContain(`${base}/v1/chat/completions`)
    await page.locator('[data-log-search]').fill('')
    // stop from the log page: its status changes there
    await page.getByRole('button', { name: 'Stop', exact: true }).click()
    await expectText(page.locator('#log-status .badge'), 'stopped')
    await expectText(page.locator('#flash'), 'Stopped demo.')
    await page.getByRole('button', { name: 'Start', exact: true }).click()
    await expectText(page.locator('#log-status .badge'), 'running')
  })

  test('a failed instance shows why: its error and last log lines', async () => {
    expect((await h.request('POST', '/api/v1/instances/broken?wait=ready', { backend_options: { model: 'crash-on-load' }, auto_restart: false }, { authorization: `Bearer ${KEY}` })).status).toBe(500)
    await page.goto(`${base}/ui`)
    await expectText(badge('broken'), 'failed')
    await expectText(page.locator('tr.why'), 'exited while loading (exit code 1)')
    await expectText(page.locator('tr.why pre'), 'error: failed to load model: fake corruption in tensor 7')
    await shot('instances-failed')
  })

  test('stop with the keyboard; delete asks first', async () => {
    // Tab to the Stop button (focus survives the list being replaced by polls), press Enter.
    await page.locator('#row-demo th a').focus()
    for (let i = 0; i < 10 && (await page.evaluate(() => document.activeElement?.id)) !== 'stop-demo'; i++) await page.keyboard.press('Tab')
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('stop-demo')
    await page.keyboard.press('Enter')
    await expectText(badge('demo'), 'stopped', 10000)
    await expectText(page.locator('#flash'), 'demo')

    let question = ''
    page.once('dialog', (d) => {
      question = d.message()
      d.dismiss()
    })
    await page.locator('#delete-demo').click()
    await waitFor(() => question !== '')
    expect(question).toContain('Delete the instance demo?')
    await page.waitForTimeout(300)
    expect(h.manager.find('demo')).toBeDefined()
    expect(requests.filter((u) => u.includes('/ui/instances/demo/delete'))).toEqual([]) // dismissed: not even asked
    page.once('dialog', (d) => d.accept())
    await page.locator('#delete-demo').click()
    await expect2(() => page.locator('#row-demo').count(), 0)
    await waitFor(() => !h.manager.find('demo'))
    await shot('instances-after-delete')
  }, 30000)

  test('inference keys: create (the secret once, with a copy button), list, revoke', async () => {
    await page.getByRole('link', { name: 'Inference keys' }).click()
    await page.waitForURL(`${base}/ui/keys`)
    await page.locator('#k-name').fill('my app <1>')
    await page.getByRole('button', { name: 'Create key' }).click()
    const secret = await page.locator('#new-key').inputValue()
    expect(secret).toMatch(/^llamactl-/)
    expect(await page.locator('#k-name').inputValue()).toBe('') // a fresh form for the next key
    await page.getByRole('button', { name: 'Copy' }).click()
    await expectText(page.locator('[data-copy]'), 'Copied')
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(secret)
    await shot('keys-created')
    await page.reload()
    expect(await page.content()).not.toContain(secret)
    await expectText(page.locator('#keys table'), 'my app <1>')
    page.once('dialog', (d) => d.accept())
    await page.getByRole('button', { name: 'Revoke my app <1>' }).click()
    await expectVisible('text=No inference keys yet')
    expect(h.keys.list()).toHaveLength(0)
  })

  test('system: versions and devices', async () => {
    await page.getByRole('link', { name: 'System' }).click()
    await expectText(page.locator('main'), 'Version: ')
    await expectText(page.locator('main'), 'Commit: ')
    // llama-server's version and devices (what the fake printed) replace the placeholder once asked
    await waitFor(async () => (await page.locator('#llama-server[aria-busy]').count()) === 0, 25000)
    await expectText(page.locator('#llama-server'), 'version: 0.0.0-fake (build 1, commit fake)')
    await expectText(page.locator('#llama-server'), 'FAKE0: Fake GPU (1024 MiB, 1024 MiB free)')
    expect(await page.locator('#llama-server .error').count()).toBe(0)
    await shot('system')
  }, 30000)

  test('light and dark, desktop and phone', async () => {
    const bg = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor)
    await page.goto(`${base}/ui`)
    await page.emulateMedia({ colorScheme: 'light' })
    const light = await bg()
    await page.emulateMedia({ colorScheme: 'dark' })
    const dark = await bg()
    expect(light).not.toBe(dark)
    await shot('instances-dark')
    await page.goto(`${base}/ui/instances/new`)
    await shot('instance-form-dark')
    await page.goto(`${base}/ui/keys`)
    await shot('keys-dark')
    await page.goto(`${base}/ui/models`)
    await shot('models-library-dark')
    await page.setViewportSize({ width: 390, height: 844 })
    await page.goto(`${base}/ui`)
    await shot('instances-phone-dark')
    await page.emulateMedia({ colorScheme: 'light' })
    await shot('instances-phone')
    // nothing wider than the phone's screen
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390)
    await page.goto(`${base}/ui/models`)
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390)
    await shot('models-library-phone')
    await page.goto(`${base}/ui/instances/new`)
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390)
    await shot('instance-form-phone')
    // every other view at phone size, light and dark: nothing wider than the screen
    for (const path of ['/ui/activity', '/ui/models', '/ui/nodes', '/ui/keys', '/ui/system']) {
      for (const scheme of ['light', 'dark'] as const) {
        await page.emulateMedia({ colorScheme: scheme })
        await page.goto(`${base}${path}`)
        expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390)
        await shot(`${path.split('/').filter(Boolean).slice(1).join('-') || 'instances'}-phone${scheme === 'dark' ? '-dark' : ''}`)
      }
    }
    await page.emulateMedia({ colorScheme: 'light' })
    await page.setViewportSize({ width: 1280, height: 800 })
  })

  test('the theme toggle: auto, light, dark, kept across pages; auto follows the system again', async () => {
    const bg = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor)
    await page.emulateMedia({ colorScheme: 'light' })
    await page.goto(`${base}/ui`)
    const light = await bg()
    const toggle = page.locator('[data-theme-toggle]')
    await expectText(toggle, 'Theme: auto')
    await toggle.click()
    await expectText(toggle, 'Theme: light')
    await toggle.click()
    await expectText(toggle, 'Theme: dark')
    const dark = await bg()
    expect(dark).not.toBe(light)
    // kept: another page opens dark, though the system is light
    await page.goto(`${base}/ui/keys`)
    expect(await bg()).toBe(dark)
    await expectText(page.locator('[data-theme-toggle]'), 'Theme: dark')
    await shot('keys-dark-chosen')
    await page.locator('[data-theme-toggle]').click()
    await expectText(page.locator('[data-theme-toggle]'), 'Theme: auto')
    expect(await bg()).toBe(light)
    await page.emulateMedia({ colorScheme: 'dark' })
    expect(await bg()).toBe(dark)
    await page.emulateMedia({ colorScheme: 'light' })
  })

  test('sign out', async () => {
    await page.goto(`${base}/ui`)
    await page.getByRole('button', { name: 'Sign out' }).click()
    await page.waitForURL(`${base}/ui/login`)
    await page.goto(`${base}/ui/keys`)
    expect(page.url()).toBe(`${base}/ui/login`)
  })

  test('the page asked no other host for anything and logged no console error', () => {
    expect(requests.length).toBeGreaterThan(20)
    const mine = new URL(base).host
    expect(requests.filter((u) => new URL(u).host !== mine)).toEqual([])
    expect(requests.every((u) => u.startsWith(`${base}/`))).toBe(true)
    expect(consoleErrors).toEqual([])
  })
})

async function expectVisible(selector: string) {
  await page.locator(selector).first().waitFor({ state: 'visible', timeout: 5000 })
}

async function expectText(locator: ReturnType<Page['locator']>, text: string, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs
  let last = ''
  for (;;) {
    last = (await locator.first().textContent({ timeout: timeoutMs }).catch(() => '')) ?? ''
    if (last.includes(text)) return
    if (Date.now() > deadline) throw new Error(`expected ${JSON.stringify(text)} in ${locator}, got ${JSON.stringify(last.slice(0, 500))}`)
    await Bun.sleep(50)
  }
}

async function expect2<T>(get: () => Promise<T>, want: T, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs
  let last: T
  for (;;) {
    last = await get()
    if (last === want) return
    if (Date.now() > deadline) throw new Error(`expected ${JSON.stringify(want)}, got ${JSON.stringify(last)}`)
    await Bun.sleep(50)
  }
}
