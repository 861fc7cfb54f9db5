/**
 * All instances: the registry and persistence, and the API's operations on them. Decisions are
 * the scheduler's (src/scheduler/decide.ts), applied by the Executor (executor.ts).
 * HTTP handlers call this. Errors are AppError kinds, never strings.
 */
import { join } from 'node:path'
import type { Config } from '../config/load'
import { Conflict, NotFound, StartFailed } from '../errors'
import { ModelChecks, withWarnings } from '../models/memory'
import { Metrics } from '../metrics/llamactl'
import { RemoteInstances } from '../nodes/remote-instances'
import { decide } from '../scheduler/decide'
import type { Store } from '../store/db'
import { watchLiveness } from '../supervisor/liveness'
import { Executor } from './executor'
import { makeHost } from './host'
import { Names, refuseNew } from './names'
import { Instance, newSlot, type InstanceHost, type InstanceView } from './instance'
import { acquire, throwIfRefused, type Lease, type Use } from './lease'
import { checkName, withDefaults, type InstanceOptionsInput } from './options'
import { readBack, removeFiles } from './resume'
import { settle, type Wait } from './lifecycle'

export class InstanceManager {
  private instances = new Map<string, Instance>()
  readonly metrics: Metrics = new Metrics(() => this.list())
  private host: InstanceHost
  private listeners = new Set<(i: Instance) => void>()
  private exec: Executor
  /** Which instance a model name reaches (names and aliases), unique across nodes. */
  readonly names = new Names(this.instances, (name, aliases, creating) => this.remote.refuseTaken(name, aliases, creating))
  /** Instances on remote nodes (src/nodes/): names are unique across both. */
  readonly remote: RemoteInstances
  /** The GGUF library and the memory check of creates and updates. */
  readonly models: ModelChecks

  constructor(readonly config: Config, private store: Store) {
    this.remote = new RemoteInstances(config, store, this.metrics, this)
    this.exec = new Executor(config, store, this.metrics, this.instances)
    this.models = new ModelChecks(config)
    this.host = makeHost(config, store, this.metrics, (inst) => {
      for (const l of this.listeners) l(inst)
      this.exec.statusChanged(inst)
    })
    // Running backends are probed; one that stops answering is restarted as crashed.
    watchLiveness(this)
  }

  /** Ends orphans, loads the stored instances and starts again those that were running (in the background). */
  async init(): Promise<{ orphansEnded: number; resumed: string[] }> {
    const { orphansEnded, stored } = await readBack(this.config, this.store)
    for (const s of stored) this.add(s.id, s.name, s.input, s.created)
    this.remote.init()
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

  /** Registers an instance: its name and aliases route to it from now on. */
  private add(id: number, name: string, input: InstanceOptionsInput, created: number) {
    const inst = new Instance(id, name, input, withDefaults(input, this.config), created, this.host, join(this.config.instances.logs_dir, `${name}.log`))
    this.instances.set(name, inst)
    this.names.take(name, inst.options.aliases)
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
  readonly index = { nameOf: (id: number) => [...this.list(), ...this.remote.list()].find((i) => i.id === id)?.name, exists: (name: string) => this.instances.has(name) || this.remote.has(name) }

  /**
   * Validates, stores and starts a new instance; the instance exists even if the start fails.
   * Create means create and start: when there is no room for it to start, nothing is made.
   */
  async create(name: string, raw: unknown, wait: Wait = 'bounded'): Promise<InstanceView & { warnings?: string[] }> {
    checkName(name)
    const { input, options, warnings } = await this.models.prepare(raw)
    refuseNew(this.instances, name, this.config.instances.max_instances)
    this.names.check(name, options.aliases ?? [], true)
    const effects = decide(this.exec.world(newSlot(name, options)), { type: 'start', name })
    throwIfRefused(effects)
    const created = Math.floor(Date.now() / 1000)
    const id = this.store.insertInstance({ name, options: JSON.stringify(input), created, desired: 'running' })
    this.add(id, name, input, created)
    await settle(this.config, this.exec.apply(effects) ?? Promise.resolve(), wait)
    return withWarnings(this.get(name).view(), warnings)
  }

  /** Replaces the options; a running instance restarts with them, a failed one starts with them. */
  async update(name: string, raw: unknown, wait: Wait = 'bounded'): Promise<InstanceView & { warnings?: string[] }> {
    const inst = this.get(checkName(name))
    const { input, options, warnings } = await this.models.prepare(raw)
    this.names.check(name, options.aliases ?? [], false)
    this.store.updateOptions(name, JSON.stringify(input))
    inst.input = input
    inst.gaveUp = false
    // The new aliases are taken now, not after the stop below, so no create can claim one meanwhile.
    inst.options = { ...inst.options, aliases: options.aliases }
    this.names.take(name, options.aliases)
    if (inst.active || inst.status === 'failed') await this.relaunch(inst, wait, () => (inst.options = options))
    else inst.options = options
    return withWarnings(inst.view(), warnings)
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
    this.exec.wake(inst) // requests waiting for it learn at once that it is gone
    this.exec.forget(name)
    await done
    this.instances.delete(name)
    this.names.drop(name)
    this.metrics.forgetInstance(name)
    removeFiles(this.config, name)
  }

  async start(name: string, wait: Wait = 'bounded'): Promise<InstanceView> {
    const inst = this.get(checkName(name))
    this.store.setDesired(name, 'running')
    await settle(this.config, this.startInstance(inst), wait)
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
    await this.relaunch(inst, wait)
    return inst.view()
  }

  /** Stops the backend and starts it again; `meanwhile`: what changes while it is down. */
  private async relaunch(inst: Instance, wait: Wait, meanwhile?: () => void) {
    await inst.life.stop()
    meanwhile?.()
    await settle(this.config, this.startInstance(inst), wait)
  }

  /** Starts an instance within the limits (the scheduler's admission), joining a start under way. */
  async startInstance(inst: Instance): Promise<void> {
    const effects = decide(this.exec.world(), { type: 'start', name: inst.name })
    throwIfRefused(effects)
    return this.exec.apply(effects) ?? inst.life.start()
  }

  /** A running instance for one /v1 request, started on demand if its options allow. */
  acquire(name: string, signal: AbortSignal, use: Use): Promise<Lease> {
    return acquire(this.exec, name, signal, use)
  }

  /** The instance proxy's lease: only a running instance, never started for it. */
  hold(name: string, use: Use): Lease {
    return this.exec.hold(this.get(name), use)
  }

  /** Stops every backend (llamactl is exiting); what the user asked for stays stored, so they resume. */
  async shutdown(): Promise<void> {
    this.remote.shutdown()
    this.exec.stopTimers()
    await Promise.all(this.list().map((i) => i.life.stop().catch(() => {})))
    for (const i of this.list()) i.log.close()
  }
}
