/**
 * llamactl's own CPU time per request, as an A/B against another checkout: steadier than
 * latency on a shared 2-core machine (a busy neighbour delays a request but does not add to
 * the CPU time the llamactl process spends on it), and the nearest to counting instructions
 * this machine allows (callgrind cannot run Bun, perf has no counters here).
 *
 *   [ROUTE=proxy] [LOG_REQUESTS=true] node_modules/.bin/bun bench/cpu-cost.ts /path/to/other/checkout [requests] [rounds]
 *
 * Two llamactl processes per checkout, each with one instance on the fake llama-server, and
 * the pass-through floor (bench/passthrough.ts) in front of a fake llama-server of its own.
 * Each round sends `requests` plain chat completions to each of them in turn (interleaved,
 * one at a time, keep-alive) and reads the CPU time (the scheduler's ns account of all its threads, /proc/PID/task/TID/schedstat) the
 * front process spent. The two processes of each checkout give the noise.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { BUN, spawnUntil } from './lib'
import { startLlamactl, type Running } from '../test/system/process'
import { tempDir } from '../test/helpers'

/** CPU time of every thread of the process, in µs, from the scheduler's own ns account (/proc/PID/task/TID/schedstat). */
function cpuUs(pid: number): number {
  let ns = 0
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0])
    } catch {
      // a thread that ended meanwhile
    }
  }
  return ns / 1000
}

const other = process.argv[2]
if (!other) throw new Error('usage: bun bench/cpu-cost.ts /path/to/other/checkout [requests] [rounds]')
const requests = Number(process.argv[3] ?? 500)
const rounds = Number(process.argv[4] ?? 10)
const KEY = { authorization: 'Bearer test-management-key-0123456789' }
const servers: Running[] = []
const children: { kill(): void }[] = []
// A file of that name: llamactl checks a .gguf model is there; the fake backend never reads it.
const MODEL = join(tempDir(), 'qwen2.5-0.5b-instruct-q4_k_m.gguf')
writeFileSync(MODEL, '')
try {
  const run = async (checkout: string, logRequests: boolean) => {
    const r = await startLlamactl(tempDir(), { command: [BUN, resolve(checkout, 'src/main.ts')], env: { LLAMACTL_LOG_REQUESTS: String(logRequests) } })
    servers.push(r)
    const made = await r.api('POST', '/api/v1/instances/chat?wait=ready', { backend_options: { model: MODEL }, environment: { FAKE_TOKEN_DELAY_MS: '0' } })
    if (made.status !== 201) throw new Error(`${checkout}: create answered ${made.status}`)
    return { url: r.url, pid: r.proc.pid }
  }
  const here = resolve(import.meta.dir, '..')
  const log = process.env.LOG_REQUESTS === 'true'
  const fakePort = 20000 + Math.floor(Math.random() * 10000)
  const fake = await spawnUntil([BUN, resolve(here, 'test/fixtures/fake-llama-server.ts'), '--port', String(fakePort), '--model', MODEL], /listening on (\S+)/, { FAKE_TOKEN_DELAY_MS: '0' })
  children.push({ kill: () => fake.child.proc.kill() })
  const floor = await spawnUntil([BUN, resolve(here, 'bench/passthrough.ts'), `http://127.0.0.1:${fakePort}`], /listening (\d+)/)
  children.push({ kill: () => floor.child.proc.kill() })
  const targets: Record<string, { url: string; pid: number }> = {
    floor: { url: `http://127.0.0.1:${floor.match}`, pid: floor.child.proc.pid },
    before: await run(other, log),
    after: await run(here, log),
    'before again': await run(other, log),
    'after again': await run(here, log),
  }
  const body = JSON.stringify({ model: 'chat', max_tokens: 8, messages: [{ role: 'user', content: 'hello there' }] })
  const samples: Record<string, number[]> = Object.fromEntries(Object.keys(targets).map((k) => [k, []]))
  // ROUTE=proxy: GET /api/v1/instances/chat/proxy/health (the floor: GET /health); else a plain chat completion.
  const proxy = process.env.ROUTE === 'proxy'
  const send = async (url: string) => {
    const floor = url === targets.floor!.url
    const res = proxy
      ? await fetch(`${url}${floor ? '/health' : '/api/v1/instances/chat/proxy/health'}`, { headers: KEY })
      : await fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', ...KEY }, body })
    const text = await res.text()
    if (res.status !== 200) throw new Error(`${url}: ${res.status} ${text.slice(0, 200)}`)
  }
  for (const t of Object.values(targets)) for (let i = 0; i < 200; i++) await send(t.url) // warm-up
  for (let r = 0; r < rounds; r++) {
    for (const [k, t] of Object.entries(targets)) {
      const before = cpuUs(t.pid)
      for (let i = 0; i < requests; i++) await send(t.url)
      samples[k]!.push((cpuUs(t.pid) - before) / requests)
    }
  }
  console.log(`CPU µs per ${proxy ? 'proxied /health' : 'plain chat completion'} in the front process (${rounds} rounds of ${requests}; request log ${log ? 'on' : 'off'}):`)
  for (const [k, v] of Object.entries(samples)) {
    const s = [...v].sort((a, b) => a - b)
    console.log(`  ${k.padEnd(13)} median ${s[s.length >> 1]!.toFixed(1)}  min ${s[0]!.toFixed(1)}  max ${s[s.length - 1]!.toFixed(1)}`)
  }
} finally {
  await Promise.all(servers.map((s) => s.stop()))
  for (const c of children) c.kill()
}
