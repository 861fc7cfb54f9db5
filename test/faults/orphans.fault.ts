/**
 * llamactl SIGKILLed with backends running: they outlive it (their own process groups), and the
 * next start ends every one of them (grandchildren and SIGTERM-ignorers too) before it starts the
 * instances again. (test/system/lifecycle.test.ts covers one plain instance.)
 */
import { afterEach, describe, expect, test } from 'bun:test'
import { processStartTime } from '../../src/supervisor/os-process'
import { tempDir, waitFor } from '../helpers'
import { type Running, startLlamactl } from '../system/process'
import { fakeServerPids, recordedBackends } from './util'

const started: Running[] = []
afterEach(async () => {
  for (const r of started.splice(0)) if (r.proc.exitCode === null) await r.stop('SIGTERM')
})

async function start(dir: string) {
  const r = await startLlamactl(dir, { env: { LLAMACTL_STOP_GRACE_PERIOD: '1' } })
  started.push(r)
  return r
}

const alive = (pid: number) => processStartTime(pid) !== null

describe('llamactl SIGKILLed', () => {
  test('with 3 instances running: the next start ends all their processes and resumes the 3; a stopped one stays stopped', async () => {
    const dir = tempDir()
    const a = await start(dir)
    const bodies = {
      plain: { backend_options: { model: 'x' } },
      family: { backend_options: { model: 'spawn-child' } },
      stubborn: { backend_options: { model: 'ignore-sigterm' } },
      resting: { backend_options: { model: 'x' } },
    }
    const made = await Promise.all(Object.entries(bodies).map(([n, b]) => a.api('POST', `/api/v1/instances/${n}?wait=ready`, b)))
    expect(made.map((m) => m.status)).toEqual([201, 201, 201, 201])
    expect((await a.api('POST', '/api/v1/instances/resting/stop')).body.status).toBe('stopped')
    const old = recordedBackends(dir)
    expect([...old.keys()].sort()).toEqual(['family', 'plain', 'stubborn'])
    const grandchild = Number(/child pid (\d+)/.exec((await a.api('GET', '/api/v1/instances/family/logs')).body)![1])
    const oldPids = [...old.values(), grandchild]

    await a.stop('SIGKILL')
    for (const pid of oldPids) expect(alive(pid)).toBe(true) // they outlived llamactl

    const t0 = performance.now()
    const b = await start(dir)
    const startMs = performance.now() - t0
    expect(b.output()).toContain('ended 3 backend(s) left by an earlier run')
    // Ended before llamactl listened: nothing of the old run is left, not even the grandchild.
    for (const pid of oldPids) expect(alive(pid)).toBe(false)
    await waitFor(async () => {
      const list = (await b.api('GET', '/api/v1/instances')).body as { name: string; status: string }[]
      return list.filter((i) => i.status === 'running').length === 3
    }, 15000, 50)
    const list = (await b.api('GET', '/api/v1/instances')).body as { name: string; status: string; restarts: number }[]
    expect(Object.fromEntries(list.map((i) => [i.name, i.status]))).toEqual({ plain: 'running', family: 'running', stubborn: 'running', resting: 'stopped' })
    const now = recordedBackends(dir)
    expect([...now.keys()].sort()).toEqual(['family', 'plain', 'stubborn'])
    for (const [name, pid] of now) expect(pid).not.toBe(old.get(name))
    // Exactly the new backends run: one fake server per running instance.
    expect(fakeServerPids().sort()).toEqual([...now.values()].sort())
    console.log(`[faults] SIGKILLed with 3 running: the next start ended them (one ignoring SIGTERM, grace 1 s) and listened after ${startMs.toFixed(0)} ms`)
  }, 60000)

  test('while 3 instances are still loading: the next start ends the half-started backends and starts them again', async () => {
    const dir = tempDir()
    const a = await start(dir)
    // No answer is expected: llamactl is killed while they load (so each request fails).
    const creating = ['l1', 'l2', 'l3'].map((n) => a.api('POST', `/api/v1/instances/${n}?wait=ready`, { backend_options: { model: 'load-1500' } }).then((r) => r.status, () => 'no answer'))
    await waitFor(() => recordedBackends(dir).size === 3, 10000, 20)
    const old = recordedBackends(dir)
    await a.stop('SIGKILL')
    expect(await Promise.all(creating)).toEqual(['no answer', 'no answer', 'no answer'])
    for (const pid of old.values()) expect(alive(pid)).toBe(true)

    const b = await start(dir)
    expect(b.output()).toContain('ended 3 backend(s) left by an earlier run')
    for (const pid of old.values()) expect(alive(pid)).toBe(false)
    await waitFor(async () => ((await b.api('GET', '/api/v1/instances')).body as { status: string }[]).every((i) => i.status === 'running'), 15000, 50)
    expect(fakeServerPids().sort()).toEqual([...recordedBackends(dir).values()].sort())
  }, 60000)
})
