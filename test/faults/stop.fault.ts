/**
 * Backends that do not go or do not come: one stuck loading fails its start after
 * instances.startup_timeout and is ended (SIGKILL too when it ignores SIGTERM); one that ignores
 * SIGTERM is SIGKILLed after the grace period also when llamactl itself is shutting down.
 * (test/api/supervision.test.ts covers an API stop of a SIGTERM-ignoring backend.)
 */
import { afterEach, describe, expect, test } from 'bun:test'
import { processStartTime } from '../../src/supervisor/os-process'
import { tempDir, waitFor } from '../helpers'
import { type Running, startLlamactl } from '../system/process'
import { AUTH_HEADER, recordedBackends } from './util'

const started: Running[] = []
afterEach(async () => {
  for (const r of started.splice(0)) if (r.proc.exitCode === null) await r.stop('SIGTERM')
})

async function start(env: Record<string, string>) {
  const dir = tempDir()
  const r = await startLlamactl(dir, { env })
  started.push(r)
  return { r, dir }
}

/** Creates an instance and catches its backend's pid while it loads; returns the answer, its time and the pid. */
async function createWatched(r: Running, dir: string, name: string, body: unknown) {
  const t0 = performance.now()
  const answer = r.api('POST', `/api/v1/instances/${name}?wait=ready`, body)
  let pid: number | undefined
  await waitFor(() => (pid = recordedBackends(dir).get(name)) !== undefined, 5000, 20)
  const res = await answer
  return { res, ms: performance.now() - t0, pid: pid! }
}

describe('a backend that hangs while loading', () => {
  test('answering 503 "loading" for ever: the create fails after startup_timeout and the backend is ended', async () => {
    const { r, dir } = await start({ LLAMACTL_STARTUP_TIMEOUT: '1' })
    const { res, ms, pid } = await createWatched(r, dir, 'stuck', { backend_options: { model: 'load-600000' } })
    expect(res.status).toBe(500)
    expect(res.body.error).toContain('not ready after 1 s')
    expect(ms).toBeGreaterThanOrEqual(1000)
    expect(ms).toBeLessThan(3000)
    expect(processStartTime(pid)).toBeNull()
    const v = (await r.api('GET', '/api/v1/instances/stuck')).body
    expect(v.status).toBe('failed')
    expect(v.port).toBeNull()
    expect(recordedBackends(dir).has('stuck')).toBe(false)
    console.log(`[faults] hung load: create answered 500 after ${ms.toFixed(0)} ms (startup_timeout 1 s)`)
  })

  test('never answering /health at all: the same, each poll bounded', async () => {
    const { r, dir } = await start({ LLAMACTL_STARTUP_TIMEOUT: '1' })
    const { res, ms, pid } = await createWatched(r, dir, 'mute', { backend_options: { model: 'hang' } })
    expect(res.status).toBe(500)
    expect(res.body.error).toContain('not ready after 1 s')
    expect(ms).toBeLessThan(3500)
    expect(processStartTime(pid)).toBeNull()
  })

  test('stuck and ignoring SIGTERM: SIGKILLed after the grace period', async () => {
    const { r, dir } = await start({ LLAMACTL_STARTUP_TIMEOUT: '1', LLAMACTL_STOP_GRACE_PERIOD: '1' })
    const { res, ms, pid } = await createWatched(r, dir, 'mule', { backend_options: { model: 'load-600000+ignore-sigterm' } })
    expect(res.status).toBe(500)
    expect(ms).toBeGreaterThanOrEqual(2000)
    expect(ms).toBeLessThan(4500)
    expect(processStartTime(pid)).toBeNull()
    const logs = (await r.api('GET', '/api/v1/instances/mule/logs')).body as string
    expect(logs).toContain('ignoring SIGTERM')
    expect(logs).toContain('exited (signal SIGKILL)')
  })

  test('an on-demand start that hangs: the waiting request gets 503, not a hang', async () => {
    const { r } = await start({ LLAMACTL_STARTUP_TIMEOUT: '1' })
    expect((await r.api('POST', '/api/v1/instances/od?wait=ready', { backend_options: { model: 'x' }, on_demand_start: true })).status).toBe(201)
    expect((await r.api('POST', '/api/v1/instances/od/stop')).status).toBe(200)
    expect((await r.api('PUT', '/api/v1/instances/od?wait=ready', { backend_options: { model: 'load-600000' }, on_demand_start: true })).status).toBe(200)
    const t0 = performance.now()
    const res = await fetch(`${r.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: AUTH_HEADER },
      body: JSON.stringify({ model: 'od', messages: [] }),
    })
    expect(res.status).toBe(503)
    expect(((await res.json()) as { error: string }).error).toContain('not ready after 1 s')
    expect(performance.now() - t0).toBeLessThan(3000)
  })
})

describe('a backend that ignores SIGTERM', () => {
  test('when llamactl itself is told to stop: the backend is SIGKILLed after the grace period and llamactl exits', async () => {
    const { r, dir } = await start({ LLAMACTL_STOP_GRACE_PERIOD: '1' })
    expect((await r.api('POST', '/api/v1/instances/stubborn?wait=ready', { backend_options: { model: 'ignore-sigterm' } })).status).toBe(201)
    const pid = recordedBackends(dir).get('stubborn')!
    const t0 = performance.now()
    expect(await r.stop('SIGTERM')).toBe(0)
    const ms = performance.now() - t0
    expect(ms).toBeGreaterThanOrEqual(1000)
    expect(ms).toBeLessThan(4000)
    expect(processStartTime(pid)).toBeNull()
    expect(r.output()).toContain('SIGTERM, stopping instances')
  })
})
