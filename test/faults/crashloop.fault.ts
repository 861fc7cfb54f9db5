/**
 * A backend that crashes again after every restart: the instance backs off (each delay double
 * the one before), ends `failed` after max_restarts, and meanwhile llamactl keeps serving: the
 * management API answers quickly, another instance's streams go on, and clients asking for the
 * crashing instance neither get an internal error nor shortcut its backoff.
 */
import { afterEach, describe, expect, test } from 'bun:test'
import { tempDir } from '../helpers'
import { type Running, startLlamactl } from '../system/process'
import { AUTH_HEADER, metric, recordedBackends } from './util'

const started: Running[] = []
afterEach(async () => {
  for (const r of started.splice(0)) if (r.proc.exitCode === null) await r.stop('SIGTERM')
})

/** The notes llamactl wrote in an instance's log, with their time. */
function notes(log: string): { at: number; text: string }[] {
  return log
    .split('\n')
    .map((l) => /^\[llamactl\] (\S+) (.*)$/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ at: Date.parse(m[1]!), text: m[2]! }))
}

function chat(r: Running, model: string, stream: boolean) {
  return fetch(`${r.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: AUTH_HEADER },
    body: JSON.stringify({ model, stream, max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }),
  })
}

describe('a crash loop', () => {
  test('backs off, ends failed after max_restarts, and starves neither the API, nor other instances, nor its own clients', async () => {
    const dir = tempDir()
    const r = await startLlamactl(dir)
    started.push(r)
    expect((await r.api('POST', '/api/v1/instances/steady?wait=ready', { backend_options: { model: 'x' } })).status).toBe(201)
    const made = await r.api('POST', '/api/v1/instances/loop?wait=ready', {
      backend_options: { model: 'crash-after-100' },
      max_restarts: 4,
      restart_delay: 0.2,
      on_demand_start: true,
    })
    expect(made.status).toBe(201)
    const t0 = performance.now()

    let done = false
    const apiLatencies: number[] = []
    const poll = (async () => {
      try {
        while (!done) {
          const t = performance.now()
          const res = await r.api('GET', '/api/v1/instances')
          apiLatencies.push(performance.now() - t)
          expect(res.status).toBe(200)
          if (res.body.find((i: any) => i.name === 'loop')?.status === 'failed') break
          if (performance.now() - t0 > 30000) throw new Error('the crash loop did not end within 30 s')
          await Bun.sleep(50)
        }
      } finally {
        done = true
      }
    })()
    let streams = 0
    const streamErrors: string[] = []
    const stream = (async () => {
      while (!done) {
        try {
          const text = await (await chat(r, 'steady', true)).text()
          if (!text.includes('[DONE]')) streamErrors.push(text.slice(0, 200))
        } catch (e) {
          streamErrors.push((e as Error).message)
        }
        streams++
      }
    })()
    // A client of the crashing instance, asking all along.
    const loopStatuses = new Map<number, number>()
    const client = (async () => {
      while (!done) {
        const res = await chat(r, 'loop', false)
        await res.arrayBuffer()
        loopStatuses.set(res.status, (loopStatuses.get(res.status) ?? 0) + 1)
        await Bun.sleep(20)
      }
    })()
    await Promise.all([poll, stream, client])
    const elapsed = performance.now() - t0

    const v = (await r.api('GET', '/api/v1/instances/loop')).body
    expect(v.status).toBe('failed')
    expect(v.restarts).toBe(4)
    expect(v.error).toContain('gave up after 4 restarts')

    // Backoff: restart n waits 0.2 × 2^(n-1) s, measured from the note to the next start.
    const log = notes((await r.api('GET', '/api/v1/instances/loop/logs')).body as string)
    const gaps: number[] = []
    for (const [n, delay] of [0.2, 0.4, 0.8, 1.6].entries()) {
      const i = log.findIndex((l) => l.text.includes(`restart ${n + 1} in ${delay} s`))
      expect(i).toBeGreaterThan(-1)
      const next = log.slice(i + 1).find((l) => l.text.startsWith('starting:'))!
      gaps.push(next.at - log[i]!.at)
      expect(next.at - log[i]!.at).toBeGreaterThanOrEqual(delay * 1000 - 5)
    }
    expect(elapsed).toBeGreaterThan(3000)

    const m = await (await fetch(`${r.url}/metrics`, { headers: { authorization: AUTH_HEADER } })).text()
    expect(metric(m, 'llamactl_instance_events_total', { instance: 'loop', event: 'crash' })).toBe(5)
    expect(metric(m, 'llamactl_instance_events_total', { instance: 'loop', event: 'restart' })).toBe(4)

    // The rest of llamactl was served all along.
    apiLatencies.sort((a, b) => a - b)
    const p99 = apiLatencies[Math.floor(apiLatencies.length * 0.99)]!
    const max = apiLatencies.at(-1)!
    console.log(
      `[faults] crash loop: failed after ${(elapsed / 1000).toFixed(1)} s, restart gaps ${gaps.map((g) => g.toFixed(0)).join('/')} ms; ` +
        `GET /api/v1/instances ×${apiLatencies.length}: p99 ${p99.toFixed(1)} ms, max ${max.toFixed(1)} ms; ` +
        `${streams} streams from another instance, ${streamErrors.length} failed; the crashing instance's client got ${JSON.stringify(Object.fromEntries(loopStatuses))}`,
    )
    expect(max).toBeLessThan(1000)
    expect(streamErrors).toEqual([])
    expect(streams).toBeGreaterThan(10)
    for (const status of loopStatuses.keys()) expect([200, 502, 503]).toContain(status)
    expect((await chat(r, 'steady', false)).status).toBe(200)
  }, 60000)

  test('without delay or limit (restart_delay 0, max_restarts -1) it spins, but the API answers and a stop ends it', async () => {
    const dir = tempDir()
    const r = await startLlamactl(dir)
    started.push(r)
    const made = await r.api('POST', '/api/v1/instances/spin?wait=ready', { backend_options: { model: 'crash-after-150' }, max_restarts: -1, restart_delay: 0 })
    expect(made.status).toBe(201)
    const latencies: number[] = []
    const until = performance.now() + 3000
    while (performance.now() < until) {
      const t = performance.now()
      expect((await r.api('GET', '/api/v1/instances/spin')).status).toBe(200)
      latencies.push(performance.now() - t)
      await Bun.sleep(20)
    }
    const restarts = (await r.api('GET', '/api/v1/instances/spin')).body.restarts
    const t = performance.now()
    const stopped = await r.api('POST', '/api/v1/instances/spin/stop')
    const stopMs = performance.now() - t
    expect(stopped.status).toBe(200)
    expect(stopped.body.status).toBe('stopped')
    // ended: no backend recorded or running for it, and (300 ms on) no restart has come back
    expect(recordedBackends(dir).has('spin')).toBe(false)
    await Bun.sleep(300)
    const after = (await r.api('GET', '/api/v1/instances/spin')).body
    expect([after.status, after.restarts]).toEqual(['stopped', stopped.body.restarts])
    expect(recordedBackends(dir).has('spin')).toBe(false)
    latencies.sort((a, b) => a - b)
    console.log(
      `[faults] unbounded crash loop: ${restarts} restarts in 3 s; GET ×${latencies.length}: p99 ${latencies[Math.floor(latencies.length * 0.99)]!.toFixed(1)} ms, ` +
        `max ${latencies.at(-1)!.toFixed(1)} ms; stop took ${stopMs.toFixed(0)} ms`,
    )
    expect(restarts).toBeGreaterThan(3)
    expect(latencies.at(-1)!).toBeLessThan(1000)
  }, 30000)
})
