/**
 * Load: 256 concurrent streaming clients for 60 s (LOAD_SECONDS, LOAD_CLIENTS) through /v1 to a
 * fake llama-server with a short token delay. No request may fail; llamactl's open files and
 * sockets must come back to their baseline, and its memory close to it, once the load is over.
 * The figures go to the test output for docs/faults.md.
 */
import { afterAll, expect, test } from 'bun:test'
import { resolve } from 'node:path'
import { BUN, tempDir } from '../helpers'
import { type Running, startLlamactl, TEST_KEY } from '../system/process'
import { AUTH_HEADER, cpuSeconds, metric, openFds, openSockets, rssBytes } from './util'

const CLIENTS = Number(process.env.LOAD_CLIENTS ?? 256)
const SECONDS = Number(process.env.LOAD_SECONDS ?? 60)
const MAX_TOKENS = 16
const TOKEN_DELAY_MS = 10
const CLIENT = resolve(import.meta.dir, 'load-client.ts')

let r: Running
afterAll(async () => {
  if (r && r.proc.exitCode === null) await r.stop('SIGTERM')
})

async function load(clients: number, seconds: number) {
  const proc = Bun.spawn([BUN, CLIENT, r.url, TEST_KEY, 'load', String(clients), String(seconds), String(MAX_TOKENS)], {
    env: { ...process.env, BUN_CONFIG_MAX_HTTP_REQUESTS: String(Math.max(512, clients * 2)) },
    stdout: 'pipe',
    stderr: 'inherit',
  })
  const out = await new Response(proc.stdout).text()
  if ((await proc.exited) !== 0) throw new Error(`the load client failed: ${out}`)
  return JSON.parse(out.trim().split('\n').at(-1)!) as { ok: number; errors: number; firstErrors: string[]; events: number; p50: number; p99: number; max: number }
}

const MiB = (b: number) => (b / 1024 / 1024).toFixed(1)

test(`${CLIENTS} concurrent streaming clients for ${SECONDS} s: no error, no leaked descriptor or socket, memory back near its baseline`, async () => {
  r = await startLlamactl(tempDir(), { env: { LLAMACTL_LOG_REQUESTS: 'false' } })
  const pid = r.proc.pid
  // A backend with a slot per client (the fake's --parallel), so llamactl's queue, whose limit
  // defaults to the backend's slots, never binds: this is about forwarding under load.
  const made = await r.api('POST', '/api/v1/instances/load?wait=ready', { backend_options: { model: 'x', parallel: CLIENTS }, environment: { FAKE_TOKEN_DELAY_MS: String(TOKEN_DELAY_MS) } })
  expect(made.status).toBe(201)

  // A short warm-up first, so the baseline includes what any first use allocates for good.
  const warm = await load(CLIENTS, 3)
  expect(warm.errors).toBe(0)
  await Bun.sleep(2000)
  const base = { fds: openFds(pid), sockets: openSockets(pid), rss: rssBytes(pid) }

  const peak = { fds: 0, sockets: 0, rss: 0 }
  let sampling = true
  const sampler = (async () => {
    while (sampling) {
      peak.fds = Math.max(peak.fds, openFds(pid))
      peak.sockets = Math.max(peak.sockets, openSockets(pid))
      peak.rss = Math.max(peak.rss, rssBytes(pid))
      await Bun.sleep(500)
    }
  })()
  const t0 = performance.now()
  const cpu0 = cpuSeconds(pid)
  const result = await load(CLIENTS, SECONDS)
  const took = (performance.now() - t0) / 1000
  const cpu = cpuSeconds(pid) - cpu0
  sampling = false
  await sampler

  // Sockets close as the last streams end, and memory is given back: wait (bounded) for what is asserted below.
  const settled = () =>
    openFds(pid) <= base.fds + 2 && openSockets(pid) <= base.sockets + 2 && rssBytes(pid) < Math.max(base.rss * 1.25, base.rss + 32 * 1024 * 1024)
  for (const until = Date.now() + 15000; !settled() && Date.now() < until; ) await Bun.sleep(100) // a miss shows below, with the figures
  const after = { fds: openFds(pid), sockets: openSockets(pid), rss: rssBytes(pid) }
  const m = await (await fetch(`${r.url}/metrics`, { headers: { authorization: AUTH_HEADER } })).text()

  console.log(
    `[faults] load: ${CLIENTS} clients × ${SECONDS} s (${took.toFixed(1)} s): ${result.ok} streams (${(result.ok / took).toFixed(0)}/s, ` +
      `${(result.events / took).toFixed(0)} events/s), ${result.errors} errors ${JSON.stringify(result.firstErrors)}; stream p50 ${result.p50} ms, p99 ${result.p99} ms, max ${result.max} ms\n` +
      `[faults] load: llamactl fds ${base.fds} before → ${peak.fds} peak → ${after.fds} after; sockets ${base.sockets} → ${peak.sockets} → ${after.sockets}; ` +
      `RSS ${MiB(base.rss)} → ${MiB(peak.rss)} → ${MiB(after.rss)} MiB; llamactl CPU ${cpu.toFixed(1)} s ` +
      `(${((cpu / took) * 100).toFixed(0)}% of a core, ${((cpu / result.ok) * 1e6).toFixed(0)} µs a stream, ${((cpu / result.events) * 1e6).toFixed(1)} µs an event)`,
  )
  expect(result.errors).toBe(0)
  expect(result.ok).toBeGreaterThan(CLIENTS)
  expect(metric(m, 'llamactl_requests_in_flight', { instance: 'load' })).toBe(0)
  expect(metric(m, 'llamactl_requests_total', { instance: 'load', route: 'chat_completions', status: '200' })).toBe(warm.ok + result.ok)
  expect(after.fds).toBeLessThanOrEqual(base.fds + 2)
  expect(after.sockets).toBeLessThanOrEqual(base.sockets + 2)
  expect(after.rss).toBeLessThan(Math.max(base.rss * 1.25, base.rss + 32 * 1024 * 1024))
}, (SECONDS + 120) * 1000)
