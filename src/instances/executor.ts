/**
 * Applies what the scheduler (src/scheduler/decide.ts) decides: it asks on the state of this
 * moment and carries out the effects in the same synchronous step, so no decision rests on a
 * read another request could change before it is acted on. It decides nothing itself.
 */
import type { Config } from '../config/load'
import { Unavailable } from '../errors'
import { backendKey, backendResponseHeaders } from '../http/upstream'
import type { Metrics } from '../metrics/llamactl'
import { decide, nextInQueue, type Effect, type Event, type Slot, type World } from '../scheduler/decide'
import type { Store } from '../store/db'
import type { Instance } from './instance'
import { refusal, type Executor as ForAcquire, type Lease, type Use } from './lease'
import { QUEUE_DEFAULTS } from './options'

export class Executor implements ForAcquire {
  private waiters = new Map<Instance, Set<() => void>>()
  private roomWaiters = new Set<() => void>()
  private timers = new Map<string, ReturnType<typeof setTimeout>>()
  /** Each instance's queue, first come first: `grant` hands over the lease, or null to decide again. */
  private queues = new Map<Instance, { use: Use; since: number; grant(lease: Lease | null): void }[]>()
  /** Per instance, each client's turn when last served from its queue (per_key fairness). */
  private served = new WeakMap<Instance, Map<string, number>>()
  private turn = 0
  readonly onDemandTimeout: number
  private limits: World['limits']

  constructor(
    private config: Config,
    private store: Store,
    private metrics: Metrics,
    private instances: Map<string, Instance>,
  ) {
    const c = config.instances
    this.onDemandTimeout = c.on_demand_start_timeout
    this.limits = { maxRunning: c.max_running_instances, lruEviction: c.enable_lru_eviction, groupLimits: c.group_limits }
  }

  find(name: string): Instance | undefined {
    return this.instances.get(name)
  }

  /**
   * The state the scheduler decides on; `extra`: an instance about to be made (a create). The
   * list of every slot is built only if the decision reads it (a start does; a request for a
   * running instance and a request's end read only their own), so a request costs the same
   * with one instance defined as with a thousand.
   */
  world(extra?: Slot): World {
    const instances = this.instances
    let all: Slot[] | null = null
    return {
      now: Date.now(),
      limits: this.limits,
      get instances() {
        if (!all) {
          all = [...instances.values()].map((i) => i.slot())
          if (extra) all.push(extra)
        }
        return all
      },
      find: (name) => (extra?.name === name ? extra : instances.get(name)?.slot()),
    }
  }

  /** Decides and applies; answers every effect (the caller reads grant, wait or refuse). */
  decide(event: Event): Effect[] {
    const effects = decide(this.world(), event)
    this.apply(effects)
    if (effects.some((e) => e.do === 'refuse' && e.status === 429)) this.metrics.queueRefused.inc([event.name, 'full'])
    return effects
  }

  /** Applies stops, spawns and timers; answers the spawn's start, if there is one. */
  apply(effects: Effect[]): Promise<void> | null {
    const stops = new Map<string, Promise<void>>()
    let started: Promise<void> | null = null
    for (const e of effects) {
      const inst = 'name' in e ? this.instances.get(e.name) : undefined
      if (!inst) continue
      if (e.do === 'stop') {
        this.metrics.event(e.name, e.why === 'idle' ? 'idle_stop' : 'eviction')
        // A restart of llamactl leaves instances stopped for being idle or evicted stopped (they start on demand).
        this.remember(inst, 'stopped')
        stops.set(e.name, inst.life.stop(e.reason).catch(() => {}))
      } else if (e.do === 'spawn') {
        this.remember(inst, 'running')
        started = inst.life.start(e.after.length ? Promise.all(e.after.map((n) => stops.get(n))) : undefined)
        started.catch(() => {}) // its failure is in the status, where the scheduler reads it
      } else if (e.do === 'dequeue') {
        const queue = this.queues.get(inst) ?? []
        const served = this.served.get(inst) ?? new Map<string, number>()
        this.served.set(inst, served)
        const next = queue[nextInQueue(queue.map((q) => q.use.client ?? 'anonymous'), served, this.config.instances.queue_fairness)]
        if (next) {
          served.set(next.use.client ?? 'anonymous', this.turn++)
          next.grant(this.lease(inst, next.use))
        }
      } else if (e.do === 'arm' && !this.timers.has(e.name)) {
        const timer = setTimeout(() => {
          this.timers.delete(e.name)
          this.decide({ type: 'timer', name: e.name })
        }, e.ms)
        this.timers.set(e.name, timer)
      }
    }
    return started
  }

  /** The instance proxy's lease: only a running instance, never started for it. */
  hold(inst: Instance, use: Use): Lease {
    const ask = this.decide({ type: 'proxy', name: inst.name })[0]
    if (ask?.do !== 'grant') throw refusal(ask)
    return this.lease(inst, use)
  }

  /** A granted request's hold: counted in flight now, released exactly once. */
  lease(inst: Instance, use: Use): Lease {
    inst.inflight++
    if (use.activity) inst.lastUsed = inst.lastRequest = Date.now()
    let done = false
    const release: Lease['release'] = (status, headersAt, usage, firstTokenAt = 0) => {
      if (done) return
      done = true
      inst.inflight--
      if (use.activity) inst.lastUsed = inst.lastRequest = Date.now()
      inst.life.requestEnded()
      this.decide({ type: 'request-ended', name: inst.name })
      this.wakeAny()
      // A request that outlived its instance's deletion leaves no series behind.
      if (this.find(inst.name) === inst) setImmediate(() => this.metrics.request(inst.name, use.route, status, use.startedAt, headersAt, usage, firstTokenAt))
    }
    return { instance: inst, upstream: inst.upstream!, backendKey: backendKey(inst), headers: backendResponseHeaders(this.config, inst), release }
  }

  observeWait(name: string, seconds: number) {
    this.metrics.onDemandWait.observe([name], seconds)
  }

  changed(inst: Instance): Promise<void> {
    return new Promise((resolve) => {
      let set = this.waiters.get(inst)
      if (!set) this.waiters.set(inst, (set = new Set()))
      set.add(resolve)
    })
  }

  enqueue(inst: Instance, signal: AbortSignal, use: Use): Promise<Lease | null> {
    const timeoutS = inst.options.queue_timeout ?? QUEUE_DEFAULTS.queue_timeout
    const since = performance.now()
    return new Promise((resolve, reject) => {
      let queue = this.queues.get(inst)
      if (!queue) this.queues.set(inst, (queue = []))
      const leave = () => {
        clearTimeout(timer)
        signal.removeEventListener('abort', gone)
        const q = this.queues.get(inst) ?? []
        const at = q.indexOf(entry)
        if (at >= 0) q.splice(at, 1)
        inst.queued = q.length
        inst.queuedSince = q[0]?.since ?? null
      }
      const entry = {
        use,
        since: Date.now(),
        grant: (lease: Lease | null) => {
          leave()
          if (lease) this.metrics.queueWait.observe([inst.name], (performance.now() - since) / 1000)
          resolve(lease)
        },
      }
      const refuse = (reason: string, error: Error) => {
        leave()
        this.metrics.queueRefused.inc([inst.name, reason])
        reject(error)
      }
      const timer = setTimeout(() => refuse('timeout', refusal({ do: 'refuse', status: 429, message: `instance ${JSON.stringify(inst.name)}: waited queue_timeout (${timeoutS} s) in its queue; try again shortly` })), timeoutS * 1000)
      // A client that goes away leaves the queue at once; its place goes to the next.
      const gone = () => refuse('client_gone', new Unavailable('the client went away'))
      signal.addEventListener('abort', gone, { once: true })
      queue.push(entry)
      inst.queued = queue.length
      inst.queuedSince ??= entry.since
      if (signal.aborted) gone()
    })
  }

  changedAny(): Promise<void> {
    return new Promise((resolve) => this.roomWaiters.add(resolve))
  }

  /** Something that could make room happened: requests waiting for room decide again. */
  wakeAny() {
    const all = [...this.roomWaiters]
    this.roomWaiters.clear()
    for (const w of all) w()
  }

  /** An instance's status changed: whoever waits on it, or for room, decides again; a ready one may be idle. */
  statusChanged(inst: Instance) {
    this.wake(inst)
    this.wakeAny()
    if (inst.status === 'running') this.decide({ type: 'ready', name: inst.name })
  }

  /** The instance's status changed (or it is being deleted): requests waiting on it decide again. */
  wake(inst: Instance) {
    // Its queue was for a running backend: once it is not, each queued request decides again.
    if (inst.status !== 'running' || inst.disposed) for (const e of [...(this.queues.get(inst) ?? [])]) e.grant(null)
    const set = this.waiters.get(inst)
    this.waiters.delete(inst)
    for (const w of set ?? []) w()
  }

  forget(name: string) {
    clearTimeout(this.timers.get(name))
    this.timers.delete(name)
  }

  stopTimers() {
    for (const t of this.timers.values()) clearTimeout(t)
    this.timers.clear()
  }

  remember(inst: Instance, desired: 'running' | 'stopped') {
    if (inst.disposed) return
    try {
      this.store.setDesired(inst.name, desired)
    } catch (e) {
      inst.log.note(`could not record that it should be ${desired}: ${(e as Error).message}`)
    }
  }
}
