/**
 * All instances: the registry and persistence, and the executor of the scheduler's decisions
 * (src/scheduler/decide.ts): it asks, and applies the answer in the same synchronous step.
 * HTTP handlers call this. Errors are AppError kinds, never strings.
 */
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import type { Config } from '../config/load'
import { Conflict, StartFailed, Unavailable } from '../errors'
import { backendKey, backendResponseHeaders } from '../http/upstream'
import { Metrics } from '../metrics/llamactl'
import { decide, type Effect, type Event, type Slot } from '../scheduler/decide'
import type { Store } from '../store/db'
import { rotatedNames } from '../supervisor/log-sink'
import { makeHost } from './host'
import { Instance, type InstanceHost, type InstanceView } from './instance'
import { acquire, refusal, type Lease, type Use } from './lease'
import { checkAgainstConfig, checkName, parseOptions, withDefaults, type InstanceOptionsInput } from './options'
import { readBack } from './resume'

/** What a create, update, start or restart waits for before answering (see InstanceManager.settle). */
export type Wait = 'ready' | 'bounded'

export class InstanceManager {
  private instances = new Map<string, Instance>()
  readonly metrics: Metrics = new Metrics(() => this.list())
  private host: InstanceHost
  private listeners = new Set<(i: Instance) => void>()
  private waiters = new Map<Instance, Set<() => void>>()
  private timers = new Map<string, ReturnType<typeof setTimeout>>()

  constructor(readonly config: Config, private store: Store) {
    this.host = makeHost(config, store, this.metrics, (inst) => {
      for (const l of this.listeners) l(inst)
      this.wake(inst)
      if (inst.status === 'running') this.run({ type: 'ready', name: inst.name })
    })
  }

  /** Ends orphans, loads the stored instances and starts again those that were running (in the background). */
  async init(): Promise<{ orphansEnded: number; resumed: string[] }> {
    const { orphansEnded, stored } = await readBack(this.config, this.store)
    for (const s of stored) this.instances.set(s.name, this.make(s.id, s.name, s.input, s.created))
    const resumed = stored.filter((s) => s.running).map((s) => s.name)
    for (const name of resumed) {
      const inst = this.instances.get(name)!
      this.startInstance(inst).catch((e: Error) => {
        // A failed start is in the status and log already; a refusal (no room) is not.
        if (!(e instanceof StartFailed)) inst.log.note((inst.error = `not resumed at start-up: ${e.message}`))
      })
    }
    return { orphansEnded, resumed }
  }

  private make(id: number, name: string, input: InstanceOptionsInput, created: number): Instance {
    return new Instance(id, name, input, withDefaults(input, this.config), created, this.host, join(this.config.instances.logs_dir, `${name}.log`))
  }

  onStatusChange(listener: (i: Instance) => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  list(): Instance[] {
    return [...this.instances.values()]
  }

  get(name: string): Instance {
    return this.instances.get(name) ?? this.throwFor({ do: 'refuse', status: 404, message: `instance ${JSON.stringify(name)} not found` })
  }

  find(name: string): Instance | undefined {
    return this.instances.get(name)
  }

  /** Names and numbers of the instances, for keys given by either. */
  readonly index = {
    nameOf: (id: number) => this.list().find((i) => i.id === id)?.name,
    exists: (name: string) => this.instances.has(name),
  }

  /**
   * Validates, stores and starts a new instance; the instance exists even if the start fails.
   * Create means create and start: when there is no room for it to start, nothing is made.
   */
  async create(name: string, body: unknown, wait: Wait = 'bounded'): Promise<InstanceView> {
    checkName(name)
    const input = parseOptions(body)
    const options = withDefaults(input, this.config)
    await checkAgainstConfig(options, this.config)
    const existing = this.instances.get(name)
    if (existing) throw new Conflict(`instance ${JSON.stringify(name)} ${existing.disposed ? 'is being deleted; try again when it is gone' : 'already exists'}`)
    const max = this.config.instances.max_instances
    if (max >= 0 && this.instances.size >= max) throw new Conflict(`max_instances (${max}) reached; delete an instance or raise the limit`)
    const slot: Slot = { name, status: 'stopped', group: options.group ?? null, inflight: 0, waiting: 0, lastUsed: 0, onDemand: options.on_demand_start, gaveUp: false, deleting: false, idleTimeout: options.idle_timeout, error: null }
    const effects = decide({ ...this.world(), instances: [...this.world().instances, slot] }, { type: 'start', name })
    const created = Math.floor(Date.now() / 1000)
    const refused = effects.find((e) => e.do === 'refuse')
    if (refused) throw refusal(refused)
    const id = this.store.insertInstance({ name, options: JSON.stringify(input), created, desired: 'running' })
    this.instances.set(name, this.make(id, name, input, created))
    await this.settle(this.apply(effects) ?? Promise.resolve(), wait)
    return this.get(name).view()
  }

  /**
   * How long an API call waits for a start: until it is ready (`wait=ready`), else until it is
   * ready, has failed or `instances.start_wait` has passed. Loading a model can take minutes,
   * which no HTTP client should have to hold a request open for; the answer then carries the
   * status of that moment and the start goes on. A start that fails within the bound is still
   * its error (500); one that fails later shows as `failed`.
   */
  private async settle(start: Promise<void>, wait: Wait): Promise<void> {
    start.catch(() => {}) // a later failure is in the status and the log
    if (wait === 'ready') return start
    let timer: ReturnType<typeof setTimeout> | undefined
    const bound = new Promise<void>((resolve) => (timer = setTimeout(resolve, this.config.instances.start_wait * 1000)))
    try {
      await Promise.race([start, bound])
    } finally {
      clearTimeout(timer)
    }
  }

  /** Replaces the options; a running instance restarts with them. */
  async update(name: string, body: unknown, wait: Wait = 'bounded'): Promise<InstanceView> {
    const inst = this.get(checkName(name))
    const input = parseOptions(body)
    await checkAgainstConfig(withDefaults(input, this.config), this.config)
    this.store.updateOptions(name, JSON.stringify(input))
    inst.input = input
    inst.gaveUp = false
    const wasActive = inst.active
    if (wasActive) await inst.life.stop()
    inst.options = withDefaults(input, this.config)
    if (wasActive) await this.settle(this.startInstance(inst), wait)
    return inst.view()
  }

  /**
   * Stops and deletes an instance. The name stays taken until the backend has stopped (a new
   * instance of the same name must not share its port, logs or pid record with the old).
   */
  async remove(name: string): Promise<void> {
    const inst = this.get(checkName(name))
    if (inst.disposed) throw new Conflict(`instance ${JSON.stringify(name)} is already being deleted`)
    this.store.deleteInstance(name)
    const done = inst.life.dispose()
    this.wake(inst) // requests waiting for it learn at once that it is gone
    clearTimeout(this.timers.get(name))
    this.timers.delete(name)
    await done
    this.instances.delete(name)
    this.metrics.forgetInstance(name)
    const file = join(this.config.instances.logs_dir, `${name}.log`)
    try {
      rmSync(file, { force: true })
      for (let i = 1; i <= this.config.instances.log_rotation_max_files; i++) for (const n of rotatedNames(file, i)) rmSync(n, { force: true })
    } catch (e) {
      console.error(`llamactl: instance ${name} is deleted, but not its log files: ${(e as Error).message}`)
    }
  }

  async start(name: string, wait: Wait = 'bounded'): Promise<InstanceView> {
    const inst = this.get(checkName(name))
    this.store.setDesired(name, 'running')
    await this.settle(this.startInstance(inst), wait)
    return inst.view()
  }

  async stop(name: string): Promise<InstanceView> {
    const inst = this.get(checkName(name))
    this.store.setDesired(name, 'stopped')
    await inst.life.stop()
    return inst.view()
  }

  async restart(name: string, wait: Wait = 'bounded'): Promise<InstanceView> {
    const inst = this.get(checkName(name))
    this.store.setDesired(name, 'running')
    await inst.life.stop()
    await this.settle(this.startInstance(inst), wait)
    return inst.view()
  }

  /** Starts an instance within the limits (the scheduler's admission), joining a start under way. */
  startInstance(inst: Instance): Promise<void> {
    const effects = decide(this.world(), { type: 'start', name: inst.name })
    const refused = effects.find((e) => e.do === 'refuse')
    if (refused) return Promise.reject(refusal(refused))
    return this.apply(effects) ?? inst.life.start()
  }

  /** A running instance for one /v1 request, started on demand if its options allow. */
  acquire(name: string, signal: AbortSignal, use: Use): Promise<Lease> {
    return acquire({ find: (n) => this.find(n), decide: (e) => this.run(e), lease: (i, u) => this.lease(i, u), changed: (i) => this.changed(i), onDemandTimeout: this.config.instances.on_demand_start_timeout, observeWait: (n, s) => this.metrics.onDemandWait.observe([n], s) }, name, signal, use)
  }

  /** The instance proxy's lease: only a running instance, never started for it. */
  hold(name: string, use: Use): Lease {
    const inst = this.get(name)
    const ask = this.run({ type: 'proxy', name })[0]
    if (ask?.do !== 'grant') return this.throwFor(ask)
    return this.lease(inst, use)
  }

  private lease(inst: Instance, use: Use): Lease {
    inst.inflight++
    if (use.activity) inst.lastUsed = inst.lastRequest = Date.now()
    let done = false
    const release = (status: number, headersAt: number, usage: Parameters<Lease['release']>[2]) => {
      if (done) return
      done = true
      inst.inflight--
      if (use.activity) inst.lastUsed = inst.lastRequest = Date.now()
      inst.life.requestEnded()
      this.run({ type: 'request-ended', name: inst.name })
      // A request that outlived its instance's deletion leaves no series behind.
      if (this.find(inst.name) === inst) setImmediate(() => this.metrics.request(inst.name, use.route, status, use.startedAt, headersAt, usage))
    }
    return { instance: inst, upstream: inst.upstream!, backendKey: backendKey(inst), headers: backendResponseHeaders(this.config, inst), release }
  }

  private world() {
    const c = this.config.instances
    return { now: Date.now(), instances: this.list().map((i) => i.slot()), limits: { maxRunning: c.max_running_instances, lruEviction: c.enable_lru_eviction, groupLimits: c.group_limits } }
  }

  /** Decides on the state of this moment and applies the effects that act on instances; answers all of them. */
  private run(event: Event): Effect[] {
    const effects = decide(this.world(), event)
    this.apply(effects)
    return effects
  }

  /** Applies stops, spawns and timers; answers the spawn's start, if there is one. */
  private apply(effects: Effect[]): Promise<void> | null {
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
      } else if (e.do === 'arm' && !this.timers.has(e.name)) {
        const timer = setTimeout(() => {
          this.timers.delete(e.name)
          this.run({ type: 'timer', name: e.name })
        }, e.ms)
        this.timers.set(e.name, timer)
      }
    }
    return started
  }

  private throwFor(e: Effect | undefined): never {
    throw refusal(e)
  }

  private changed(inst: Instance): Promise<void> {
    return new Promise((resolve) => {
      let set = this.waiters.get(inst)
      if (!set) this.waiters.set(inst, (set = new Set()))
      set.add(resolve)
    })
  }

  private wake(inst: Instance) {
    const set = this.waiters.get(inst)
    this.waiters.delete(inst)
    for (const w of set ?? []) w()
  }

  private remember(inst: Instance, desired: 'running' | 'stopped') {
    if (inst.disposed) return
    try {
      this.store.setDesired(inst.name, desired)
    } catch (e) {
      inst.log.note(`could not record that it should be ${desired}: ${(e as Error).message}`)
    }
  }

  /** Stops every backend (llamactl is exiting); what the user asked for stays stored, so they resume. */
  async shutdown(): Promise<void> {
    for (const t of this.timers.values()) clearTimeout(t)
    await Promise.all(this.list().map((i) => i.life.stop().catch(() => {})))
    for (const i of this.list()) i.log.close()
  }
}
