/**
 * All instances: the registry, persistence, capacity limits and ports. HTTP handlers call
 * this; it calls the store and each Instance. Errors are AppError kinds, never strings.
 */
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import type { Config } from '../config/load'
import { BACKEND_TYPES, backendFor } from '../backends'
import { BadRequest, Conflict, NotFound, StartFailed, Unavailable } from '../errors'
import { Metrics } from '../metrics/llamactl'
import { chooseEviction } from '../scheduler/eviction'
import type { Store } from '../store/db'
import { endOrphan } from '../supervisor/os-process'
import { rotatedNames } from '../supervisor/log-sink'
import { PortPool } from '../supervisor/ports'
import { watchLiveness } from '../supervisor/liveness'
import { Instance, type InstanceHost, type InstanceView } from './instance'
import { checkAgainstConfig, checkName, parseOptions, withDefaults, type InstanceOptionsInput } from './options'

/** What a create, update, start or restart waits for before answering (see InstanceManager.settle). */
export type Wait = 'ready' | 'bounded'

export class InstanceManager {
  private instances = new Map<string, Instance>()
  readonly metrics: Metrics = new Metrics(() => this.list())
  private ports: PortPool
  private host: InstanceHost
  private listeners = new Set<(i: Instance) => void>()

  constructor(
    readonly config: Config,
    private store: Store,
  ) {
    this.ports = new PortPool(config.instances.port_range)
    this.host = {
      config,
      acquirePort: (inst) => {
        const wanted = inst.options.backend_options.port
        if (typeof wanted === 'number' && wanted > 0) {
          this.ports.claim(wanted, inst.name)
          return wanted
        }
        return this.ports.acquire()
      },
      releasePort: (port) => this.ports.release(port),
      // The backend runs even when its pid cannot be recorded (a full disk must not stop
      // inference); the log says what that risks.
      recordProcess: (inst, proc) => {
        try {
          this.store.recordBackendProcess({ instance: inst.name, pid: proc.pid, start_time: proc.startTime })
        } catch (e) {
          inst.log.note(`${(e as Error).message}: pid ${proc.pid} is not recorded, so if llamactl is killed its next start will not end this backend`)
        }
      },
      forgetProcess: (inst, proc) => {
        try {
          this.store.forgetBackendProcess(inst.name, proc.pid)
        } catch {
          // A stale record is harmless: the next start sees the process is gone (or another).
        }
      },
      statusChanged: (inst) => {
        for (const l of this.listeners) l(inst)
      },
      idle: (inst) => {
        this.metrics.event(inst.name, 'idle_stop')
        this.remember(inst, 'stopped')
        inst.stop(`idle for ${inst.options.idle_timeout} min: stopping`).catch(() => {})
      },
      event: (inst, event) => this.metrics.event(inst.name, event),
    }
    // Running backends are probed; one that stops answering is restarted as crashed.
    watchLiveness(this)
  }

  /**
   * Ends backends a killed llamactl left behind, loads the stored instances and starts again
   * those that were running. Returns once orphans are gone; starts continue in the background.
   */
  async init(): Promise<{ orphansEnded: number; resumed: string[] }> {
    // What each configured backend binary understands, read once before anything is started.
    await Promise.all(BACKEND_TYPES.map((t) => {
      const b = backendFor(t)
      const bc = this.config.backends[b.configKey]
      return bc.docker.enabled ? Promise.resolve() : b.learnFlags(bc.command, bc.args)
    }))
    let orphansEnded = 0
    const grace = this.config.instances.stop_grace_period * 1000
    await Promise.all(
      this.store.backendProcesses().map(async (rec) => {
        if (await endOrphan(rec.pid, rec.start_time, grace)) orphansEnded++
        try {
          this.store.forgetBackendProcess(rec.instance, rec.pid)
        } catch {
          // ended all the same; the stale record is harmless
        }
      }),
    )
    const resumed: string[] = []
    for (const row of this.store.listInstances()) {
      let input: InstanceOptionsInput
      try {
        input = parseOptions(JSON.parse(row.options))
      } catch (e) {
        console.error(`llamactl: stored instance ${row.name} has options this version cannot read (${(e as Error).message}); it is left out`)
        continue
      }
      const inst = this.make(row.id, row.name, input, row.created)
      if (row.desired === 'running') resumed.push(row.name)
      this.instances.set(row.name, inst)
    }
    for (const name of resumed) {
      const inst = this.instances.get(name)!
      this.startInstance(inst).catch((e: Error) => {
        // A failed start is in the status and log already; a refusal (no room) is not.
        if (!(e instanceof StartFailed)) {
          inst.error = `not resumed at start-up: ${e.message}`
          inst.log.note(inst.error)
        }
      })
    }
    return { orphansEnded, resumed }
  }

  private make(id: number, name: string, input: InstanceOptionsInput, created: number): Instance {
    const logFile = join(this.config.instances.logs_dir, `${name}.log`)
    return new Instance(id, name, input, withDefaults(input, this.config), created, this.host, logFile)
  }

  onStatusChange(listener: (i: Instance) => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  list(): Instance[] {
    return [...this.instances.values()]
  }

  get(name: string): Instance {
    const inst = this.instances.get(name)
    if (!inst) throw new NotFound(`instance ${JSON.stringify(name)} not found`)
    return inst
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
   * Validates, stores and starts a new instance. The instance exists even if the start fails.
   * Answers once it is ready or after `instances.start_wait`, whichever is first (see settle).
   */
  async create(name: string, body: unknown, wait: Wait = 'bounded'): Promise<InstanceView> {
    checkName(name)
    const input = parseOptions(body)
    await checkAgainstConfig(withDefaults(input, this.config), this.config)
    const existing = this.instances.get(name)
    if (existing) {
      throw new Conflict(`instance ${JSON.stringify(name)} ${existing.disposed ? 'is being deleted; try again when it is gone' : 'already exists'}`)
    }
    const max = this.config.instances.max_instances
    if (max >= 0 && this.instances.size >= max) {
      throw new Conflict(`max_instances (${max}) reached; delete an instance or raise the limit`)
    }
    // Create means create and start: when it could not start for lack of room, nothing is made.
    const room = this.roomFor(name)
    if ('refused' in room) throw room.refused
    const created = Math.floor(Date.now() / 1000)
    const id = this.store.insertInstance({ name, options: JSON.stringify(input), created, desired: 'running' })
    const inst = this.make(id, name, input, created)
    this.instances.set(name, inst)
    await this.settle(this.startInstance(inst), wait)
    return inst.view()
  }

  /**
   * How long an API call waits for a start: until it is ready (`wait=ready`), else until it is
   * ready, has failed or `instances.start_wait` has passed, whichever is first. Loading a model
   * can take minutes, which no HTTP client should have to hold a request open for; the answer
   * then carries the status of that moment and the start goes on. A start that fails within
   * the bound is still its error (500); one that fails later shows as `failed`.
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
    if (wasActive) await inst.stop()
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
    await inst.dispose()
    this.instances.delete(name)
    this.metrics.forgetInstance(name)
    const file = join(this.config.instances.logs_dir, `${name}.log`)
    try {
      rmSync(file, { force: true })
      for (let i = 1; i <= this.config.instances.log_rotation_max_files; i++) for (const name of rotatedNames(file, i)) rmSync(name, { force: true })
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
    await inst.stop()
    return inst.view()
  }

  async restart(name: string, wait: Wait = 'bounded'): Promise<InstanceView> {
    const inst = this.get(checkName(name))
    this.store.setDesired(name, 'running')
    await inst.stop()
    await this.settle(this.startInstance(inst), wait)
    return inst.view()
  }

  /**
   * Starts an instance within max_running_instances. The capacity check, the choice of an
   * instance to evict and the marks on both happen in one synchronous step, so concurrent
   * starts can never exceed the limit; the new backend launches only after the evicted one
   * has stopped.
   */
  startInstance(inst: Instance): Promise<void> {
    if (inst.status === 'starting' || inst.status === 'running' || inst.status === 'restarting') return inst.start()
    const room = this.roomFor(inst.name)
    if ('refused' in room) return Promise.reject(room.refused)
    if (!room.evict) return inst.start()
    const victim = room.evict
    this.metrics.event(victim.name, 'eviction')
    this.remember(victim, 'stopped')
    const max = this.config.instances.max_running_instances
    const stopped = victim.stop(`stopping to make room for ${inst.name} (least recently used, max_running_instances ${max})`)
    return inst.start(stopped)
  }

  /**
   * What a restart of llamactl brings back: instances stopped for being idle or evicted stay
   * stopped (they start on demand); those started on demand come back like any other.
   */
  private remember(inst: Instance, desired: 'running' | 'stopped') {
    if (inst.disposed) return
    try {
      this.store.setDesired(inst.name, desired)
    } catch (e) {
      inst.log.note(`could not record that it should be ${desired}: ${(e as Error).message}`)
    }
  }

  /** Whether one more instance may start now: yes, yes after evicting one, or the refusal. */
  private roomFor(name: string): { evict: Instance | null } | { refused: Conflict } {
    const max = this.config.instances.max_running_instances
    if (max < 0) return { evict: null }
    const others = this.list().filter((i) => i.name !== name && i.active)
    if (others.length < max) return { evict: null }
    const victimName = this.config.instances.enable_lru_eviction
      ? chooseEviction(
          others.map((i) => ({ name: i.name, status: i.status, busy: i.busy, lastUsed: i.lastUsed })),
          name,
        )
      : null
    if (!victimName) {
      const why = this.config.instances.enable_lru_eviction ? 'and every running instance is busy' : 'and enable_lru_eviction is off'
      return { refused: new Conflict(`max_running_instances (${max}) reached ${why}; stop an instance first or raise the limit`) }
    }
    return { evict: this.instances.get(victimName)! }
  }

  /**
   * A running instance for one request, started on demand if its options allow; the caller
   * must call release() when the request is done. Waiting is bounded by on_demand_start_timeout
   * and by the client's own signal.
   */
  async acquire(name: string, signal: AbortSignal): Promise<{ instance: Instance; upstream: string }> {
    const inst = this.find(name)
    // The seed and the original both answer an unknown model 400: the request named nothing there is.
    if (!inst) throw new BadRequest(`model ${JSON.stringify(name)} not found: no instance has that name (GET /v1/models lists them)`)
    if (inst.status === 'running' && inst.upstream) {
      inst.beginRequest()
      return { instance: inst, upstream: inst.upstream }
    }
    if (!inst.options.on_demand_start) {
      throw new Unavailable(`instance ${JSON.stringify(name)} is not running and on_demand_start is off; start it first`)
    }
    // A crash loop that ended failed stays failed until someone starts it: requests do not revive it.
    const checkGaveUp = () => {
      if (inst.status === 'failed' && inst.gaveUp) {
        throw new Unavailable(`instance ${JSON.stringify(name)} is failed: ${inst.error}; start it again with POST /api/v1/instances/${name}/start`)
      }
    }
    checkGaveUp()
    const timeoutS = this.config.instances.on_demand_start_timeout
    let timer: ReturnType<typeof setTimeout> | undefined
    const giveUp = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Unavailable(`instance ${JSON.stringify(name)} did not become ready within on_demand_start_timeout (${timeoutS} s)`)),
        timeoutS * 1000,
      )
      const left = () => reject(new Unavailable('the client went away'))
      if (signal.aborted) left()
      signal.addEventListener('abort', left, { once: true })
    })
    giveUp.catch(() => {})
    const waitStarted = performance.now()
    inst.waiting++
    try {
      // Loops only if the instance was stopped again between becoming ready and this request.
      for (let attempt = 0; !(inst.status === 'running' && inst.upstream); ) {
        if (inst.disposed) throw new NotFound(`model ${JSON.stringify(name)} not found: the instance was deleted`)
        if (inst.status === 'restarting') {
          // After a crash: wait for the automatic restart rather than start it now, so clients
          // neither skip its backoff nor reset its count (a crash loop still ends failed).
          await Promise.race([inst.restartSettled(), giveUp])
          checkGaveUp()
          continue
        }
        if (attempt++ === 3) throw new Unavailable(`instance ${JSON.stringify(name)} keeps stopping; try again`)
        try {
          await Promise.race([this.startInstance(inst), giveUp])
          this.remember(inst, 'running')
        } catch (e) {
          // A start cancelled because the instance was deleted: the model is gone, not unavailable.
          if (inst.disposed) throw new NotFound(`model ${JSON.stringify(name)} not found: the instance was deleted`)
          // Inference clients get the reason's first line; the backend's log lines are for management.
          if (e instanceof StartFailed) throw new Unavailable(`instance ${JSON.stringify(name)} could not be started: ${e.message.split('\n')[0]!.replace(/; last log lines:$/, '')}`)
          throw e
        }
      }
      if (inst.disposed) throw new NotFound(`model ${JSON.stringify(name)} not found: the instance was deleted`)
      inst.beginRequest()
      this.metrics.onDemandWait.observe([name], (performance.now() - waitStarted) / 1000)
      return { instance: inst, upstream: inst.upstream! }
    } finally {
      clearTimeout(timer)
      inst.waiting--
    }
  }

  /** Stops every backend (llamactl is exiting); what the user asked for stays stored, so they resume. */
  async shutdown(): Promise<void> {
    await Promise.all(this.list().map((i) => i.stop().catch(() => {})))
    for (const i of this.list()) i.log.close()
  }
}
