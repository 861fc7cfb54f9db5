/**
 * `npm run bench`: every figure side by side in one run against the physical limit (the same
 * request sent straight to the backend) and against the floor of our design (a minimal
 * Bun.serve + fetch pass-through), interleaved so machine noise falls on all alike. Writes the
 * results into docs/PERFORMANCE.md between its benchmark markers and to bench/results.json.
 *
 * Environment: QUICK=1 for a short smoke run (fewer rounds, shorter windows); BENCH_ONLY=bodies
 * runs only the large-body memory figures (and writes nothing).
 */
import { cpus, totalmem } from 'node:os'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { Store } from '../src/store/db'
import { BUN, fmt, interleaved, spawnUntil, summarize, type Child } from './lib'

const root = resolve(import.meta.dir, '..')
const QUICK = process.env.QUICK === '1'
const KEY = 'bench-management-key-0123456789'
const AUTH = { authorization: `Bearer ${KEY}` }
const JSON_AUTH = { ...AUTH, 'content-type': 'application/json' }
const fake = join(root, 'test/fixtures/fake-llama-server.ts')
const children: Child[] = []
const results: Record<string, unknown> = {}
const report: string[] = []

function out(line = '') {
  console.log(line)
  report.push(line)
}

function realLlama() {
  const r = Bun.spawnSync(['bash', join(root, 'scripts/build-llama-server.sh')], { stdout: 'pipe', stderr: 'inherit' })
  if (r.exitCode !== 0) throw new Error('could not build llama-server')
  const dir = r.stdout.toString().trim().split('\n').at(-1)!
  return { server: join(dir, 'bin/llama-server'), model: join(dir, 'models/tiny-llama.gguf') }
}

async function startLlamactl(dataDir: string, extraEnv: Record<string, string> = {}, command = [BUN, join(root, 'src/main.ts')]) {
  const lo = 30000 + Math.floor(Math.random() * 20000)
  const { child, match } = await spawnUntil([...command, '--port', '0', '--data-dir', dataDir], /listening on http:\/\/[\d.]+:(\d+)/, {
    LLAMACTL_MANAGEMENT_KEYS: KEY,
    LLAMACTL_INSTANCE_PORT_RANGE: `${lo}-${lo + 500}`,
    LLAMACTL_LOG_REQUESTS: 'false',
    ...extraEnv,
  })
  children.push(child)
  return { child, base: `http://127.0.0.1:${match}` }
}

async function passthrough(target: string) {
  const { child, match } = await spawnUntil([BUN, join(root, 'bench/passthrough.ts'), target], /listening (\d+)/)
  children.push(child)
  return `http://127.0.0.1:${match}`
}

async function create(base: string, name: string, body: unknown) {
  const res = await fetch(`${base}/api/v1/instances/${name}`, { method: 'POST', headers: JSON_AUTH, body: JSON.stringify(body) })
  const j = (await res.json()) as { port: number; error?: string }
  if (res.status !== 201) throw new Error(`create ${name}: ${j.error}`)
  return j
}

function rss(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Number(m[1]) * 1024 : Number.NaN
  } catch {
    return Number.NaN
  }
}

const mb = (b: number) => `${(b / 1024 / 1024).toFixed(1)} MB`
const pct = (x: number) => `${(x * 100).toFixed(1)} %`

/** Sequential latency, direct vs pass-through vs llamactl. */
async function latency(title: string, targets: Record<string, () => Promise<void>>, rounds: number, key: string) {
  const r = await interleaved(targets, rounds, QUICK ? 50 : 300)
  const d = summarize(r.direct!)
  const row: Record<string, unknown> = {}
  out(`\n**${title}** (${rounds} requests each, interleaved)\n`)
  out('| path | p50 | p99 | added p50 | added p99 |')
  out('|---|---|---|---|---|')
  for (const name of Object.keys(targets)) {
    const s = summarize(r[name]!)
    row[name] = s
    const add = name === 'direct' ? ['', ''] : [fmt(s.p50 - d.p50), fmt(s.p99 - d.p99)]
    out(`| ${name} | ${fmt(s.p50)} | ${fmt(s.p99)} | ${add[0]} | ${add[1]} |`)
  }
  results[key] = row
}

/** `clients` concurrent loops for `ms`, counting completed requests. */
async function throughputOnce(fn: () => Promise<void>, clients: number, ms: number): Promise<{ rps: number; errors: number }> {
  let done = 0
  let errors = 0
  const end = performance.now() + ms
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (performance.now() < end) {
        try {
          await fn()
          done++
        } catch {
          errors++
        }
      }
    }),
  )
  return { rps: done / (ms / 1000), errors }
}

async function throughput(title: string, targets: Record<string, () => Promise<void>>, clients: number, key: string) {
  const windows = QUICK ? 2 : 5
  const ms = QUICK ? 1000 : 3000
  const sums: Record<string, number[]> = Object.fromEntries(Object.keys(targets).map((n) => [n, []]))
  let errors = 0
  for (const n of Object.keys(targets)) await throughputOnce(targets[n]!, clients, 300) // warm-up
  for (let w = 0; w < windows; w++) {
    const names = Object.keys(targets)
    for (let j = 0; j < names.length; j++) {
      const n = names[(w + j) % names.length]!
      const r = await throughputOnce(targets[n]!, clients, ms)
      sums[n]!.push(r.rps)
      errors += r.errors
    }
  }
  const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length
  const direct = mean(sums.direct!)
  const row: Record<string, unknown> = { errors }
  out(`| ${title}, ${clients} clients | ${direct.toFixed(0)}/s | ${(mean(sums.passthrough!) / direct).toFixed(3)} | ${(mean(sums.llamactl!) / direct).toFixed(3)} | ${errors} |`)
  for (const n of Object.keys(sums)) row[n] = mean(sums[n]!)
  results[key] = row
}

/** Streams one chat completion; returns time to first byte and the gaps between reads. */
async function stream(url: string, body: string, headers: Record<string, string>) {
  const t0 = performance.now()
  const res = await fetch(url, { method: 'POST', headers, body })
  const reader = res.body!.getReader()
  const arrivals: number[] = []
  let events = 0
  let reads = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    reads++
    arrivals.push(performance.now())
    events += new TextDecoder().decode(value).split('\n\n').filter((e) => e.startsWith('data:')).length
  }
  const gaps = arrivals.slice(1).map((t, i) => t - arrivals[i]!)
  return { ttfb: arrivals[0]! - t0, gaps, events, reads }
}

/**
 * RSS of llamactl while `clients` bodies of `size` bytes arrive at once on /v1, with the given
 * server.max_buffered_body_size; the backend discards what it gets (bench/sink.ts).
 */
async function largeBodies(budget: number, clients = 8, size = 100 * 1024 * 1024) {
  const dir = mkdtempSync(join(tmpdir(), 'llamactl-bench-bodies-'))
  const ll = await startLlamactl(dir, {
    LLAMACTL_LLAMACPP_COMMAND: BUN,
    LLAMACTL_LLAMACPP_ARGS: fake,
    LLAMACTL_MAX_BUFFERED_BODY_SIZE: String(budget),
    LLAMACTL_MAX_INFERENCE_BODY_SIZE: String(Math.min(budget, 512 * 1024 * 1024)),
  })
  const wrapper = join(dir, 'sink.sh')
  writeFileSync(wrapper, `#!/bin/sh\nexec ${BUN} ${join(root, 'bench/sink.ts')} "$@"\n`, { mode: 0o755 })
  await create(ll.base, 'sink', { backend_options: { model: 'x' }, command_override: wrapper })
  const head = new TextEncoder().encode('{"model":"sink","messages":[{"role":"user","content":"hi"}],"pad":"')
  const body = new Uint8Array(size).fill(97)
  body.set(head)
  body.set(new TextEncoder().encode('"}'), size - 2)
  const pid = ll.child.proc.pid
  await Bun.sleep(300)
  const before = rss(pid)
  let peak = before
  const sampler = setInterval(() => (peak = Math.max(peak, rss(pid))), 10)
  const statuses = await Promise.all(
    Array.from({ length: clients }, async () => {
      try {
        const r = await fetch(`${ll.base}/v1/chat/completions`, { method: 'POST', headers: JSON_AUTH, body })
        await r.arrayBuffer()
        return r.status
      } catch {
        return 0
      }
    }),
  )
  clearInterval(sampler)
  peak = Math.max(peak, rss(pid))
  ll.child.proc.kill('SIGTERM')
  await ll.child.proc.exited
  const count = (s: number) => statuses.filter((x) => x === s).length
  return { budget, before, peak, ok: count(200), refused: count(503), failed: statuses.length - count(200) - count(503) }
}

async function largeBodyRows(): Promise<string[]> {
  const rows: string[] = []
  const runs: unknown[] = []
  for (const [label, budget] of [['default, 512 MiB', 512 * 1024 * 1024], ['256 MiB', 256 * 1024 * 1024], ['4 GiB (in effect no bound, as before)', 4 * 1024 * 1024 * 1024]] as const) {
    const r = await largeBodies(budget)
    runs.push(r)
    rows.push(`| RSS, 8 concurrent 100 MiB /v1 bodies, max_buffered_body_size ${label} (peak; before) | ${mb(r.peak)}; ${mb(r.before)} (${r.ok} forwarded, ${r.refused} refused 503, ${r.failed} failed) |`)
  }
  results.large_bodies = runs
  return rows
}

async function main() {
  if (process.env.BENCH_ONLY === 'bodies') {
    out('| what | figure |')
    out('|---|---|')
    for (const r of await largeBodyRows()) out(r)
    return
  }
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${mb(totalmem())} RAM, Bun ${Bun.version}, ${process.platform}-${process.arch}`
  out(`Run ${new Date().toISOString()} on ${machine}.${QUICK ? ' QUICK run: short windows, not for the record.' : ''}`)
  const { server, model } = realLlama()
  const dataDir = mkdtempSync(join(tmpdir(), 'llamactl-bench-'))
  const ll = await startLlamactl(dataDir, { LLAMACTL_LLAMACPP_COMMAND: server, LLAMACTL_LLAMACPP_ARGS: '' })
  const real = await create(ll.base, 'real', { backend_options: { model, ctx_size: 256, threads: 1, parallel: 16, n_predict: 8 } })
  // The fast fake backend runs as an instance too, through a one-line wrapper script.
  const wrapper = join(dataDir, 'fake-llama-server.sh')
  writeFileSync(wrapper, `#!/bin/sh\nexec ${BUN} ${fake} "$@"\n`, { mode: 0o755 })
  const fakeInst = await create(ll.base, 'fake', { backend_options: { model: 'x' }, command_override: wrapper, environment: { FAKE_TOKEN_DELAY_MS: '0' } })
  results.machine = machine

  const realDirect = `http://127.0.0.1:${real.port}`
  const realPt = await passthrough(realDirect)
  const get = (url: string) => async () => {
    const r = await fetch(url, { headers: AUTH })
    await r.arrayBuffer()
    if (r.status !== 200) throw new Error(`${url}: ${r.status}`)
  }
  const post = (url: string, body: string) => async () => {
    const r = await fetch(url, { method: 'POST', headers: JSON_AUTH, body })
    await r.arrayBuffer()
    if (r.status !== 200) throw new Error(`${url}: ${r.status}`)
  }
  const chatBody = (m: string, extra: Record<string, unknown> = {}) =>
    JSON.stringify({ model: m, messages: [{ role: 'user', content: 'hi' }], max_tokens: 1, temperature: 0, ...extra })

  out('\n### Added latency, real llama-server (tiny model), loopback, one request at a time')
  const rounds = QUICK ? 300 : 3000
  await latency('/health through the instance proxy', {
    direct: get(`${realDirect}/health`),
    passthrough: get(`${realPt}/health`),
    llamactl: get(`${ll.base}/api/v1/instances/real/proxy/health`),
  }, rounds, 'latency_health')
  await latency('tiny chat completion (max_tokens 1) through /v1', {
    direct: post(`${realDirect}/v1/chat/completions`, chatBody('real')),
    passthrough: post(`${realPt}/v1/chat/completions`, chatBody('real')),
    llamactl: post(`${ll.base}/v1/chat/completions`, chatBody('real')),
  }, QUICK ? 100 : 1000, 'latency_chat')

  const fakeDirect = `http://127.0.0.1:${fakeInst.port}`
  const fakePt = await passthrough(fakeDirect)

  out('\n### Throughput (requests/s direct; ratios via / direct; higher is better, 1.0 is the limit)\n')
  out('| backend, clients | direct | pass-through / direct | llamactl / direct | errors |')
  out('|---|---|---|---|---|')
  for (const clients of [16, 64]) {
    await throughput('fake backend, chat', {
      direct: post(`${fakeDirect}/v1/chat/completions`, chatBody('fake')),
      passthrough: post(`${fakePt}/v1/chat/completions`, chatBody('fake')),
      llamactl: post(`${ll.base}/v1/chat/completions`, chatBody('fake')),
    }, clients, `throughput_fake_${clients}`)
  }
  for (const clients of [16, 64]) {
    await throughput('real llama-server, chat', {
      direct: post(`${realDirect}/v1/chat/completions`, chatBody('real')),
      passthrough: post(`${realPt}/v1/chat/completions`, chatBody('real')),
      llamactl: post(`${ll.base}/v1/chat/completions`, chatBody('real')),
    }, clients, `throughput_real_${clients}`)
  }

  out('\n### Streaming, real llama-server: 32 tokens a stream, one stream at a time, interleaved\n')
  {
    const body = chatBody('real', { max_tokens: 32, stream: true })
    const n = QUICK ? 10 : 60
    const acc: Record<string, { ttfb: number[]; gaps: number[]; events: number[]; reads: number[] }> = {}
    const targets: Record<string, string> = {
      direct: `${realDirect}/v1/chat/completions`,
      passthrough: `${realPt}/v1/chat/completions`,
      llamactl: `${ll.base}/v1/chat/completions`,
    }
    for (let i = 0; i < n; i++) {
      for (const [name, url] of Object.entries(targets)) {
        const s = await stream(url, body, JSON_AUTH)
        acc[name] ??= { ttfb: [], gaps: [], events: [], reads: [] }
        acc[name]!.ttfb.push(s.ttfb)
        acc[name]!.gaps.push(...s.gaps)
        acc[name]!.events.push(s.events)
        acc[name]!.reads.push(s.reads)
      }
    }
    out('| path | TTFB p50 | TTFB p99 | chunk gap p50 | chunk gap p99 | events / reads |')
    out('|---|---|---|---|---|---|')
    const row: Record<string, unknown> = {}
    for (const [name, a] of Object.entries(acc)) {
      const t = summarize(a.ttfb)
      const g = summarize(a.gaps)
      const ev = a.events.reduce((x, y) => x + y, 0)
      const rd = a.reads.reduce((x, y) => x + y, 0)
      row[name] = { ttfb: t, gaps: g, events: ev, reads: rd }
      out(`| ${name} | ${fmt(t.p50)} | ${fmt(t.p99)} | ${fmt(g.p50)} | ${fmt(g.p99)} | ${(ev / rd).toFixed(3)} |`)
    }
    results.streaming = row
    out('\nEvents per read of 1.000 means no chunk was merged on the way.')
  }

  out('\n### On-demand start (real llama-server, tiny model)\n')
  {
    const reps = QUICK ? 3 : 10
    // The backend's own time to ready, started by hand and polled every millisecond.
    const own: number[] = []
    const via: number[] = []
    await fetch(`${ll.base}/api/v1/instances/od`, {
      method: 'POST',
      headers: JSON_AUTH,
      body: JSON.stringify({ backend_options: { model, ctx_size: 256, threads: 1, parallel: 1 }, on_demand_start: true }),
    })
    for (let i = 0; i < reps; i++) {
      const port = 20000 + Math.floor(Math.random() * 9000)
      const t0 = performance.now()
      const p = Bun.spawn([server, '-m', model, '-c', '256', '-t', '1', '-np', '1', '--host', '127.0.0.1', '--port', String(port)], { stdout: 'ignore', stderr: 'ignore' })
      for (;;) {
        try {
          const r = await fetch(`http://127.0.0.1:${port}/health`)
          if (r.status === 200) {
            const r2 = await fetch(`http://127.0.0.1:${port}/v1/chat/completions`, { method: 'POST', headers: JSON_AUTH, body: chatBody('od') })
            await r2.arrayBuffer()
            break
          }
        } catch {}
        await Bun.sleep(1)
      }
      own.push(performance.now() - t0)
      p.kill('SIGKILL')
      await p.exited
      await fetch(`${ll.base}/api/v1/instances/od/stop`, { method: 'POST', headers: AUTH })
      const t1 = performance.now()
      const r = await fetch(`${ll.base}/v1/chat/completions`, { method: 'POST', headers: JSON_AUTH, body: chatBody('od') })
      await r.arrayBuffer()
      via.push(performance.now() - t1)
    }
    const o = summarize(own)
    const v = summarize(via)
    out('| | p50 | max |')
    out('|---|---|---|')
    out(`| backend started by hand, polled every 1 ms, then the request | ${fmt(o.p50)} | ${fmt(Math.max(...own))} |`)
    out(`| request to a stopped instance through llamactl | ${fmt(v.p50)} | ${fmt(Math.max(...via))} |`)
    out(`| **added by llamactl** | **${fmt(v.p50 - o.p50)}** | |`)
    results.on_demand = { own: o, via: v, added_p50: v.p50 - o.p50 }
  }

  for (const c of children.splice(0)) c.proc.kill('SIGTERM')
  await Bun.sleep(500)

  out('\n### Footprint and scale\n')
  {
    const rows: string[] = []
    const dir = mkdtempSync(join(tmpdir(), 'llamactl-bench-scale-'))
    const idle = await startLlamactl(dir, { LLAMACTL_LLAMACPP_COMMAND: BUN, LLAMACTL_LLAMACPP_ARGS: fake })
    await Bun.sleep(500)
    const rssIdle = rss(idle.child.proc.pid)
    rows.push(`| RSS idle, no instances | ${mb(rssIdle)} |`)
    idle.child.proc.kill('SIGTERM')
    await idle.child.proc.exited
    // 1,000 defined instances (stopped), written as the store keeps them, then loaded at start.
    const store = new Store(join(dir, 'llamactl.db'))
    const now = Math.floor(Date.now() / 1000)
    store.db.transaction(() => {
      for (let i = 0; i < 1000; i++) {
        store.insertInstance({ name: `model-${i}`, options: JSON.stringify({ backend_options: { model: `/models/m${i}.gguf`, ctx_size: 4096 }, on_demand_start: true }), created: now, desired: 'stopped' })
      }
    })()
    store.close()
    const big = await startLlamactl(dir, { LLAMACTL_LLAMACPP_COMMAND: BUN, LLAMACTL_LLAMACPP_ARGS: fake })
    await Bun.sleep(500)
    rows.push(`| RSS with 1,000 defined instances | ${mb(rss(big.child.proc.pid))} |`)
    const lat = await interleaved({
      instances: get(`${big.base}/api/v1/instances`),
      models: get(`${big.base}/v1/models`),
    }, QUICK ? 50 : 300, 20)
    const li = summarize(lat.instances!)
    const lm = summarize(lat.models!)
    rows.push(`| GET /api/v1/instances with 1,000 instances, p50 / p99 | ${fmt(li.p50)} / ${fmt(li.p99)} |`)
    rows.push(`| GET /v1/models with 1,000 instances, p50 / p99 | ${fmt(lm.p50)} / ${fmt(lm.p99)} |`)
    results.scale = { instances: li, models: lm }
    big.child.proc.kill('SIGTERM')
    await big.child.proc.exited

    // 256 concurrent streams through /v1 against one fake backend.
    const sdir = mkdtempSync(join(tmpdir(), 'llamactl-bench-streams-'))
    const st = await startLlamactl(sdir, { LLAMACTL_LLAMACPP_COMMAND: BUN, LLAMACTL_LLAMACPP_ARGS: fake })
    await create(st.base, 's', { backend_options: { model: 'x' }, environment: { FAKE_TOKEN_DELAY_MS: '20' } })
    const before = rss(st.child.proc.pid)
    let peak = before
    const sampler = setInterval(() => (peak = Math.max(peak, rss(st.child.proc.pid))), 50)
    let failed = 0
    await Promise.all(
      Array.from({ length: 256 }, async () => {
        try {
          const s = await stream(`${st.base}/v1/chat/completions`, chatBody('s', { stream: true, max_tokens: 100 }), JSON_AUTH)
          if (s.events < 100) failed++
        } catch {
          failed++
        }
      }),
    )
    clearInterval(sampler)
    rows.push(`| RSS during 256 concurrent streams (peak; before) | ${mb(peak)}; ${mb(before)} (${failed} failed) |`)
    results.streams256 = { peak, before, failed }
    st.child.proc.kill('SIGTERM')
    await st.child.proc.exited

    rows.push(...(await largeBodyRows()))

    // Start-up of the binary to listening.
    const bin = join(mkdtempSync(join(tmpdir(), 'llamactl-bench-bin-')), 'llamactl')
    const b = Bun.spawnSync([BUN, 'build.ts', '--outfile', bin], { cwd: root, stdout: 'ignore', stderr: 'inherit' })
    if (b.exitCode !== 0) throw new Error('build failed')
    const times: number[] = []
    for (let i = 0; i < (QUICK ? 3 : 10); i++) {
      const d = mkdtempSync(join(tmpdir(), 'llamactl-bench-start-'))
      const t0 = performance.now()
      const s = await spawnUntil([bin, '--port', '0', '--data-dir', d], /listening on/, { LLAMACTL_MANAGEMENT_KEYS: KEY })
      times.push(performance.now() - t0)
      s.child.proc.kill('SIGTERM')
      await s.child.proc.exited
    }
    const t = summarize(times)
    rows.push(`| start-up of the binary to listening, p50 / max | ${fmt(t.p50)} / ${fmt(Math.max(...times))} |`)
    results.startup = t
    out('| what | figure |')
    out('|---|---|')
    for (const r of rows) out(r)
  }

  writeFileSync(join(root, 'bench/results.json'), `${JSON.stringify(results, null, 2)}\n`)
  if (!QUICK) {
    const doc = join(root, 'docs/PERFORMANCE.md')
    let text = ''
    try {
      text = readFileSync(doc, 'utf8')
    } catch {}
    const begin = '<!-- bench:begin -->'
    const end = '<!-- bench:end -->'
    const block = `${begin}\n${report.join('\n')}\n${end}`
    if (text.includes(begin)) text = text.slice(0, text.indexOf(begin)) + block + text.slice(text.indexOf(end) + end.length)
    else text = `# Performance\n\n${block}\n${text ? `\n${text}` : ''}`
    writeFileSync(doc, text)
  }
}

try {
  await main()
} finally {
  for (const c of children) c.proc.kill('SIGKILL')
}
