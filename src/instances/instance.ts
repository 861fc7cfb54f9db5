/**
 * One instance: its options, its status and the backend process behind it. Lifecycle
 * operations on one instance run one at a time (a small queue), except that a stop cancels a
 * start that is still loading rather than waiting for it.
 */
import type { Config } from '../config/load'
import { backendFor } from '../backends'
import { shownArgv } from '../backends/mask'
import { StartFailed } from '../errors'
import { idleAction } from '../scheduler/idle'
import { decideRestart } from '../scheduler/restart-policy'
import { BackendProcess } from '../supervisor/backend-process'
import { removeStaleContainer, stopContainer } from '../supervisor/container'
import { LogSink } from '../supervisor/log-sink'
import { launchPlan } from './launch'
import { apiStatus, type InstanceOptions, type InstanceOptionsInput, type InstanceView, type STATUSES } from './options'

export type Status = (typeof STATUSES)[number]
export type { InstanceView }

/** What an instance needs from the rest of llamactl; the manager provides it. */
export interface InstanceHost {
  config: Config
  acquirePort(instance: Instance): number
  releasePort(port: number): void
  recordProcess(instance: Instance, proc: BackendProcess): void
  forgetProcess(instance: Instance, proc: BackendProcess): void
  /** Called whenever status changes (the page, metrics). */
  statusChanged(instance: Instance): void
  /** The instance has been idle for its idle_timeout. */
  idle(instance: Instance): void
  /** Starts, restarts and crashes, for the metrics. */
  event(instance: Instance, event: 'start' | 'restart' | 'crash'): void
}

export class Instance {
  status: Status = 'stopped'
  port: number | null = null
  restarts = 0
  error: string | null = null
  /** Unix ms of the last request's end (or start, while one is in flight). */
  lastUsed = 0
  /** Unix ms of the last request's start or end (0: none yet); unlike lastUsed, a start does not set it. */
  lastRequest = 0
  /** Requests being forwarded to the backend now. */
  inflight = 0
  /** Requests waiting for this instance to start. */
  waiting = 0
  /** It failed because the restart policy gave up (max_restarts, or auto_restart off): on-demand requests do not revive it. */
  gaveUp = false
  readonly log: LogSink

  private proc: BackendProcess | null = null
  private readyAt = 0
  private queue: Promise<unknown> = Promise.resolve()
  private starting: { promise: Promise<void>; abort: AbortController } | null = null
  private restartTimer: ReturnType<typeof setTimeout> | null = null
  /** Settles once the automatic restart now pending has been tried, or was called off. */
  private restartTried: PromiseWithResolvers<void> | null = null
  private idleTimer: ReturnType<typeof setTimeout> | null = null
  private drained: (() => void) | null = null
  /** Why llamactl killed the running backend as crashed (see kill), for its exit's message. */
  private killedFor: string | null = null

  constructor(
    /** Stable, never reused (the original's keys and web UI refer to instances by it). */
    readonly id: number,
    readonly name: string,
    public input: InstanceOptionsInput,
    public options: InstanceOptions,
    readonly created: number,
    private host: InstanceHost,
    logFile: string | null,
  ) {
    const c = host.config.instances
    this.log = new LogSink({
      file: logFile,
      maxFileBytes: c.log_rotation_max_size * 1024 * 1024,
      maxFiles: c.log_rotation_max_files,
      rotate: c.log_rotation_enabled,
      compress: c.log_rotation_compress,
      tailLines: c.log_tail_lines,
    })
  }

  get busy(): number {
    return this.inflight + this.waiting
  }

  /** A request starts being forwarded. Health checks are not activity: they don't keep an instance from idling. */
  beginRequest(activity = true) {
    this.inflight++
    if (activity) this.lastUsed = this.lastRequest = Date.now()
  }

  /** A forwarded request has ended (completed, failed or abandoned by its client). */
  endRequest(activity = true) {
    this.inflight--
    if (activity) this.lastUsed = this.lastRequest = Date.now()
    if (this.inflight === 0) this.drained?.()
    this.armIdle()
  }

  /** Sets the idle timer if there is none; it re-checks the deadline when it fires. */
  armIdle() {
    if (this.idleTimer || this.busy > 0 || this.status !== 'running' || this.options.idle_timeout <= 0) return
    const decision = idleAction(Date.now(), this.lastUsed, this.options.idle_timeout, this.busy, true)
    if (decision.action === 'check-in') {
      this.idleTimer = setTimeout(() => {
        this.idleTimer = null
        const now = idleAction(Date.now(), this.lastUsed, this.options.idle_timeout, this.busy, this.status === 'running')
        if (now.action === 'stop') this.host.idle(this)
        else this.armIdle()
      }, decision.ms)
    } else if (decision.action === 'stop') {
      this.host.idle(this)
    }
  }

  private clearIdle() {
    if (this.idleTimer) clearTimeout(this.idleTimer)
    this.idleTimer = null
  }

  view(): InstanceView {
    return {
      id: this.id,
      name: this.name,
      status: apiStatus(this.status),
      state: this.status,
      created: this.created,
      options: this.options,
      port: this.port,
      restarts: this.restarts,
      error: this.error,
    }
  }

  /** Unix ms since the backend has been ready, while it is running; null otherwise. */
  get readySince(): number | null {
    return this.status === 'running' ? this.readyAt : null
  }

  /** Holds a process, or is about to: counts against max_running_instances. */
  get active(): boolean {
    return this.status === 'starting' || this.status === 'running' || this.status === 'restarting' || this.status === 'stopping'
  }

  /** The backend's address, while running. */
  get upstream(): string | null {
    if (this.status !== 'running' || this.port === null) return null
    return `http://${connectHost(this.options)}:${this.port}`
  }

  private setStatus(status: Status) {
    if (this.status === status) return
    this.status = status
    this.host.statusChanged(this)
  }

  private serial<T>(op: () => Promise<T>): Promise<T> {
    const run = this.queue.then(op, op)
    this.queue = run.catch(() => {})
    return run
  }

  /**
   * Starts the backend and resolves once it is ready. Joins a start already under way.
   * Rejects with StartFailed carrying the backend's last log lines.
   */
  start(after?: Promise<unknown>): Promise<void> {
    if (this.disposed) return Promise.reject(new StartFailed(`instance ${this.name} has been deleted`))
    if (this.starting) return this.starting.promise
    if (this.status === 'running') return Promise.resolve()
    this.cancelRestartTimer()
    this.restarts = 0
    this.gaveUp = false
    return this.beginStart(after)
  }

  /**
   * Marks the instance starting synchronously (so capacity checks see it), then runs the start,
   * after `after` settles (an evicted instance's stop) and after any operation already queued.
   */
  private beginStart(after?: Promise<unknown>): Promise<void> {
    if (this.disposed) return Promise.reject(new StartFailed(`instance ${this.name} has been deleted`))
    const abort = new AbortController()
    this.error = null
    this.setStatus('starting')
    const promise = this.serial(() => this.launch(abort.signal, after)).finally(() => {
      if (this.starting?.abort === abort) this.starting = null
    })
    this.starting = { promise, abort }
    return promise
  }

  private async launch(signal: AbortSignal, after?: Promise<unknown>): Promise<void> {
    if (after) await after.catch(() => {})
    if (signal.aborted) throw new StartFailed(`start of ${this.name} was cancelled`)
    if (this.proc?.running) return // already up (a queued duplicate)
    this.setStatus('starting')
    const backend = backendFor(this.options.backend_type)
    const bc = this.host.config.backends[backend.configKey]
    let port: number
    try {
      port = this.host.acquirePort(this)
    } catch (e) {
      // No port is a failed start (500, the instance kept as failed), like any other.
      this.fail((e as Error).message)
      throw new StartFailed(`instance ${this.name} failed to start: ${(e as Error).message}`)
    }
    this.port = port
    const healthUrl = `http://${connectHost(this.options)}:${port}${backend.healthPath}`
    let proc: BackendProcess
    try {
      if (!this.options.docker_enabled) await backend.learnFlags(this.options.command_override ?? bc.command, bc.args)
      const plan = launchPlan(this.name, this.options, bc, { host: bindHost(this.options), port }, process.env)
      const { argv, env, container } = plan
      let onStop: ((graceMs: number) => Promise<void>) | undefined
      if (container) {
        await removeStaleContainer(container, env)
        onStop = (graceMs) => stopContainer(container, graceMs, env, (line) => this.log.note(line))
      }
      this.log.note(`starting: ${shownArgv(argv, backend.table)}`)
      proc = BackendProcess.spawn({ argv, env, healthUrl, onStop }, this.log)
    } catch (e) {
      this.releasePort()
      const reason = (e as Error).message
      this.log.note(reason)
      this.fail(reason)
      throw new StartFailed(`instance ${this.name} failed to start: ${reason}`)
    }
    this.proc = proc
    this.host.recordProcess(this, proc)
    proc.exited.then((info) => this.onExit(proc, info.requested, info.code, info.signal))
    // Recorded: a llamactl killed from now on leaves a pid its next start will end.
    proc.open()
    try {
      await proc.waitReady(healthUrl, this.host.config.instances.startup_timeout * 1000, signal)
    } catch (e) {
      const reason = (e as Error).message
      await proc.stop(this.host.config.instances.stop_grace_period * 1000)
      if (signal.aborted) throw new StartFailed(`start of ${this.name} was cancelled`)
      const exit = await proc.exited
      const how = exit.signal ? `signal ${exit.signal}` : `exit code ${exit.code}`
      const detail = reason === 'exited while loading' ? `exited while loading (${how})` : reason
      this.log.note(`start failed: ${detail}`)
      this.fail(detail)
      throw new StartFailed(`instance ${this.name} failed to start: ${detail}${this.lastLines()}`)
    }
    this.readyAt = Date.now()
    this.lastUsed = Date.now()
    this.log.note(`ready on port ${port}`)
    this.host.event(this, 'start')
    this.setStatus('running')
    this.armIdle()
  }

  private lastLines(): string {
    const lines = this.log.tail(8).filter((l) => !l.startsWith('[llamactl]'))
    return lines.length ? `; last log lines:\n${lines.join('\n')}` : ''
  }

  private fail(reason: string) {
    this.error = reason
    this.setStatus('failed')
  }

  private releasePort() {
    if (this.port !== null) this.host.releasePort(this.port)
    this.port = null
  }

  /**
   * Stops the backend (cancelling a start under way): in-flight requests may finish first, for
   * up to drain_timeout. The status is "stopping" from the moment this is called, so new
   * requests wait for the next start instead of joining a backend about to go. Resolves when
   * the backend has exited.
   */
  stop(reason = 'stopping'): Promise<void> {
    this.cancelRestartTimer()
    this.clearIdle()
    this.starting?.abort.abort()
    if (this.status === 'restarting') this.setStatus('stopped')
    if (this.status === 'running') this.setStatus('stopping')
    return this.serial(async () => {
      const proc = this.proc
      if (!proc?.running) {
        if (this.status !== 'failed') this.setStatus('stopped')
        return
      }
      this.setStatus('stopping')
      this.log.note(reason)
      await this.drain(this.host.config.instances.drain_timeout * 1000)
      await proc.stop(this.host.config.instances.stop_grace_period * 1000)
      this.setStatus('stopped')
    })
  }

  /** Waits until no request is being forwarded, or the timeout. */
  private async drain(timeoutMs: number) {
    if (this.inflight === 0) return
    this.log.note(`waiting up to ${timeoutMs / 1000} s for ${this.inflight} request(s) in flight`)
    await Promise.race([new Promise<void>((r) => (this.drained = r)), Bun.sleep(timeoutMs)])
    this.drained = null
  }

  async restart(): Promise<void> {
    await this.stop()
    await this.start()
  }

  /**
   * The running backend no longer answers: it is killed and its exit handled as a crash (the
   * restart policy applies), with `reason` in the log and the error.
   */
  kill(reason: string) {
    if (this.status !== 'running' || !this.proc?.running) return
    this.killedFor = reason
    this.log.note(`${reason}: killing it`)
    this.proc.kill()
  }

  private onExit(proc: BackendProcess, requested: boolean, code: number | null, signal: string | null) {
    this.host.forgetProcess(this, proc)
    if (this.proc !== proc) return
    this.proc = null
    this.releasePort()
    const signalled = signal ? `signal ${signal}` : `exit code ${code}`
    this.log.note(`exited (${signalled})`)
    const how = this.killedFor ? `${this.killedFor}; killed` : signalled
    this.killedFor = null
    // Exits during a start are reported by the start itself; requested ones by stop().
    if (requested || this.status !== 'running') return
    this.host.event(this, 'crash')
    this.scheduleRestart(how, this.readyAt ? Date.now() - this.readyAt : 0)
  }

  /** Applies the restart policy after an unexpected exit, or after a restart that failed to load. */
  private scheduleRestart(how: string, healthyForMs: number) {
    const decision = decideRestart(this.options, this.restarts, healthyForMs)
    if (decision.action === 'fail') {
      this.log.note(decision.reason)
      this.gaveUp = true
      this.fail(`${decision.reason} (${how})`)
      return
    }
    this.restarts = decision.attempt
    this.host.event(this, 'restart')
    this.error = `exited unexpectedly (${how}); restart ${decision.attempt} in ${decision.delayMs / 1000} s`
    this.log.note(this.error)
    this.setStatus('restarting')
    const tried = Promise.withResolvers<void>()
    this.restartTried = tried
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null
      this.beginStart()
        .catch(() => {
          // Stopped or cancelled meanwhile: nothing more to do. Failed to load: try again per policy.
          if (this.status === 'failed') this.scheduleRestart(this.error ?? 'failed to start', 0)
        })
        .finally(() => {
          if (this.restartTried === tried) this.restartTried = null
          tried.resolve()
        })
    }, decision.delayMs)
  }

  /**
   * While `restarting`: settles once the pending automatic restart has been tried (the status
   * then says how it went: running, restarting again, or failed) or was called off.
   */
  restartSettled(): Promise<void> {
    // Never a resolved promise while restarting: a caller looping on the status must yield.
    return this.restartTried?.promise ?? Bun.sleep(10)
  }

  private cancelRestartTimer() {
    if (this.restartTimer) clearTimeout(this.restartTimer)
    this.restartTimer = null
    this.restartTried?.resolve()
    this.restartTried = null
  }

  /** Stops and releases everything; the instance object is done after this. */
  /** Set once the instance is being deleted: it never starts again. */
  disposed = false

  async dispose() {
    this.disposed = true
    await this.stop()
    this.log.close()
  }
}

/** Where the backend listens: its own `host` option, else loopback only. */
function bindHost(o: InstanceOptions): string {
  return typeof o.backend_options.host === 'string' ? o.backend_options.host : '127.0.0.1'
}

/** Where llamactl reaches it: loopback when it listens on every interface. */
function connectHost(o: InstanceOptions): string {
  const h = bindHost(o)
  if (h === '0.0.0.0' || h === '' || h === '::') return '127.0.0.1'
  return h.includes(':') ? `[${h}]` : h
}
