/**
 * The Models view in a real browser (Debian's Chromium, playwright-core): download a model from
 * a hub of our own, watch its progress bar move from server-sent events (the page does not poll),
 * see it in the cache, delete it. Screenshots go to test-results/screenshots/models-*.png.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import type { Page } from 'playwright-core'
import { type FakeHub, fakeHub, tinyGguf } from '../fixtures/fake-hub'
import { type Harness, harness } from '../helpers'
import { type Browser, openChromium } from './chromium'

const KEY = 'browser-models-management-key-0123456789'
const FILE = 'demo-Q4_K_M.gguf'
const SIZE = 2 * 1024 * 1024

let hub: FakeHub
let h: Harness
let base: string
let browser: Browser | undefined
let page: Page
let requests: string[]
let consoleErrors: string[]
const shot = (name: string) => browser!.shot(name)

beforeAll(async () => {
  hub = fakeHub([{ id: 'acme/demo-GGUF', files: [{ path: FILE, content: tinyGguf('demo', SIZE) }, { path: 'mmproj-F16.gguf', content: tinyGguf('proj', 4096) }] }])
  h = await harness({ LLAMACTL_REQUIRE_MANAGEMENT_AUTH: 'true', LLAMACTL_MANAGEMENT_KEYS: KEY, LLAMACTL_HF_ENDPOINT: hub.url })
  base = h.listen()
  browser = await openChromium(base)
  ;({ page, requests, consoleErrors } = browser)
}, 60000)

afterAll(async () => {
  hub?.release()
  await browser?.close()
  await h?.close()
  hub?.close()
})

describe('the Models view in Chromium', () => {
  test('download: the progress bar moves from server-sent events, the model then shows in the cache; delete it', async () => {
    await page.goto(`${base}/ui/login`)
    await page.locator('#key').fill(KEY)
    await page.keyboard.press('Enter')
    await page.waitForURL(`${base}/ui`)
    await page.getByRole('link', { name: 'Models' }).click()
    await page.waitForURL(`${base}/ui/models`)
    await page.locator('text=Nothing downloaded yet.').waitFor()

    // a bad repo string is refused above the list
    await page.locator('#m-repo').fill('not a repo')
    await page.getByRole('button', { name: 'Download' }).click()
    await page.locator('#download-error').waitFor()
    expect(await page.locator('#download-error').textContent()).toContain('repo must be "org/name"')

    // half the file, then the transfer waits: the bar stands at about half
    hub.pauseAfter(FILE, SIZE / 2)
    await page.locator('#m-repo').fill('acme/demo-GGUF:Q4_K_M')
    await page.getByRole('button', { name: 'Download' }).click()
    const item = page.locator('li.job').first()
    await item.waitFor()
    const bar = item.locator('progress')
    await page.waitForFunction(() => {
      const p = document.querySelector('li.job progress') as HTMLProgressElement | null
      return !!p && p.value >= 400 && p.value <= 600
    }, undefined, { timeout: 15000 })
    expect(await item.locator('[data-job-text]').textContent()).toContain(`of 2.0 MiB · ${FILE}`)
    expect(await item.getAttribute('data-status')).toBe('downloading')
    const listRequestsMidway = requests.filter((u) => u.includes('/ui/models/jobs')).length
    await shot('models-downloading')

    hub.release()
    await page.waitForFunction(() => document.querySelector('li.job')?.getAttribute('data-status') === 'completed', undefined, { timeout: 15000 })
    await page.locator('tr[data-model="acme/demo-GGUF:Q4_K_M"]').waitFor()
    expect(Number(await bar.getAttribute('value'))).toBe(1000)
    const row = page.locator('tr[data-model="acme/demo-GGUF:Q4_K_M"]')
    expect(await row.textContent()).toContain('mmproj-F16.gguf')
    await shot('models-downloaded')

    // no polling: the lists were fetched again only when a job appeared or ended
    expect(requests.filter((u) => u.includes('/ui/models/jobs')).length - listRequestsMidway).toBeLessThanOrEqual(2)
    expect(requests.filter((u) => u.includes('/ui/models/events')).length).toBe(1)

    page.once('dialog', (d) => d.accept())
    await row.getByRole('button', { name: 'Delete' }).click()
    await page.locator('text=Deleted acme/demo-GGUF:Q4_K_M.').waitFor()
    expect(await page.locator('tr[data-model]').count()).toBe(0)
    await shot('models-deleted')

    expect(consoleErrors).toEqual([])
    expect(requests.every((u) => u.startsWith(base))).toBe(true)
  }, 60000)
})
