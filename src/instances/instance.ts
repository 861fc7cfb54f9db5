/**
 * One instance: its options, its status, the counts the scheduler decides on, and the backend
 * process behind it. It decides nothing: src/scheduler/ does, and its Lifecycle carries out
 * starts and stops.
 */
import type { Config } from '../config/load'
import type { BackendProcess } from '../supervisor/backend-process'
import { LogSink } from '../supervisor/log-sink'
import type { Slot } from '../scheduler/decide'
import { Lifecycle } from './lifecycle'
import { connectHost } from './spawn'
import { apiStatus, concurrencyOf, QUEUE_DEFAULTS, type InstanceOptions, type InstanceOptionsInput, type InstanceView, type STATUSES } from './options'

export type Status = (typeof STATUSES)[number]
export type { InstanceView }

/** What an instance needs from the rest of llamactl; the manager provides it. */
export interface InstanceHost {
  config: Config
  acquirePort(instance: Instance): number
  releasePort(port: number): void
  recordProcess(instance: Instance, proc: BackendProcess): void
  forgetProcess(instance: Instance, proc: BackendProcess): void
  /** Called whenever status changes (the page, metrics, the scheduler's waiters). */
  statusChanged(instance: Instance): void
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
  /** Requests in its queue (the executor keeps the queue). */
  queued = 0
  /** Unix ms the longest-waiting request in its queue came; null: none queued. */
  queuedSince: number | null = null
  /** It failed because the restart policy gave up (max_restarts, or auto_restart off): on-demand requests do not revive it. */
  gaveUp = false
  /** Set once the instance is being deleted: it never starts again. */
  disposed = false
  /** How many requests the running backend decodes at once, as it said (null: it has not). */
  slots: number | null = null
  /** Unix ms it last became ready. */
  readyAt = 0
  proc: BackendProcess | null = null
  readonly log: LogSink
  readonly life: Lifecycle

  constructor(
    /** Stable, never reused (the original's keys and web UI refer to instances by it). */
    readonly id: number,
    readonly name: string,
    public input: InstanceOptionsInput,
    public options: InstanceOptions,
    readonly created: number,
    readonly host: InstanceHost,
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
    this.life = new Lifecycle(this)
  }

  get busy(): number {
    return this.inflight + this.waiting + this.queued
  }

  /** What the scheduler knows of it. */
  slot(): Slot {
    return {
      name: this.name,
      status: this.status,
      group: this.options.group ?? null,
      inflight: this.inflight,
      waiting: this.waiting,
      queued: this.queued,
      maxConcurrent: concurrencyOf(this.options, this.slots),
      maxQueued: this.options.max_queued_requests ?? QUEUE_DEFAULTS.max_queued_requests,
      lastUsed: this.lastUsed,
      onDemand: this.options.on_demand_start,
      gaveUp: this.gaveUp,
      deleting: this.disposed,
      idleTimeout: this.options.idle_timeout,
      error: this.error,
    }
  }

  view(): InstanceView {
    return {
      id: this.id,
      name: this.name,
      status: apiStatus(this.status),
      state: this.status,
      node: this.host.config.local_node,
      created: this.created,
      options: this.options,
      port: this.port,
      restarts: this.restarts,
      error: this.error,
      pid: this.proc?.running ? this.proc.pid : null,
      uptime: this.status === 'running' ? Math.round((Date.now() - this.readyAt) / 100) / 10 : null,
      last_request: this.lastRequest ? Math.floor(this.lastRequest / 1000) : null,
      requests: { in_flight: this.inflight, queued: this.queued, max_concurrent: concurrencyOf(this.options, this.slots) },
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

  setStatus(status: Status) {
    if (this.status === status) return
    this.status = status
    this.host.statusChanged(this)
  }

  fail(reason: string) {
    this.error = reason
    this.setStatus('failed')
  }

  releasePort() {
    if (this.port !== null) this.host.releasePort(this.port)
    if (this.port !== null) this.lastPort = this.port
    this.port = null
  }

  /** The port its last backend had: its next start takes it again while it is free. */
  lastPort: number | null = null

  /** The backend stopped answering: killed, and its exit handled as a crash (see Lifecycle.kill). */
  kill(reason: string) {
    this.life.kill(reason)
  }

  /** The last lines the backend wrote, for a start failure's message. */
  /**
   * The line of this start's output that says why it failed (llama-server's "failed to open
   * GGUF file …"): the first that reads as an error, which the last lines often leave out.
   */
  causeLine(): string | null {
    const lines = this.log.tail(400)
    let from = 0
    for (let i = lines.length - 1; i >= 0; i--) {
      if (/^\[llamactl\] \S+ starting: /.test(lines[i]!)) {
        from = i + 1
        break
      }
    }
    return lines.slice(from).find((l) => !l.startsWith('[llamactl]') && CAUSE.test(l))?.trim() ?? null
  }

  lastLines(): string {
    const lines = this.log.tail(8).filter((l) => !l.startsWith('[llamactl]'))
    return lines.length ? `; last log lines:\n${lines.join('\n')}` : ''
  }
}

/** A backend's line that reports an error (llama-server's, vLLM's, mlx_lm's). */
const CAUSE = /\b(error|failed|failure|cannot|can't|unable to|no such file|not found|invalid|exception|fatal|abort(ed)?|out of memory)\b/i

/** What the scheduler knows of an instance about to be made (a create asks before it stores). */
export function newSlot(name: string, options: InstanceOptions): Slot {
  return { name, status: 'stopped', group: options.group ?? null, inflight: 0, waiting: 0, lastUsed: 0, onDemand: options.on_demand_start, gaveUp: false, deleting: false, idleTimeout: options.idle_timeout, error: null }
}
