/**
 * `npm run bench`: a list of sections, each measuring against the physical limit (the same
 * request sent straight to the backend) and the floor of our design (a minimal Bun.serve + fetch
 * pass-through, run twice, so that two identical floors measure the run's noise), interleaved so
 * machine noise falls on all alike. Each section returns figures with the targets they are held
 * to, declared next to the measurement; bench/report.ts turns them into the verdicts.
 *
 * A full run keeps the last bench/results.json as bench/results.previous.json, writes the new
 * one and renders docs/PERFORMANCE.md from the two. QUICK=1 is a short smoke run, and ONLY=<id
 * prefix>[,…] runs some sections: both write bench/results.scratch.json and print the report,
 * leaving the record alone.
 *
 * Every request is checked (status and body); a wrong answer throws, naming the measurement.
 */
import { cpus, loadavg, totalmem } from 'node:os'
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { Store } from '../src/store/db'
import { figure, ge, halves, le, type Figure, type Noise, type Results, type SectionResult, type Table } from './figures'
import { BUN, floorNoise, interleaved, spawnUntil, summarize, WrongResponse, type Child, type Summary } from './lib'
import { isChat, isHealth, readChecked, streamChat, type Body } from './check'
import { readResults, render, writeDoc } from './report'

const root = resolve(import.meta.dir, '..')
const QUICK = process.env.QUICK === '1'
const KEY = 'bench-management-key-0123456789'
const AUTH = { authorization: `Bearer ${KEY}` }
const JSON_AUTH = { ...AUTH, 'content-type': 'application/json' }
const fake = join(root, 'test/fixtures/fake-llama-server.ts')
const children: Child[] = []
const MB = 1024 * 1024
const FLOORS = 'two identical floors, interleaved'

/** The noise band at a percentile from the two floors' samples: the larger of their difference and its resampled 95th percentile. */
function floorBand(a: number[], b: number[], p: number): Noise {
  const { observed, resampled } = floorNoise(a, b, p)
  return { band: Math.max(observed, resampled), how: FLOORS, parts: [{ label: 'apart', value: observed }, { label: 'resampled, 95 % within', value: resampled }] }
}

// ---------------------------------------------------------------------------------------------
// Processes

function realLlama() {
  const r = Bun.spawnSync(['bash', join(root, 'scripts/build-llama-server.sh')], { stdout: 'pipe', stderr: 'inherit' })
  if (r.exitCode !== 0) throw new Error('could not build llama-server')
  const dir = r.stdout.toString().trim().split('\n').at(-1)!
  return { server: join(dir, 'bin/llama-server'), model: join(dir, 'models/tiny-llama.gguf') }
}

/** llamactl as shipped: authentication, the request log and metrics on. */
async function startLlamactl(dataDir: string, extraEnv: Record<string, string> = {}, command = [BUN, join(root, 'src/main.ts')]) {
  const lo = 30000 + Math.floor(Math.random() * 20000)
  const { child, match } = await spawnUntil([...command, '--port', '0', '--data-dir', dataDir], /listening on http:\/\/[\d.]+:(\d+)/, {
    LLAMACTL_MANAGEMENT_KEYS: KEY,
    LLAMACTL_INSTANCE_PORT_RANGE: `${lo}-${lo + 500}`,
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

async function stopChild(c: Child) {
  c.proc.kill('SIGTERM')
  await c.proc.exited
  children.splice(children.indexOf(c), 1)
}

async function api(measure: string, base: string, method: string, path: string, body?: unknown, status = 200) {
  const res = await fetch(`${base}${path}`, { method, headers: JSON_AUTH, body: body === undefined ? undefined : JSON.stringify(body) })
  const text = await res.text()
  if (res.status !== status) throw new WrongResponse(measure, `${method} ${path} answered ${res.status}, not ${status}: ${text.slice(0, 300)}`)
  return text ? (JSON.parse(text) as Record<string, unknown>) : {}
}

function rss(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  if (!m) throw new Error(`no VmRSS for ${pid}`)
  return (Number(m[1]) * 1024) / MB
}

// ---------------------------------------------------------------------------------------------
// Checked requests: each returns a function that sends one request and throws on a wrong answer.

type Req = () => Promise<void>
const get = (measure: string, url: string, ok: (j: Body) => boolean): Req => async () =>
  readChecked(measure, `GET ${url}`, await fetch(url, { headers: AUTH }), ok)

const post = (measure: string, url: string, body: string, ok: (j: Body) => boolean = isChat): Req => async () =>
  readChecked(measure, `POST ${url}`, await fetch(url, { method: 'POST', headers: JSON_AUTH, body }), ok)

const chatBody = (m: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ model: m, messages: [{ role: 'user', content: 'hi' }], max_tokens: 1, temperature: 0, ...extra })

/** One streamed chat completion with the benchmark's key, checked (bench/check.ts). */
const stream = (measure: string, url: string, body: string) => streamChat(measure, url, body, JSON_AUTH)

// ---------------------------------------------------------------------------------------------
// Sections

/** What the sections measuring through the shared llamactl get: its address and both backends with two floors each. */
interface Shared {
  ll: string
  server: string
  model: string
  real: { direct: string; floorA: string; floorB: string }
  fake: { direct: string; floorA: string; floorB: string }
}

type Measured = Omit<SectionResult, 'id' | 'title'>

interface Section {
  id: string
  title: string
  /** true: runs against the shared llamactl and backends; false: starts its own processes, with the shared ones stopped */
  shared: boolean
  run: (s: Shared) => Promise<Measured>
}

const PATHS = ['direct', 'floor A', 'floor B', 'llamactl'] as const
type Path = (typeof PATHS)[number]
const paths = <T>(f: (p: Path) => T) => Object.fromEntries(PATHS.map((p) => [p, f(p)])) as Record<Path, T>
const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length

const statsTable = (caption: string, stats: Record<Path, Summary>): Table => ({
  caption,
  columns: [{ label: 'path' }, { label: 'p50', unit: 'ms' }, { label: 'p99', unit: 'ms' }, { label: 'mean', unit: 'ms' }, { label: 'samples' }],
  rows: PATHS.map((p) => [p, stats[p].p50, stats[p].p99, stats[p].mean, stats[p].n]),
})

/**
 * Sequential latency, direct vs two floors vs llamactl: llamactl's cost over direct (issue 8:
 * p50 ≤ 0.3 ms, p99 ≤ 1 ms) and over the floor (issue 20: p50 within 0.05 ms). The floor is the
 * mean of the two; their difference is the noise band.
 */
function latencySection(id: string, title: string, rounds: number, targets: (s: Shared) => Record<Path, Req>): Section {
  return {
    id,
    title,
    shared: true,
    async run(s) {
      const samples = await interleaved(targets(s), rounds, QUICK ? 50 : 300)
      const st = paths((p) => summarize(samples[p]!))
      const floor = (k: 'p50' | 'p99') => (st['floor A'][k] + st['floor B'][k]) / 2
      const noise = (k: 'p50' | 'p99') => floorBand(samples['floor A']!, samples['floor B']!, k === 'p50' ? 50 : 99)
      const common = { unit: 'ms' as const, n: rounds, of: 'requests a path' }
      return {
        notes: [`One request at a time on a keep-alive connection, ${rounds} a path after a warm-up that is not counted, the order of the four paths rotated every round. "The floor" is the mean of the two floors.`],
        tables: [statsTable(`${title}: ${rounds} requests a path`, st)],
        figures: [
          figure({ ...common, id: `${id}.added_p50`, label: `${title}: llamactl added over direct, p50`, value: st.llamactl.p50 - st.direct.p50, relativeTo: 'direct', noise: noise('p50'), targets: [le(0.3, 'issue 8')] }),
          figure({ ...common, id: `${id}.added_p99`, label: `${title}: llamactl added over direct, p99`, value: st.llamactl.p99 - st.direct.p99, relativeTo: 'direct', noise: noise('p99'), targets: [le(1, 'issue 8')] }),
          figure({ ...common, id: `${id}.over_floor_p50`, label: `${title}: llamactl over the floor, p50`, value: st.llamactl.p50 - floor('p50'), relativeTo: 'floor', noise: noise('p50'), targets: [le(0.05, 'issue 20')] }),
          figure({ ...common, id: `${id}.over_floor_p99`, label: `${title}: llamactl over the floor, p99`, value: st.llamactl.p99 - floor('p99'), relativeTo: 'floor', noise: noise('p99') }),
          figure({ ...common, id: `${id}.floor_added_p50`, label: `${title}: the floor alone added over direct, p50`, value: floor('p50') - st.direct.p50, relativeTo: 'direct', noise: noise('p50') }),
        ],
      }
    },
  }
}

/** `clients` concurrent loops for `ms`, counting completed requests; a wrong answer ends the run. */
async function throughputOnce(fn: Req, clients: number, ms: number): Promise<number> {
  let done = 0
  const end = performance.now() + ms
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (performance.now() < end) {
        await fn()
        done++
      }
    }),
  )
  return done / (ms / 1000)
}

/**
 * Throughput with 16 and 64 clients, llamactl / direct (issue 8: ≥ 0.9) and, against the fast
 * fake, llamactl / floor (issue 20: ≥ 0.95). Windows rotate through the four paths.
 */
function throughputSection(backend: 'fake' | 'real', clients: number): Section {
  const id = `throughput.${backend}.${clients}`
  const title = `Throughput, ${backend === 'fake' ? 'fast fake backend' : 'real llama-server'}, ${clients} clients`
  return {
    id,
    title,
    shared: true,
    async run(s) {
      const b = s[backend]
      const windows = QUICK ? 2 : 5
      const ms = QUICK ? 1000 : 3000
      const measure = id
      const body = chatBody(backend)
      const targets = paths((p) => post(measure, `${p === 'direct' ? b.direct : p === 'floor A' ? b.floorA : p === 'floor B' ? b.floorB : s.ll}/v1/chat/completions`, body))
      const rps = paths(() => [] as number[])
      for (const p of PATHS) await throughputOnce(targets[p], clients, 300) // warm-up, not counted
      for (let w = 0; w < windows; w++) {
        for (let j = 0; j < PATHS.length; j++) {
          const p = PATHS[(w + j) % PATHS.length]!
          rps[p].push(await throughputOnce(targets[p], clients, ms))
        }
      }
      const m = paths((p) => mean(rps[p]))
      const floor = (m['floor A'] + m['floor B']) / 2
      const common = { unit: 'ratio' as const, n: windows, of: `windows of ${ms / 1000} s a path` }
      const figures: Figure[] = [
        figure({ ...common, id: `${id}.vs_direct`, label: `${title}: llamactl / direct`, value: m.llamactl / m.direct, relativeTo: 'direct', noise: { band: Math.abs(m['floor A'] - m['floor B']) / m.direct, how: FLOORS }, targets: [ge(0.9, 'issue 8')] }),
        figure({
          ...common,
          id: `${id}.vs_floor`,
          label: `${title}: llamactl / the floor`,
          value: m.llamactl / floor,
          relativeTo: 'floor',
          better: 'higher',
          noise: { band: Math.abs(m['floor A'] - m['floor B']) / floor, how: FLOORS },
          targets: backend === 'fake' ? [ge(0.95, 'issue 20')] : [],
        }),
      ]
      return {
        notes: [
          `${clients} concurrent clients, each sending one request after another for ${ms / 1000} s, ${windows} windows a path after a warm-up of 0.3 s a path, the order of the paths rotated every window; every answer checked. A ratio is requests per second against direct's.${backend === 'real' ? ' llama-server runs with `--threads-http 300`, so that idle keep-alive connections of the path measured before cannot hold its HTTP threads.' : ''}`,
        ],
        tables: [
          {
            caption: `${title}: requests per second, mean of ${windows} windows`,
            columns: [{ label: 'path' }, { label: 'requests/s' }, { label: '/ direct', unit: 'ratio' }, { label: 'windows' }],
            rows: PATHS.map((p) => [p, Math.round(m[p]), m[p] / m.direct, windows]),
          },
        ],
        figures,
      }
    },
  }
}

/**
 * Streaming through /v1, one stream at a time: time to first byte and the gaps between reads
 * (issue 8: ≤ 1 ms added at p99; chunks never merged: no more events per read than direct) and
 * TTFB over the floor (issue 20: p50 within 0.05 ms).
 */
const streamingSection: Section = {
  id: 'streaming',
  title: 'Streaming, real llama-server, 32 tokens a stream',
  shared: true,
  async run(s) {
    const body = chatBody('real', { max_tokens: 32, stream: true })
    const warmup = QUICK ? 5 : 20
    const n = QUICK ? 30 : 1000
    const url = paths((p) => `${p === 'direct' ? s.real.direct : p === 'floor A' ? s.real.floorA : p === 'floor B' ? s.real.floorB : s.ll}/v1/chat/completions`)
    const acc = paths(() => ({ ttfb: [] as number[], gaps: [] as number[], events: 0, reads: 0 }))
    for (let i = 0; i < warmup + n; i++) {
      for (let j = 0; j < PATHS.length; j++) {
        const p = PATHS[(i + j) % PATHS.length]!
        const r = await stream('streaming', url[p], body)
        if (i < warmup) continue
        acc[p].ttfb.push(r.ttfb)
        acc[p].gaps.push(...r.gaps)
        acc[p].events += r.events
        acc[p].reads += r.reads
      }
    }
    const ttfb = paths((p) => summarize(acc[p].ttfb))
    const gaps = paths((p) => summarize(acc[p].gaps))
    const perRead = paths((p) => acc[p].events / acc[p].reads)
    const band = (x: 'ttfb' | 'gaps', k: 'p50' | 'p99') => floorBand(acc['floor A'][x], acc['floor B'][x], k === 'p50' ? 50 : 99)
    const gapsN = Math.min(...PATHS.map((p) => gaps[p].n))
    const readsN = Math.min(...PATHS.map((p) => acc[p].reads))
    return {
      notes: [
        `${n} streams a path, one at a time, after ${warmup} a path that are not counted; the order of the four paths rotated every round. A gap is the time between two reads of the response body; events per read above 1 means the client's reads returned events merged.`,
      ],
      tables: [
        {
          caption: `Streaming: ${n} streams a path`,
          columns: [{ label: 'path' }, { label: 'TTFB p50', unit: 'ms' }, { label: 'TTFB p99', unit: 'ms' }, { label: 'streams' }, { label: 'gap p50', unit: 'ms' }, { label: 'gap p99', unit: 'ms' }, { label: 'gaps' }, { label: 'events / read', unit: 'events/read' }, { label: 'reads' }],
          rows: PATHS.map((p) => [p, ttfb[p].p50, ttfb[p].p99, ttfb[p].n, gaps[p].p50, gaps[p].p99, gaps[p].n, perRead[p], acc[p].reads]),
        },
      ],
      figures: [
        figure({ id: 'streaming.ttfb_added_p99', label: 'streaming: TTFB added over direct, p99', value: ttfb.llamactl.p99 - ttfb.direct.p99, unit: 'ms', n, of: 'streams a path', relativeTo: 'direct', noise: band('ttfb', 'p99'), targets: [le(1, 'issue 8')] }),
        figure({ id: 'streaming.gap_added_p99', label: 'streaming: chunk gap added over direct, p99', value: gaps.llamactl.p99 - gaps.direct.p99, unit: 'ms', n: gapsN, of: 'gaps a path (at least)', relativeTo: 'direct', noise: band('gaps', 'p99'), targets: [le(1, 'issue 8')] }),
        figure({ id: 'streaming.ttfb_over_floor_p50', label: 'streaming: TTFB over the floor, p50', value: ttfb.llamactl.p50 - (ttfb['floor A'].p50 + ttfb['floor B'].p50) / 2, unit: 'ms', n, of: 'streams a path', relativeTo: 'floor', noise: band('ttfb', 'p50'), targets: [le(0.05, 'issue 20')] }),
        figure({ id: 'streaming.gap_over_floor_p50', label: 'streaming: chunk gap over the floor, p50', value: gaps.llamactl.p50 - (gaps['floor A'].p50 + gaps['floor B'].p50) / 2, unit: 'ms', n: gapsN, of: 'gaps a path (at least)', relativeTo: 'floor', noise: band('gaps', 'p50') }),
        figure({
          id: 'streaming.merged',
          label: 'streaming: events per read, llamactl minus direct',
          value: perRead.llamactl - perRead.direct,
          unit: 'events/read',
          n: readsN,
          of: 'reads a path (at least)',
          relativeTo: 'direct',
          noise: { band: Math.abs(perRead['floor A'] - perRead['floor B']), how: FLOORS },
          targets: [le(0, 'issue 8: chunks never merged')],
        }),
      ],
    }
  },
}

/**
 * On-demand start: a request to a stopped instance through llamactl, against the backend's own
 * time to ready (started by hand, /health polled every millisecond, then the same request).
 * Issue 8: ≤ 50 ms added; issue 20: ≤ 5 ms.
 */
const onDemandSection: Section = {
  id: 'on_demand',
  title: 'On-demand start, real llama-server',
  shared: true,
  async run(s) {
    const measure = 'on_demand'
    const reps = QUICK ? 4 : 12
    const own: number[] = []
    const via: number[] = []
    await api(measure, s.ll, 'POST', '/api/v1/instances/od?wait=ready', { backend_options: { model: s.model, ctx_size: 256, threads: 1, parallel: 1 }, on_demand_start: true }, 201)
    for (let i = 0; i < reps; i++) {
      const port = 20000 + Math.floor(Math.random() * 9000)
      const t0 = performance.now()
      const p = Bun.spawn([s.server, '-m', s.model, '-c', '256', '-t', '1', '-np', '1', '--host', '127.0.0.1', '--port', String(port)], { stdout: 'ignore', stderr: 'ignore' })
      for (;;) {
        const r = await fetch(`http://127.0.0.1:${port}/health`).catch(() => null)
        if (r) await r.arrayBuffer()
        if (r?.status === 200) break
        if (performance.now() - t0 > 30000) throw new WrongResponse(measure, 'the backend started by hand was not ready after 30 s')
        await Bun.sleep(1)
      }
      await post(measure, `http://127.0.0.1:${port}/v1/chat/completions`, chatBody('od'))()
      own.push(performance.now() - t0)
      p.kill('SIGKILL')
      await p.exited

      const stopped = await api(measure, s.ll, 'POST', '/api/v1/instances/od/stop')
      if (stopped.status !== 'stopped') throw new WrongResponse(measure, `the instance is ${stopped.status} after a stop, not stopped`)
      const t1 = performance.now()
      await post(measure, `${s.ll}/v1/chat/completions`, chatBody('od'))()
      via.push(performance.now() - t1)
      const after = await api(measure, s.ll, 'GET', '/api/v1/instances/od')
      if (after.status !== 'running') throw new WrongResponse(measure, `the instance is ${after.status} after the request, not running: it did not start on demand`)
    }
    await api(measure, s.ll, 'DELETE', '/api/v1/instances/od', undefined, 204)
    const added = (o: number[], v: number[]) => summarize(v).p50 - summarize(o).p50
    const [oA, oB] = halves(own)
    const [vA, vB] = halves(via)
    const o = summarize(own)
    const v = summarize(via)
    return {
      notes: [`${reps} starts each way, alternating. The backend's own time runs from its spawn to the answer to a tiny chat completion, its /health polled every millisecond; through llamactl, from the request to a stopped instance to its answer (checked: 200, a chat completion, and the instance running after it). The noise band is the difference between the figure from the odd and from the even starts.`],
      tables: [
        {
          caption: `On-demand start: ${reps} starts each way`,
          columns: [{ label: '' }, { label: 'p50', unit: 'ms' }, { label: 'max', unit: 'ms' }, { label: 'starts' }],
          rows: [
            ['backend started by hand, polled every 1 ms, then the request', o.p50, Math.max(...own), o.n],
            ['request to a stopped instance through llamactl', v.p50, Math.max(...via), v.n],
          ],
        },
      ],
      figures: [
        figure({ id: 'on_demand.added_p50', label: "on-demand start: added over the backend's own time to ready, p50", value: v.p50 - o.p50, unit: 'ms', n: reps, of: 'starts each way', relativeTo: 'backend', noise: { band: Math.abs(added(oA, vA) - added(oB, vB)), how: 'odd against even starts' }, targets: [le(50, 'issue 8'), le(5, 'issue 20')] }),
      ],
    }
  },
}

/** Memory and scale, each llamactl started on its own data folder with the shared processes stopped. */
const footprintSection: Section = {
  id: 'footprint',
  title: 'Footprint and scale',
  shared: false,
  async run() {
    const env = { LLAMACTL_LLAMACPP_COMMAND: BUN, LLAMACTL_LLAMACPP_ARGS: fake }
    const figures: Figure[] = []
    const rows: (string | number)[][] = []
    const two = (a: number, b: number, how: string) => ({ band: Math.abs(a - b), how })

    // Idle, twice: two processes are the noise band.
    const idle: number[] = []
    for (let i = 0; i < 2; i++) {
      const p = await startLlamactl(mkdtempSync(join(tmpdir(), 'llamactl-bench-idle-')), env)
      await Bun.sleep(500)
      idle.push(rss(p.child.proc.pid))
      await stopChild(p.child)
    }
    rows.push(['RSS idle, no instances (two processes)', idle.map((x) => `${x.toFixed(1)} MB`).join(', ')])
    figures.push(figure({ id: 'footprint.rss_idle', label: 'RSS idle, no instances (mean of two processes)', value: mean(idle), unit: 'MB', n: 2, of: 'processes', relativeTo: 'absolute', noise: two(idle[0]!, idle[1]!, 'two processes'), targets: [le(64, 'issue 20: stays or goes down')] }))

    // 1,000 defined instances (stopped), written as the store keeps them, then loaded at start, twice.
    const dir = mkdtempSync(join(tmpdir(), 'llamactl-bench-scale-'))
    const store = new Store(join(dir, 'llamactl.db'))
    const now = Math.floor(Date.now() / 1000)
    store.db.transaction(() => {
      for (let i = 0; i < 1000; i++) {
        store.insertInstance({ name: `model-${i}`, options: JSON.stringify({ backend_options: { model: `/models/m${i}.gguf`, ctx_size: 4096 }, on_demand_start: true }), created: now, desired: 'stopped' })
      }
    })()
    store.close()
    const big: number[] = []
    let list: Record<string, number[]> = {}
    for (let i = 0; i < 2; i++) {
      const p = await startLlamactl(dir, env)
      await Bun.sleep(500)
      big.push(rss(p.child.proc.pid))
      if (i === 1) {
        list = await interleaved({
          instances: get('footprint: GET /api/v1/instances', `${p.base}/api/v1/instances`, (j) => Array.isArray(j) && j.length === 1000),
          models: get('footprint: GET /v1/models', `${p.base}/v1/models`, (j) => Array.isArray(j.data) && j.data.length === 1000),
        }, QUICK ? 50 : 300, 20)
      }
      await stopChild(p.child)
    }
    rows.push(['RSS with 1,000 defined instances (two processes)', big.map((x) => `${x.toFixed(1)} MB`).join(', ')])
    figures.push(figure({ id: 'footprint.rss_1000', label: 'RSS with 1,000 defined instances (mean of two processes)', value: mean(big), unit: 'MB', n: 2, of: 'processes', relativeTo: 'absolute', noise: two(big[0]!, big[1]!, 'two processes'), targets: [le(68, 'issue 20: stays or goes down')] }))
    for (const [k, label] of [['instances', 'GET /api/v1/instances'], ['models', 'GET /v1/models']] as const) {
      const sm = summarize(list[k]!)
      const [a, b] = halves(list[k]!)
      rows.push([`${label} with 1,000 instances, p50 / p99 (${sm.n} requests)`, `${sm.p50.toFixed(3)} ms / ${sm.p99.toFixed(3)} ms`])
      figures.push(figure({ id: `footprint.${k}_1000_p50`, label: `${label} with 1,000 instances, p50`, value: sm.p50, unit: 'ms', n: sm.n, of: 'requests', relativeTo: 'absolute', noise: two(summarize(a).p50, summarize(b).p50, 'odd against even requests'), targets: [le(5, 'issue 8')] }))
    }

    // 256 concurrent streams through /v1 against one fake backend, twice, each on a fresh llamactl.
    const peaks: number[] = []
    for (let i = 0; i < 2; i++) {
      const st = await startLlamactl(mkdtempSync(join(tmpdir(), 'llamactl-bench-streams-')), env)
      // 256 slots, so all 256 streams are in flight at once (not queued at the fake's default 4).
      await api('footprint: 256 streams', st.base, 'POST', '/api/v1/instances/s?wait=ready', { backend_options: { model: 'x', parallel: 256 }, environment: { FAKE_TOKEN_DELAY_MS: '20' } }, 201)
      let peak = rss(st.child.proc.pid)
      const sampler = setInterval(() => (peak = Math.max(peak, rss(st.child.proc.pid))), 50)
      try {
        await Promise.all(
          Array.from({ length: 256 }, async () => {
            const r = await stream('footprint: 256 streams', `${st.base}/v1/chat/completions`, chatBody('s', { stream: true, max_tokens: 100 }))
            if (r.tokens !== 100) throw new WrongResponse('footprint: 256 streams', `a stream of ${r.tokens} tokens, not 100`)
          }),
        )
      } finally {
        clearInterval(sampler)
      }
      peaks.push(peak)
      await stopChild(st.child)
    }
    rows.push(['RSS peak during 256 concurrent streams of 100 tokens (two processes)', peaks.map((x) => `${x.toFixed(1)} MB`).join(', ')])
    figures.push(figure({ id: 'footprint.rss_256_streams', label: 'RSS peak during 256 concurrent streams (the higher of two processes)', value: Math.max(...peaks), unit: 'MB', n: 2, of: 'processes', relativeTo: 'absolute', noise: two(peaks[0]!, peaks[1]!, 'two processes'), targets: [le(100, 'issue 20')] }))


    // Start-up of the binary to listening.
    const bin = join(mkdtempSync(join(tmpdir(), 'llamactl-bench-bin-')), 'llamactl')
    const b = Bun.spawnSync([BUN, 'build.ts', '--outfile', bin], { cwd: root, stdout: 'ignore', stderr: 'inherit' })
    if (b.exitCode !== 0) throw new Error('footprint: the build failed')
    const times: number[] = []
    for (let i = 0; i < (QUICK ? 4 : 12); i++) {
      const d = mkdtempSync(join(tmpdir(), 'llamactl-bench-start-'))
      const t0 = performance.now()
      const s = await spawnUntil([bin, '--port', '0', '--data-dir', d], /listening on/, { LLAMACTL_MANAGEMENT_KEYS: KEY })
      times.push(performance.now() - t0)
      s.child.proc.kill('SIGTERM')
      await s.child.proc.exited
    }
    const t = summarize(times)
    const [ta, tb] = halves(times)
    rows.push([`start-up of the built binary to listening, p50 / max (${t.n} starts)`, `${t.p50.toFixed(3)} ms / ${Math.max(...times).toFixed(3)} ms`])
    figures.push(figure({ id: 'footprint.startup_p50', label: 'start-up of the built binary to listening, p50', value: t.p50, unit: 'ms', n: t.n, of: 'starts', relativeTo: 'absolute', noise: two(summarize(ta).p50, summarize(tb).p50, 'odd against even starts'), targets: [le(150, 'issue 8')] }))

    return {
      notes: ['Each figure from llamactl processes of its own (backends: the fake llama-server), the shared processes of the sections above stopped. RSS is VmRSS from /proc, 0.5 s after listening; during the streams, sampled every 50 ms.'],
      tables: [{ caption: 'Footprint and scale', columns: [{ label: 'what' }, { label: 'figure' }], rows }],
      figures,
    }
  },
}

/**
 * RSS of llamactl while 8 bodies of 100 MiB arrive at once on /v1, at a given
 * server.max_buffered_body_size; the backend (bench/sink.ts) reads and discards what it gets, so
 * the figure is llamactl's own memory. Every answer must be 200 from the sink, or 503 with
 * Retry-After when the budget is full.
 */
async function largeBodies(measure: string, budget: number, clients = 8, size = 100 * MB) {
  const dir = mkdtempSync(join(tmpdir(), 'llamactl-bench-bodies-'))
  const ll = await startLlamactl(dir, {
    LLAMACTL_LLAMACPP_COMMAND: BUN,
    LLAMACTL_LLAMACPP_ARGS: fake,
    LLAMACTL_MAX_BUFFERED_BODY_SIZE: String(budget),
    LLAMACTL_MAX_INFERENCE_BODY_SIZE: String(Math.min(budget, 512 * MB)),
  })
  const wrapper = join(dir, 'sink.sh')
  writeFileSync(wrapper, `#!/bin/sh\nexec ${BUN} ${join(root, 'bench/sink.ts')} "$@"\n`, { mode: 0o755 })
  await api(measure, ll.base, 'POST', '/api/v1/instances/sink?wait=ready', { backend_options: { model: 'x' }, command_override: wrapper }, 201)
  const head = new TextEncoder().encode('{"model":"sink","messages":[{"role":"user","content":"hi"}],"pad":"')
  const body = new Uint8Array(size).fill(97)
  body.set(head)
  body.set(new TextEncoder().encode('"}'), size - 2)
  const pid = ll.child.proc.pid
  await Bun.sleep(300)
  const before = rss(pid)
  let peak = before
  const sampler = setInterval(() => (peak = Math.max(peak, rss(pid))), 10)
  let statuses: number[]
  try {
    statuses = await Promise.all(
      Array.from({ length: clients }, async () => {
        const r = await fetch(`${ll.base}/v1/chat/completions`, { method: 'POST', headers: JSON_AUTH, body })
        const text = await r.text()
        if (r.status === 200) {
          // the backend is sent its own name for the model ("x"), not the instance's ("sink")
          const expected = size - 'sink'.length + 'x'.length
          const got = (JSON.parse(text) as { bytes?: number }).bytes
          if (got !== expected) throw new WrongResponse(measure, `the backend got ${got} bytes, not ${expected}`)
        } else if (r.status !== 503 || !r.headers.get('retry-after')) {
          throw new WrongResponse(measure, `answered ${r.status}, not 200 or 503 with Retry-After: ${text.slice(0, 200)}`)
        }
        return r.status
      }),
    )
  } finally {
    clearInterval(sampler)
  }
  peak = Math.max(peak, rss(pid))
  await stopChild(ll.child)
  return { before, peak, ok: statuses.filter((x) => x === 200).length, refused: statuses.filter((x) => x === 503).length }
}

const bodiesSection: Section = {
  id: 'bodies',
  title: 'RSS under 8 concurrent 100 MiB /v1 request bodies',
  shared: false,
  async run() {
    const rows: (string | number)[][] = []
    const figures: Figure[] = []
    const budgets: [string, number][] = [['256 MiB', 256 * MB], ['512 MiB (the default)', 512 * MB], ['4 GiB (in effect no bound)', 4096 * MB]]
    for (const [label, budget] of budgets) {
      const id = `bodies.${budget / MB}`
      // twice for the bounded budgets: two processes are the noise band
      const runs = []
      for (let i = 0; i < (budget > 512 * MB || QUICK ? 1 : 2); i++) runs.push(await largeBodies(`bodies: ${label}`, budget))
      for (const r of runs) rows.push([label, `${r.before.toFixed(1)} MB`, `${r.peak.toFixed(1)} MB`, r.ok, r.refused])
      const peakAbove = runs.map((r) => r.peak - r.before)
      const value = mean(peakAbove)
      const bound = budget <= 512 * MB
      figures.push(figure({
        id,
        label: `peak RSS above idle, max_buffered_body_size ${label}`,
        value,
        unit: 'MB',
        n: runs.length,
        of: 'processes',
        relativeTo: 'absolute',
        noise: runs.length === 2 ? { band: Math.abs(peakAbove[0]! - peakAbove[1]!), how: 'two processes' } : null,
        // the budget bounds the bytes held; Bun's growing read buffers may take up to twice that
        targets: bound ? [le((2 * budget) / MB, 'issue 13: bounded by the budget (at most twice it, for read buffers)')] : [],
      }))
    }
    return {
      notes: ['Each run starts its own llamactl with a backend that discards bodies, sends 8 bodies of 100 MiB at once and samples RSS every 10 ms; a body past the budget is refused 503 with Retry-After.'],
      tables: [{ caption: 'RSS with 8 concurrent 100 MiB bodies', columns: [{ label: 'max_buffered_body_size' }, { label: 'RSS before' }, { label: 'peak RSS' }, { label: 'forwarded' }, { label: 'refused 503' }], rows }],
      figures,
    }
  },
}

/**
 * Remote nodes (issue 17): a tiny chat completion through a main llamactl to a node llamactl to
 * llama-server, against the node's own /v1 and against llama-server directly, all on loopback,
 * interleaved with two floors (pass-throughs to llama-server) for the noise band. Each llamactl
 * on the path is held to issue 8's bound for one. Written against the documented config (the
 * main's `nodes: {w1: {address, api_key}}`, an instance created on the main with
 * `"nodes": ["w1"]`); where the main does not know the node (remote nodes not built), the
 * section says "skipped: remote nodes not built" and records no figure.
 */
const nodesSection: Section = {
  id: 'nodes',
  title: 'Remote nodes: tiny chat completion through main → node → llama-server',
  shared: false,
  async run() {
    const measure = 'nodes'
    const { server, model } = realLlama()
    const node = await startLlamactl(mkdtempSync(join(tmpdir(), 'llamactl-bench-node-')), { LLAMACTL_LOCAL_NODE: 'w1', LLAMACTL_LLAMACPP_COMMAND: server, LLAMACTL_LLAMACPP_ARGS: '' })
    const mainDir = mkdtempSync(join(tmpdir(), 'llamactl-bench-main-'))
    const config = join(mainDir, 'main.yaml')
    writeFileSync(config, `local_node: main\nnodes:\n  w1:\n    address: "${node.base}"\n    api_key: "${KEY}"\n`, { mode: 0o600 })
    const main = await startLlamactl(mainDir, { LLAMACTL_CONFIG_PATH: config })
    const skipped = (why: string): Measured => ({ notes: [`skipped: remote nodes not built (${why})`], tables: [], figures: [] })
    try {
      // The main lists w1 once remote nodes exist; today it lists itself alone.
      let listed = await api(measure, main.base, 'GET', '/api/v1/nodes')
      if (!('w1' in listed)) return skipped(`the main's GET /api/v1/nodes lists ${Object.keys(listed).join(', ') || 'nothing'}, not w1`)
      for (let i = 0; i < 300 && (listed.w1 as { reachable?: boolean }).reachable === false; i++) {
        await Bun.sleep(100)
        listed = await api(measure, main.base, 'GET', '/api/v1/nodes')
      }
      const res = await fetch(`${main.base}/api/v1/instances/chat?wait=ready`, {
        method: 'POST',
        headers: JSON_AUTH,
        body: JSON.stringify({ backend_type: 'llama_cpp', backend_options: { model, ctx_size: 256, threads: 1, parallel: 1, n_predict: 8 }, nodes: ['w1'] }),
      })
      const made = (await res.json()) as Record<string, unknown>
      if (res.status === 400 && /node/i.test(String(made.error))) return skipped(`creating an instance on w1 answered 400: ${made.error}`)
      if (res.status !== 201) throw new WrongResponse(measure, `creating the instance on w1 answered ${res.status}: ${JSON.stringify(made).slice(0, 300)}`)
      const there = await api(measure, node.base, 'GET', '/api/v1/instances/chat')
      if (there.status !== 'running') throw new WrongResponse(measure, `the instance on the node is ${there.status}, not running`)
      const direct = `http://127.0.0.1:${there.port}`
      const floorA = await passthrough(direct)
      const floorB = await passthrough(direct)
      const body = chatBody('chat')
      const rounds = QUICK ? 100 : 1000
      const targets = {
        direct: post(measure, `${direct}/v1/chat/completions`, body),
        'floor A': post(measure, `${floorA}/v1/chat/completions`, body),
        'floor B': post(measure, `${floorB}/v1/chat/completions`, body),
        node: post(measure, `${node.base}/v1/chat/completions`, body),
        main: post(measure, `${main.base}/v1/chat/completions`, body),
      }
      const samples = await interleaved(targets, rounds, QUICK ? 50 : 200)
      const st = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, summarize(v)])) as Record<keyof typeof targets, Summary>
      const noise = (k: 'p50' | 'p99') => floorBand(samples['floor A']!, samples['floor B']!, k === 'p50' ? 50 : 99)
      const common = { unit: 'ms' as const, n: rounds, of: 'requests a path', relativeTo: 'direct' as const }
      const fig = (id: string, label: string, k: 'p50' | 'p99', value: number, limit: number, source: string) =>
        figure({ ...common, id: `nodes.${id}_${k}`, label: `remote nodes: ${label}, ${k}`, value, noise: noise(k), targets: [le(limit, source)] })
      return {
        notes: [
          `A main llamactl and a node llamactl on loopback, the main configured with the node as w1 and the instance created on the main with \`"nodes": ["w1"]\`. One request at a time on keep-alive connections, ${rounds} a path after a warm-up that is not counted, the order of the five paths rotated every round. Issue 8 bounds one llamactl at p50 0.3 ms, p99 1 ms over direct: the node is held to that, the main's hop over the node to it again, and the main over direct to twice it.`,
        ],
        tables: [
          {
            caption: `Remote nodes: ${rounds} requests a path`,
            columns: [{ label: 'path' }, { label: 'p50', unit: 'ms' }, { label: 'p99', unit: 'ms' }, { label: 'mean', unit: 'ms' }, { label: 'samples' }],
            rows: (['direct', 'floor A', 'floor B', 'node', 'main'] as const).map((p) => [p === 'node' ? 'node (its own /v1)' : p === 'main' ? 'main → node' : p, st[p].p50, st[p].p99, st[p].mean, st[p].n]),
          },
        ],
        figures: [
          fig('node_added', 'the node over llama-server direct', 'p50', st.node.p50 - st.direct.p50, 0.3, 'issue 8'),
          fig('node_added', 'the node over llama-server direct', 'p99', st.node.p99 - st.direct.p99, 1, 'issue 8'),
          fig('hop_added', 'the main\'s hop over the node directly', 'p50', st.main.p50 - st.node.p50, 0.3, 'issue 8, for the second llamactl'),
          fig('hop_added', 'the main\'s hop over the node directly', 'p99', st.main.p99 - st.node.p99, 1, 'issue 8, for the second llamactl'),
          fig('main_added', 'main → node over llama-server direct', 'p50', st.main.p50 - st.direct.p50, 0.6, 'issue 8, twice: two llamactls'),
          fig('main_added', 'main → node over llama-server direct', 'p99', st.main.p99 - st.direct.p99, 2, 'issue 8, twice: two llamactls'),
        ],
      }
    } finally {
      // the main first, so that it never sees its node go
      for (const c of [...children].reverse()) await stopChild(c)
    }
  },
}

/**
 * The benchmark: sections in order. A new measurement is one more entry: its processes (shared
 * or its own), its checked requests, its figures with their targets and noise bands. For one
 * that starts its own llamactl:
 *
 *   {
 *     id: 'footprint.big_bodies', title: 'RSS under 8 concurrent 100 MB request bodies', shared: false,
 *     async run() {
 *       const p = await startLlamactl(mkdtempSync(join(tmpdir(), 'llamactl-bench-')), env)
 *       // … send the requests, check each answer (throw WrongResponse), sample rss(p.child.proc.pid) …
 *       await stopChild(p.child)
 *       return { notes: ['how it measures'], tables: [], figures: [figure({ id: 'footprint.big_bodies.rss_peak',
 *         label: '…', value: peak, unit: 'MB', n: 2, of: 'processes', relativeTo: 'absolute',
 *         noise: { band: Math.abs(a - b), how: 'two processes' }, targets: [le(LIMIT, 'issue N')] })] }
 *     },
 *   }
 */
const SECTIONS: Section[] = [
  latencySection('latency.health', '/health through the instance proxy', QUICK ? 300 : 3000, (s) => ({
    direct: get('latency.health', `${s.real.direct}/health`, isHealth),
    'floor A': get('latency.health', `${s.real.floorA}/health`, isHealth),
    'floor B': get('latency.health', `${s.real.floorB}/health`, isHealth),
    llamactl: get('latency.health', `${s.ll}/api/v1/instances/real/proxy/health`, isHealth),
  })),
  latencySection('latency.chat', 'tiny chat completion (max_tokens 1) through /v1', QUICK ? 100 : 1000, (s) => {
    const body = chatBody('real')
    return {
      direct: post('latency.chat', `${s.real.direct}/v1/chat/completions`, body),
      'floor A': post('latency.chat', `${s.real.floorA}/v1/chat/completions`, body),
      'floor B': post('latency.chat', `${s.real.floorB}/v1/chat/completions`, body),
      llamactl: post('latency.chat', `${s.ll}/v1/chat/completions`, body),
    }
  }),
  throughputSection('fake', 16),
  throughputSection('fake', 64),
  throughputSection('real', 16),
  throughputSection('real', 64),
  streamingSection,
  onDemandSection,
  footprintSection,
  bodiesSection,
  nodesSection,
]

// ---------------------------------------------------------------------------------------------

async function startShared(): Promise<Shared> {
  const { server, model } = realLlama()
  const dataDir = mkdtempSync(join(tmpdir(), 'llamactl-bench-'))
  const ll = await startLlamactl(dataDir, { LLAMACTL_LLAMACPP_COMMAND: server, LLAMACTL_LLAMACPP_ARGS: '' })
  // llama-server serves as many connections at once as it has HTTP threads (by default 2 more
  // than its slots) and keeps idle ones open 5 s: the four paths' keep-alive pools (64 each at
  // most) would hold them and starve whichever path comes next. One thread per possible connection.
  const real = await api('setup', ll.base, 'POST', '/api/v1/instances/real?wait=ready', { backend_options: { model, ctx_size: 256, threads: 1, parallel: 16, n_predict: 8, threads_http: 300 } }, 201)
  // The fast fake backend runs as an instance too, through a one-line wrapper script.
  const wrapper = join(dataDir, 'fake-llama-server.sh')
  writeFileSync(wrapper, `#!/bin/sh\nexec ${BUN} ${fake} "$@"\n`, { mode: 0o755 })
  // It answers as fast as it can; it says so with 64 slots (/props), so at 64 clients llamactl's
  // queue (max_concurrent_requests defaults to the backend's slots) never binds: this measures forwarding.
  const fakeInst = await api('setup', ll.base, 'POST', '/api/v1/instances/fake?wait=ready', { backend_options: { model: 'x', parallel: 64 }, command_override: wrapper, environment: { FAKE_TOKEN_DELAY_MS: '0' } }, 201)
  const backend = async (port: unknown) => {
    const direct = `http://127.0.0.1:${port}`
    return { direct, floorA: await passthrough(direct), floorB: await passthrough(direct) }
  }
  return { ll: ll.base, server, model, real: await backend(real.port), fake: await backend(fakeInst.port) }
}

function commit(): string {
  const r = Bun.spawnSync(['git', 'describe', '--always', '--dirty'], { cwd: root, stdout: 'pipe', stderr: 'ignore' })
  return r.exitCode === 0 ? r.stdout.toString().trim() : 'unknown'
}

async function main() {
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / MB).toFixed(0)} MB RAM, Bun ${Bun.version}, ${process.platform}-${process.arch}`
  const results: Results = { format: 2, date: new Date().toISOString(), machine, commit: commit(), quick: QUICK, load: { start: loadavg(), end: [] }, sections: [] }
  // ONLY=prefix[,prefix] runs the sections whose id starts with one of them (a scratch run).
  const only = process.env.ONLY?.split(',').filter(Boolean)
  const chosen = only ? SECTIONS.filter((s) => only.some((o) => s.id.startsWith(o))) : SECTIONS
  if (!chosen.length) throw new Error(`ONLY=${process.env.ONLY} matches none of ${SECTIONS.map((s) => s.id).join(', ')}`)
  let shared: Shared | null = null
  for (const section of chosen) {
    if (section.shared && !shared) shared = await startShared()
    if (!section.shared && shared) {
      for (const c of [...children]) await stopChild(c)
      shared = null
    }
    const t0 = performance.now()
    console.error(`bench: ${section.title} …`)
    const measured = await section.run(shared!)
    results.sections.push({ id: section.id, title: section.title, ...measured })
    console.error(`bench: ${section.title}: ${((performance.now() - t0) / 1000).toFixed(1)} s`)
  }
  for (const c of [...children]) await stopChild(c)
  results.load!.end = loadavg()

  const resultsPath = join(root, 'bench/results.json')
  const previousPath = join(root, 'bench/results.previous.json')
  if (QUICK || only) {
    writeFileSync(join(root, 'bench/results.scratch.json'), `${JSON.stringify(results, null, 2)}\n`)
    console.log(render(results, readResults(resultsPath), { results: 'bench/results.scratch.json', previous: 'bench/results.json' }))
    return
  }
  // The last full run becomes the comparison; this run the record.
  if (existsSync(resultsPath)) writeFileSync(previousPath, readFileSync(resultsPath))
  writeFileSync(resultsPath, `${JSON.stringify(results, null, 2)}\n`)
  writeDoc(join(root, 'docs/PERFORMANCE.md'), results, readResults(previousPath))
  console.log(render(results, readResults(previousPath)))
}

try {
  await main()
} finally {
  // SIGTERM first: a llamactl SIGKILLed would leave its backends (their own process groups) running.
  for (const c of children) c.proc.kill('SIGTERM')
  await Promise.race([Promise.all(children.map((c) => c.proc.exited)), Bun.sleep(15_000)])
  for (const c of children) c.proc.kill('SIGKILL')
}
