import { afterEach, describe, expect, test } from 'bun:test'
import { processStartTime } from '../../src/supervisor/os-process'
import { join } from 'node:path'
import { InstanceManager } from '../../src/instances/manager'
import { type Harness, harness, openFds, waitFor } from '../helpers'

let h: Harness
afterEach(async () => {
  await h?.close()
})

describe('supervision', () => {
  test('an instance holds its log file open only while its backend runs', async () => {
    h = await harness()
    const logs = `${h.config.instances.logs_dir}/`
    // many defined instances, none running: no log file open
    for (let i = 0; i < 30; i++) h.store.insertInstance({ name: `idle${i}`, options: JSON.stringify({ backend_options: { model: 'x' } }), created: 1, desired: 'stopped' })
    const other = new InstanceManager(h.config, h.store)
    await other.init()
    try {
      expect(other.list()).toHaveLength(30)
      expect(openFds(logs)).toBe(0)
    } finally {
      await other.shutdown()
    }
    const file = join(logs, 'r.log')
    expect((await h.json('POST', '/api/v1/instances/r?wait=ready', { backend_options: { model: 'x' } })).body.status).toBe('running')
    expect(openFds(file)).toBe(1)
    expect((await h.json('POST', '/api/v1/instances/r/stop')).body.status).toBe('stopped')
    expect(openFds(file)).toBe(0)
    // the tail and the file both have the whole story
    expect(h.manager.get('r').log.tail().join('\n')).toContain('exited')
    expect(await Bun.file(file).text()).toContain('exited')
    expect((await h.json('POST', '/api/v1/instances/r/start?wait=ready')).body.status).toBe('running')
    expect(openFds(file)).toBe(1)
    expect((await h.request('DELETE', '/api/v1/instances/r')).status).toBe(204)
    expect(openFds(logs)).toBe(0)
  })

  test('auto_restart brings a crashed backend back and counts the restart', async () => {
    h = await harness()
    const res = await h.json('POST', '/api/v1/instances/c?wait=ready', {
      backend_options: { model: 'crash-after-150' },
      auto_restart: true,
      max_restarts: 5,
      restart_delay: 0,
    })
    expect(res.body.status).toBe('running')
    await waitFor(() => h.manager.get('c').restarts >= 1, 5000)
    await waitFor(() => h.manager.get('c').status === 'running', 5000)
    const logs = h.manager.get('c').log.tail().join('\n')
    expect(logs).toContain('exited (exit code 3)')
    expect(logs).toContain('restart 1 in 0 s')
  })

  test('a crash loop ends in failed after max_restarts', async () => {
    h = await harness()
    await h.json('POST', '/api/v1/instances/loop?wait=ready', {
      backend_options: { model: 'crash-after-30' },
      max_restarts: 2,
      restart_delay: 0.05,
    })
    await waitFor(() => h.manager.get('loop').status === 'failed', 10000)
    const v = (await h.json('GET', '/api/v1/instances/loop')).body
    expect(v.status).toBe('failed')
    expect(v.restarts).toBe(2)
    expect(v.error).toContain('gave up after 2 restarts')
  })

  test('on-demand clients of a crash loop wait for its restarts: the backoff holds, the loop ends failed, then 503', async () => {
    h = await harness()
    await h.json('POST', '/api/v1/instances/loop?wait=ready', {
      backend_options: { model: 'crash-after-40' },
      max_restarts: 2,
      restart_delay: 0.2,
      on_demand_start: true,
    })
    // Each answer with the instance's status when the request was sent.
    const answers: { sentWhile: string; status: number }[] = []
    while (h.manager.get('loop').status !== 'failed') {
      const sentWhile = h.manager.get('loop').status
      const res = await h.request('POST', '/v1/chat/completions', { model: 'loop', messages: [] })
      await res.arrayBuffer()
      answers.push({ sentWhile, status: res.status })
      if (answers.length > 2000) throw new Error('the crash loop did not end')
    }
    // Until it failed, no client was turned away: each got its answer, or a 502 when the backend
    // died under its request (or had closed its socket before llamactl saw it exit).
    expect(answers.filter((a) => a.status !== 200 && a.status !== 502)).toEqual([])
    // A request that came during a restart's backoff waited for the restart and was answered.
    const duringBackoff = answers.filter((a) => a.sentWhile === 'restarting')
    expect(duringBackoff.length).toBeGreaterThanOrEqual(2)
    expect(duringBackoff.map((a) => a.status)).toEqual(duringBackoff.map(() => 200))
    const inst = h.manager.get('loop')
    expect(inst.restarts).toBe(2)
    expect(inst.log.tail().join('\n')).toContain('restart 2 in 0.4 s')
    const res = await h.json('POST', '/v1/chat/completions', { model: 'loop', messages: [] })
    expect(res.status).toBe(503)
    expect(res.body.error).toContain('gave up after 2 restarts')
    expect(h.manager.get('loop').status).toBe('failed')
    // An explicit start begins again.
    expect((await h.json('POST', '/api/v1/instances/loop/start?wait=ready')).body.status).toBe('running')
    expect(h.manager.get('loop').restarts).toBe(0)
  })

  test('auto_restart off: an unexpected exit is failed at once', async () => {
    h = await harness()
    await h.json('POST', '/api/v1/instances/once?wait=ready', { backend_options: { model: 'crash-after-50' }, auto_restart: false })
    await waitFor(() => h.manager.get('once').status === 'failed', 5000)
    expect(h.manager.get('once').restarts).toBe(0)
  })

  test('a backend that ignores SIGTERM is SIGKILLed after the grace period', async () => {
    h = await harness({ LLAMACTL_STOP_GRACE_PERIOD: '1' })
    await h.json('POST', '/api/v1/instances/stubborn?wait=ready', { backend_options: { model: 'ignore-sigterm' } })
    const pid = h.store.backendProcesses().find((r) => r.instance === 'stubborn')!.pid
    const t0 = Date.now()
    const res = await h.json('POST', '/api/v1/instances/stubborn/stop')
    const took = Date.now() - t0
    expect(res.body.status).toBe('stopped')
    expect(took).toBeGreaterThanOrEqual(900)
    const log = h.manager.get('stubborn').log.tail().join('\n')
    expect(log).toContain('ignoring SIGTERM')
    expect(log).toContain('exited (signal SIGKILL)')
    expect(processStartTime(pid)).toBeNull()
  })

  test('stop ends the whole process group, grandchildren included', async () => {
    h = await harness()
    await h.json('POST', '/api/v1/instances/family?wait=ready', { backend_options: { model: 'spawn-child' } })
    const child = Number(/child pid (\d+)/.exec(h.manager.get('family').log.tail().join('\n'))![1])
    expect(processStartTime(child)).not.toBeNull()
    await h.json('POST', '/api/v1/instances/family/stop')
    await waitFor(() => processStartTime(child) === null, 3000)
  })

  test('a 4 MB line does not block or kill the backend', async () => {
    h = await harness()
    const res = await h.json('POST', '/api/v1/instances/chatty?wait=ready', { backend_options: { model: 'long-line-4000000' } })
    expect(res.body.status).toBe('running')
    const last = h.manager.get('chatty').log.tail().find((l) => l.startsWith('xxxx'))!
    expect(last).toContain('line cut in memory')
    expect((await fetch(`http://127.0.0.1:${res.body.port}/health`)).status).toBe(200)
  })

  test('stop during a slow load cancels the start', async () => {
    h = await harness()
    const creating = h.json('POST', '/api/v1/instances/slow?wait=ready', { backend_options: { model: 'load-5000' } })
    await waitFor(() => h.manager.find('slow')?.status === 'starting')
    const stopped = await h.json('POST', '/api/v1/instances/slow/stop')
    expect(stopped.body.status).toBe('stopped')
    const created = await creating
    expect(created.status).toBe(500)
    expect(created.body.error).toContain('cancelled')
  })

  test('max_running_instances refuses one more start with 409 (eviction off); a refused create makes nothing', async () => {
    h = await harness({ LLAMACTL_MAX_RUNNING_INSTANCES: '1', LLAMACTL_ENABLE_LRU_EVICTION: 'false' })
    expect((await h.json('POST', '/api/v1/instances/two?wait=ready', { backend_options: { model: 'x' } })).status).toBe(201)
    await h.json('POST', '/api/v1/instances/two/stop')
    expect((await h.json('POST', '/api/v1/instances/one?wait=ready', { backend_options: { model: 'x' } })).status).toBe(201)
    const start = await h.json('POST', '/api/v1/instances/two/start?wait=ready')
    expect(start.status).toBe(409)
    expect(start.body.error).toContain('max_running_instances')
    expect(h.manager.get('two').status).toBe('stopped')
    const three = await h.json('POST', '/api/v1/instances/three?wait=ready', { backend_options: { model: 'x' } })
    expect(three.status).toBe(409)
    expect(h.manager.find('three')).toBeUndefined()
    expect(h.store.getInstance('three')).toBeNull()
    await h.json('POST', '/api/v1/instances/one/stop')
    expect((await h.json('POST', '/api/v1/instances/two/start?wait=ready')).body.status).toBe('running')
  })

  test('concurrent starts never exceed max_running_instances', async () => {
    h = await harness({ LLAMACTL_MAX_RUNNING_INSTANCES: '2', LLAMACTL_ENABLE_LRU_EVICTION: 'false' })
    for (const n of ['a', 'b', 'c', 'd']) {
      await h.json('POST', `/api/v1/instances/${n}?wait=ready`, { backend_options: { model: 'x' } })
      await h.json('POST', `/api/v1/instances/${n}/stop`)
    }
    const results = await Promise.all(['a', 'b', 'c', 'd'].map((n) => h.json('POST', `/api/v1/instances/${n}/start?wait=ready`)))
    expect(results.map((r) => r.status).sort()).toEqual([200, 200, 409, 409])
    expect(h.manager.list().filter((i) => i.status === 'running')).toHaveLength(2)
  })

  test('max_instances refuses one more create with 409', async () => {
    h = await harness({ LLAMACTL_MAX_INSTANCES: '1' })
    await h.json('POST', '/api/v1/instances/only?wait=ready', { backend_options: { model: 'x' } })
    const res = await h.json('POST', '/api/v1/instances/another?wait=ready', { backend_options: { model: 'x' } })
    expect(res.status).toBe(409)
    expect(res.body.error).toContain('max_instances')
    expect(h.store.countInstances()).toBe(1)
  })

  test('a user-chosen port in use is a clear failure', async () => {
    h = await harness()
    const blocker = Bun.serve({ hostname: '127.0.0.1', port: 0, fetch: () => new Response('busy') })
    try {
      const res = await h.json('POST', '/api/v1/instances/p?wait=ready', { backend_options: { model: 'x', port: blocker.port } })
      // a failed start like any other: 500, the instance kept as failed with the reason
      expect(res.status).toBe(500)
      expect(res.body.error).toContain(`port ${blocker.port}`)
      expect(h.manager.get('p').status).toBe('failed')
    } finally {
      blocker.stop(true)
    }
  })
})
