/**
 * Debian's Chromium for the browser tests, driven by playwright-core: started headless on a
 * fresh profile with the flags this closed machine needs (no background networking, no
 * component updates), recording every request the page makes and every console error.
 */
import { existsSync, mkdirSync, rmSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { type BrowserContext, chromium, type Page } from 'playwright-core'
import { tempDir } from '../helpers'

export const CHROMIUM = process.env.LLAMACTL_CHROMIUM ?? '/usr/bin/chromium'
export const SHOTS = resolve(import.meta.dir, '../../test-results/screenshots')

export interface Browser {
  context: BrowserContext
  page: Page
  /** Every URL the page asked for (all must be llamactl's). */
  requests: string[]
  /** Every console error and uncaught exception, with the page it came from. */
  consoleErrors: string[]
  /** A full-page screenshot under test-results/screenshots/NAME.png. */
  shot(name: string): Promise<unknown>
  close(): Promise<void>
}

export async function openChromium(base: string, opts: { clipboard?: boolean } = {}): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Chromium is not at ${CHROMIUM}: install it with "apt-get install chromium" (.ci/run does), or point LLAMACTL_CHROMIUM at one`)
  }
  mkdirSync(SHOTS, { recursive: true })
  const profile = tempDir('llamactl-chromium-')
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    viewport: { width: 1280, height: 800 },
  })
  const requests: string[] = []
  const consoleErrors: string[] = []
  context.on('request', (r) => requests.push(r.url()))
  if (opts.clipboard) await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base })
  const page = context.pages()[0] ?? (await context.newPage())
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(`${page.url()}: ${m.text()}`)
  })
  page.on('pageerror', (e) => consoleErrors.push(`${page.url()}: ${e.message}`))
  return {
    context,
    page,
    requests,
    consoleErrors,
    // caret 'initial': hiding it would inject a <style>, which the page's CSP refuses (and logs)
    shot: (name) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true, caret: 'initial', animations: 'allow' }),
    async close() {
      await context.close()
      rmSync(profile, { recursive: true, force: true })
    },
  }
}
