/**
 * Quick added-latency check against the fast fake backend: /health and a small chat completion,
 * direct vs the minimal pass-through vs llamactl, interleaved.
 */
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { BUN, fmt, interleaved, spawnUntil, summarize, WrongResponse } from './lib'

const root = resolve(import.meta.dir, '..')
const fake = join(root, 'test/fixtures/fake-llama-server.ts')
const rounds = Number(process.env.ROUNDS ?? 2000)
// Authentication stays on, as users run it: its cost is part of the figure.
const KEY = 'bench-management-key-0123456789'
const auth = { authorization: `Bearer ${KEY}` }

const dataDir = mkdtempSync(join(tmpdir(), 'llamactl-bench-'))
const lo = 30000 + Math.floor(Math.random() * 10000)
const ll = await spawnUntil(
  [BUN, join(root, 'src/main.ts'), '--port', '0', '--data-dir', dataDir],
  /listening on http:\/\/[\d.]+:(\d+)/,
  { LLAMACTL_LLAMACPP_COMMAND: BUN, LLAMACTL_LLAMACPP_ARGS: fake, LLAMACTL_INSTANCE_PORT_RANGE: `${lo}-${lo + 100}`, LLAMACTL_MANAGEMENT_KEYS: KEY },
)
const llBase = `http://127.0.0.1:${ll.match}`
const created = await (await fetch(`${llBase}/api/v1/instances/bench?wait=ready`, { method: 'POST', body: JSON.stringify({ backend_options: { model: 'x' }, environment: { FAKE_TOKEN_DELAY_MS: '0' } }), headers: { 'content-type': 'application/json', ...auth } })).json() as any
const direct = `http://127.0.0.1:${created.port}`
const pt = await spawnUntil([BUN, join(root, 'bench/passthrough.ts'), direct], /listening (\d+)/)
const ptBase = `http://127.0.0.1:${pt.match}`

const chatBody = JSON.stringify({ model: 'bench', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 })
// The same headers go everywhere, so direct and pass-through carry them too. Every answer is
// checked: a wrong one ends the run.
async function check(what: string, res: Response, ok: (j: any) => boolean) {
  const text = await res.text()
  let j: unknown = null
  try {
    j = JSON.parse(text)
  } catch {}
  if (res.status !== 200 || !ok(j)) throw new WrongResponse('quick-latency', `${what} answered ${res.status}: ${text.slice(0, 300)}`)
}
const get = (url: string) => async () => check(`GET ${url}`, await fetch(url, { headers: auth }), (j) => j?.status === 'ok')
const post = (url: string) => async () =>
  check(`POST ${url}`, await fetch(url, { method: 'POST', body: chatBody, headers: { 'content-type': 'application/json', ...auth } }), (j) => j?.object === 'chat.completion')

try {
  const health = await interleaved(
    { direct: get(`${direct}/health`), passthrough: get(`${ptBase}/health`), llamactl: get(`${llBase}/api/v1/instances/bench/proxy/health`) },
    rounds,
  )
  const chat = await interleaved(
    { direct: post(`${direct}/v1/chat/completions`), passthrough: post(`${ptBase}/v1/chat/completions`), llamactl: post(`${llBase}/v1/chat/completions`) },
    rounds,
  )
  for (const [what, r] of [['/health via proxy', health], ['chat completion via /v1', chat]] as const) {
    const d = summarize(r.direct!)
    console.log(`\n${what} (${rounds} each, interleaved)`)
    for (const name of ['direct', 'passthrough', 'llamactl']) {
      const s = summarize(r[name]!)
      const add = name === 'direct' ? '' : `  added p50 ${fmt(s.p50 - d.p50)}  p99 ${fmt(s.p99 - d.p99)}`
      console.log(`  ${name.padEnd(12)} p50 ${fmt(s.p50)}  p99 ${fmt(s.p99)}${add}`)
    }
  }
} finally {
  ll.child.proc.kill('SIGTERM')
  pt.child.proc.kill('SIGTERM')
  await ll.child.proc.exited
}
