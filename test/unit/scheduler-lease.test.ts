/**
 * A request's way to a lease (acquire) against the real scheduler and a fake executor: the
 * instance's status is changed by the test, step by step; nothing runs and nothing sleeps.
 */
import { describe, expect, test } from 'bun:test'
import { decide, MAX_START_TRIES, type Effect, type Event, type Limits, type Slot } from '../../src/scheduler/decide'
import type { Instance } from '../../src/instances/instance'
import { acquire, type Executor, type Lease } from '../../src/instances/lease'

class Fake implements Executor {
  onDemandTimeout = 3600
  limits: Limits = { maxRunning: -1, lruEviction: true, groupLimits: {} }
  waits: (() => void)[] = []
  effects: Effect[][] = []
  private parked: (() => void) | null = null
  constructor(public slots: Slot[]) {}
  find(name: string) {
    return this.slots.find((s) => s.name === name) as unknown as Instance | undefined
  }
  decide(event: Event): Effect[] {
    const effects = decide({ now: 0, instances: this.slots, limits: this.limits }, event)
    for (const e of effects) if (e.do === 'spawn') this.set(e.name, { status: 'starting' })
    for (const e of effects) if (e.do === 'stop') this.set(e.name, { status: 'stopping' })
    this.effects.push(effects)
    return effects
  }
  lease(inst: Instance): Lease {
    return { instance: inst, upstream: 'http://127.0.0.1:1', backendKey: null, headers: {}, release() {} }
  }
  changed(): Promise<void> {
    return new Promise((resolve) => {
      this.waits.push(resolve)
      this.parked?.()
    })
  }
  observeWait() {}
  changedAny(): Promise<void> {
    return this.changed()
  }
  queue: { grant(l: Lease | null): void }[] = []
  enqueue(inst: Instance): Promise<Lease | null> {
    return new Promise((resolve) => {
      this.queue.push({ grant: resolve })
      this.slots.find((s) => s.name === inst.name)!.queued = this.queue.length
      this.parked?.()
    })
  }
  set(name: string, o: Partial<Slot>) {
    Object.assign(this.slots.find((s) => s.name === name)!, o)
  }
  /** Resolves once the request is waiting for a change of status. */
  async waiting(): Promise<void> {
    for (let i = 0; i < 100 && this.waits.length === 0 && this.queue.length === 0; i++) await new Promise<void>((r) => (this.parked = r))
  }
  /** The status changes: every waiter decides again. */
  async change(name: string, o: Partial<Slot>) {
    this.set(name, o)
    const ws = this.waits.splice(0)
    for (const w of ws) w()
  }
}

function slot(name: string, o: Partial<Slot> = {}): Slot {
  return { name, status: 'stopped', group: null, inflight: 0, waiting: 0, lastUsed: 0, onDemand: true, gaveUp: false, deleting: false, idleTimeout: 0, error: null, ...o }
}
const use = { route: 'chat', activity: true, startedAt: 0 }
const never = new AbortController().signal

describe('acquire', () => {
  test('a request for a stopped instance starts it, waits, and is granted once it is running', async () => {
    const x = new Fake([slot('a')])
    const lease = acquire(x, 'a', never, use)
    await x.waiting()
    expect(x.slots[0]!.waiting).toBe(1)
    await x.change('a', { status: 'running' })
    expect((await lease).instance.name).toBe('a')
    expect(x.slots[0]!.waiting).toBe(0)
  })

  test('a request waiting through a start that fails is a 503 with the reason, and does not start it again', async () => {
    const x = new Fake([slot('a')])
    const lease = acquire(x, 'a', never, use)
    await x.waiting()
    await x.change('a', { status: 'failed', error: 'exited while loading (exit code 1)' })
    await expect(lease).rejects.toMatchObject({ status: 503, message: 'instance "a" could not be started: exited while loading (exit code 1)' })
    expect(x.effects.flat().filter((e) => e.do === 'spawn')).toHaveLength(1)
  })

  test(`a request whose instance keeps being stopped before it gets in gives up after ${MAX_START_TRIES} starts`, async () => {
    const x = new Fake([slot('a')])
    const lease = acquire(x, 'a', never, use)
    for (let i = 0; i < MAX_START_TRIES; i++) {
      await x.waiting()
      await x.change('a', { status: 'stopped' })
    }
    await expect(lease).rejects.toMatchObject({ status: 503, message: 'instance "a" keeps stopping; try again' })
    expect(x.slots[0]!.waiting).toBe(0)
  })

  test('a request waiting during a crash restart waits for the policy\'s start and is granted when it is ready', async () => {
    const x = new Fake([slot('a', { status: 'restarting' })])
    const lease = acquire(x, 'a', never, use)
    await x.waiting()
    await x.change('a', { status: 'starting' })
    await x.waiting()
    await x.change('a', { status: 'running' })
    expect((await lease).instance.name).toBe('a')
    expect(x.effects.flat().filter((e) => e.do === 'spawn')).toHaveLength(0)
  })

  test('a request waiting when its instance is deleted is a 404 at once', async () => {
    const x = new Fake([slot('a')])
    const lease = acquire(x, 'a', never, use)
    await x.waiting()
    await x.change('a', { deleting: true })
    await expect(lease).rejects.toMatchObject({ status: 404, message: 'model "a" not found: the instance was deleted' })
  })

  test('a client that goes away while waiting leaves at once and is no longer counted as waiting', async () => {
    const x = new Fake([slot('a')])
    const abort = new AbortController()
    const lease = acquire(x, 'a', abort.signal, use)
    await x.waiting()
    abort.abort()
    await expect(lease).rejects.toMatchObject({ status: 503, message: 'the client went away' })
    expect(x.slots[0]!.waiting).toBe(0)
  })

  test('a request for a running instance at max_concurrent_requests queues; when its instance stops meanwhile it decides again and starts it', async () => {
    const x = new Fake([slot('a', { status: 'running', inflight: 1, maxConcurrent: 1, maxQueued: 4 })])
    const lease = acquire(x, 'a', never, use)
    await x.waiting()
    expect(x.queue).toHaveLength(1)
    x.set('a', { status: 'stopped', inflight: 0, queued: 0 })
    x.queue.splice(0).forEach((e) => e.grant(null))
    await x.waiting()
    await x.change('a', { status: 'running' })
    expect((await lease).instance.name).toBe('a')
    expect(x.effects.flat().filter((e) => e.do === 'spawn')).toHaveLength(1)
  })

  test('an on-demand request with no room and every running instance busy waits for one to go idle, then evicts it', async () => {
    const x = new Fake([slot('busy', { status: 'running', inflight: 1 }), slot('a')])
    x.limits = { maxRunning: 1, lruEviction: true, groupLimits: {} }
    const lease = acquire(x, 'a', never, use)
    await x.waiting()
    expect(x.effects.flat().map((e) => e.do)).toEqual(['wait-room'])
    await x.change('busy', { inflight: 0 }) // its request ended
    await x.waiting()
    expect(x.effects.flat().map((e) => e.do)).toEqual(['wait-room', 'stop', 'spawn', 'wait'])
    await x.change('busy', { status: 'stopped' })
    await x.change('a', { status: 'running' })
    expect((await lease).instance.name).toBe('a')
  })
})
