import { afterAll, beforeAll, expect, test } from 'bun:test'
import { join, resolve } from 'node:path'
import { BUN, tempDir } from '../helpers'
import { AUTH, type Running, startLlamactl } from './process'

// The single binary, built fresh, run from an empty folder: the same lifecycle as `npm start`.
let bin: string
let r: Running | undefined

beforeAll(() => {
  bin = join(tempDir('llamactl-bin-'), 'llamactl')
  const build = Bun.spawnSync([BUN, 'build.ts', '--outfile', bin], { cwd: resolve(import.meta.dir, '../..'), stdout: 'pipe', stderr: 'pipe' })
  if (build.exitCode !== 0) throw new Error(`build failed:\n${build.stderr}`)
}, 120000)

afterAll(async () => {
  if (r && r.proc.exitCode === null) await r.stop('SIGTERM')
})

test('the built binary runs from an empty folder: create, chat through /v1, stop', async () => {
  const empty = tempDir('llamactl-empty-')
  // no Node and no Bun on the PATH: the binary needs neither
  r = await startLlamactl(empty, { command: [bin], env: { PATH: '/nonexistent', LLAMACTL_ENABLE_SWAGGER: 'true' } })
  expect(r.output()).toContain(`data: ${empty}`)
  const version = await fetch(`${r.url}/api/v1/version`, { headers: AUTH })
  expect(await version.text()).toMatch(/^Version: \d+\.\d+\.\d+\nCommit: \w+\nBuild Time: \d{4}-\d\d-\d\dT/)
  // the page and its files (htmx included) are inside the binary
  expect((await fetch(`${r.url}/ui/login`)).status).toBe(200)
  const htmx = await fetch(`${r.url}/ui/assets/htmx.min.js`)
  expect(await htmx.text()).toBe(await Bun.file(resolve(import.meta.dir, '../../node_modules/htmx.org/dist/htmx.min.js')).text())
  expect((await fetch(`${r.url}/ui/assets/style.css`)).status).toBe(200)
  expect((await r.api('POST', '/api/v1/instances/first?wait=ready', { backend_options: { model: 'x' } })).body.status).toBe('running')
  const chat = await fetch(`${r.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...AUTH },
    body: JSON.stringify({ model: 'first', messages: [{ role: 'user', content: 'hi' }] }),
  })
  expect(chat.status).toBe(200)
  expect((await chat.json()).choices[0].message.content).toContain('tok0')
  expect((await r.api('POST', '/api/v1/instances/first/stop')).body.status).toBe('stopped')
  // the API docs' assets are embedded
  const ui = await fetch(`${r.url}/swagger/assets/swagger-ui-bundle.js`)
  expect(ui.status).toBe(200)
  expect((await ui.text()).length).toBeGreaterThan(1_000_000)
  expect(Object.keys(((await (await fetch(`${r.url}/swagger/json`)).json()) as { paths: object }).paths).length).toBeGreaterThan(10)
  expect(await r.stop('SIGTERM')).toBe(0)
}, 60000)
