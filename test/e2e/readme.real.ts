/**
 * The README's "A first instance", run as written against the real llama-server: its shell
 * block through bash and its Node snippet through node, with three things put in that a reader
 * puts in themselves (their model file for /path/to/your/model.gguf, and, because tests listen
 * on ephemeral ports, the port llamactl took for 8080), on a fresh home folder so the
 * management key is where the README says it is.
 */
import { afterAll, beforeAll, expect, test } from 'bun:test'
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { BUN, tempDir } from '../helpers'
import { realLlama } from './real'

const ROOT = resolve(import.meta.dir, '../..')
const README = readFileSync(join(ROOT, 'README.md'), 'utf8')
const section = README.slice(README.indexOf('## A first instance'), README.indexOf('## What it does'))
const blocks = [...section.matchAll(/```(sh|js)\n([\s\S]*?)```/g)].map((m) => ({ lang: m[1]!, code: m[2]! }))

const { server, model } = realLlama()
const home = tempDir('llamactl-readme-home-')
let proc: ReturnType<typeof Bun.spawn> | null = null
let origin = ''

beforeAll(async () => {
  // As `npm start` runs it (package.json), with llama-server named as the README says.
  proc = Bun.spawn([BUN, '--no-env-file', join(ROOT, 'src/main.ts'), '--port', '0'], {
    cwd: home,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, LLAMACTL_LLAMACPP_COMMAND: server },
    stdout: 'pipe',
    stderr: 'pipe',
  })
  let out = ''
  void (async () => {
    for await (const c of proc!.stdout as ReadableStream<Uint8Array>) out += new TextDecoder().decode(c)
  })()
  for (const until = Date.now() + 20000; !origin; ) {
    const m = /listening on (http:\/\/[\d.]+:\d+)/.exec(out)
    if (m) origin = m[1]!
    else if (Date.now() > until) throw new Error(`llamactl did not start:\n${out}`)
    else await Bun.sleep(20)
  }
  // The README's claim: the key is made on the first start and its place printed.
  expect(out).toContain(`management key: in ${home}/.local/share/llamactl/management.key`)
}, 30000)

afterAll(async () => {
  proc?.kill('SIGTERM')
  await proc?.exited
  rmSync(home, { recursive: true, force: true })
})

/** What the reader changes: their model and, here, the port. */
const asTheReaderWould = (code: string) => code.replaceAll('http://127.0.0.1:8080', origin).replace('/path/to/your/model.gguf', model)

function bash(script: string): { out: string; code: number } {
  const r = Bun.spawnSync(['bash', '-c', `set -e\n${script}`], { cwd: home, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home }, stdout: 'pipe', stderr: 'pipe', timeout: 120000 })
  return { out: r.stdout.toString() + r.stderr.toString(), code: r.exitCode ?? -1 }
}

test('the README has the blocks this test runs: the walk-through, the Node snippet and how to run it', () => {
  expect(blocks.map((b) => b.lang)).toEqual(['sh', 'js', 'sh'])
  expect(blocks[0]!.code).toContain('# stop, delete')
})

test("'A first instance' as written: create, status, logs, an inference key, a chat, the OpenAI client, stop, delete", () => {
  const [walk, js, run] = blocks as unknown as [{ code: string }, { code: string }, { code: string }]
  const [before, after] = asTheReaderWould(walk.code).split('# stop, delete')
  // The Node snippet lives where the reader would save it: beside an installed openai (this checkout's).
  const dir = join(ROOT, 'test-results', 'readme')
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'chat.mjs'), asTheReaderWould(js.code))
  // Markers between the parts (curl prints no newline), so each part's output can be told apart.
  const script = [before, 'echo; echo "--- node"', `cd ${dir}`, asTheReaderWould(run.code), `cd ${home}`, 'echo "--- stop"', '# stop, delete', after].join('\n')
  const r = bash(script)
  expect(r.code).toBe(0)
  const o = r.out
  // create: running, on the model given; status; logs with llama-server's own lines
  expect(o).toMatch(/\{"id":1,"name":"my-model","status":"running"/)
  expect(o).toContain(`"model":"${model}"`)
  expect(o).toMatch(/listening on http|model loaded/)
  // the inference key, shown once
  expect(o).toMatch(/"key":"[^"]{20,}"/)
  // the chat through /v1, and the Node client's answer printed
  expect(o).toMatch(/"object":"chat\.completion"/)
  expect(o).toMatch(/"model":"my-model"/)
  // what the Node client printed: the reply's text
  const printed = o.slice(o.indexOf('--- node\n') + 9, o.indexOf('--- stop'))
  expect(printed.trim().length).toBeGreaterThan(0)
  expect(printed).not.toContain('Error')
  // stop, then delete (204, no body)
  expect(o).toMatch(/"name":"my-model","status":"stopped"/)
  const list = bash(`curl -s -H "Authorization: Bearer $(cat ~/.local/share/llamactl/management.key)" ${origin}/api/v1/instances`)
  expect(list.out.trim()).toBe('[]')
}, 180000)
