/**
 * Carries out starts and stops of one instance, one at a time (a small queue), except that a
 * stop cancels a start that is still loading rather than waiting for it. After a crash it
 * applies the restart policy's decision (src/scheduler/restart-policy.ts). Which instance
 * starts or stops, and when, is decided in src/scheduler/.
 */
import type { Config } from '../config/load'
import { StartFailed } from '../errors'
import { afterExit } from '../scheduler/decide'
import type { BackendProcess } from '../supervisor/backend-process'
import type { Instance } from './instance'
import { learnSlots, spawnBackend } from './spawn'

export class Lifecycle {
  private queue: Promise<unknown> = Promise.resolve()
  private starting: { promise: Promise<void>; abort: AbortController } | null = null
  private restartTimer: ReturnType<typeof setTimeout> | null = null
  private drained: (() => void) | null = null

  constructor(private inst: Instance) {}

  private serial<T>(op: () => Promise<T>): Promise<T> {
    const run = this.queue.then(op, op)
    this.queue = run.catch(() => {})
    return run
  }

  /**
   * Starts the backend and resolves once it is ready; joins a start already under way. Marks
   * the instance starting at once (so the scheduler counts it), then runs after `after` (an
   * evicted instance's stop) and any operation queued. Rejects with StartFailed.
   */
  start(after?: Promise<unknown>, automatic = false): Promise<void> {
    const inst = this.inst
    if (inst.disposed) return Promise.reject(new StartFailed(`instance ${inst.name} has been deleted`))
    if (this.starting) return this.starting.promise
    if (!automatic) {
      if (inst.status === 'running') return Promise.resolve()
      this.cancelRestartTimer()
      inst.restarts = 0
      inst.gaveUp = false
    }
    const abort = new AbortController()
    inst.error = null
    inst.setStatus('starting')
    const promise = this.serial(() => this.launch(abort.signal, automatic, after)).finally(() => {
      if (this.starting?.abort === abort) this.starting = null
    })
    this.starting = { promise, abort }
    return promise
  }

  private async launch(signal: AbortSignal, automatic: boolean, after?: Promise<unknown>): Promise<void> {
    const inst = this.inst
    const cfg = inst.host.config.instances
    if (after) await after.catch(() => {})
    if (signal.aborted) throw new StartFailed(`start of ${inst.name} was cancelled`)
    if (inst.proc?.running) return // already up (a queued duplicate)
    inst.setStatus('starting')
    let spawned
    try {
      spawned = await spawnBackend(inst)
    } catch (e) {
      // No port, or no command line, is a failed start (500, the instance kept as failed).
      this.failed((e as Error).message, automatic)
      throw new StartFailed(`instance ${inst.name} failed to start: ${(e as Error).message}`)
    }
    const { proc, healthUrl } = spawned
    inst.proc = proc
    inst.host.recordProcess(inst, proc)
    proc.exited.then((info) => this.onExit(proc, info.requested, info.code, info.signal))
    // Recorded: a llamactl killed from now on leaves a pid its next start will end.
    proc.open()
    try {
      await proc.waitReady(healthUrl, cfg.startup_timeout * 1000, signal)
    } catch (e) {
      const reason = (e as Error).message
      await proc.stop(cfg.stop_grace_period * 1000)
      if (signal.aborted) throw new StartFailed(`start of ${inst.name} was cancelled`)
      const exit = await proc.exited
      const how = exit.signal ? `signal ${exit.signal}` : `exit code ${exit.code}`
      const cause = inst.causeLine()
      const detail = (reason === 'exited while loading' ? `exited while loading (${how})` : reason) + (cause ? `: ${cause}` : '')
      inst.log.note(`start failed: ${detail}`)
      this.failed(detail, automatic)
      throw new StartFailed(`instance ${inst.name} failed to start: ${detail}${inst.lastLines()}`)
    }
    inst.readyAt = inst.lastUsed = Date.now()
    void learnSlots(inst, proc)
    inst.log.note(`ready on port ${inst.port}`)
    inst.host.event(inst, 'start')
    inst.setStatus('running')
  }

  /**
   * Stops the backend (cancelling a start under way): requests in flight may finish first, for
   * up to drain_timeout. The status is "stopping" from the moment this is called, so new
   * requests wait for the next start instead of joining a backend about to go. Resolves when
   * the backend has exited.
   */
  stop(reason = 'stopping'): Promise<void> {
    const inst = this.inst
    const cfg = inst.host.config.instances
    this.cancelRestartTimer()
    this.starting?.abort.abort()
    if (inst.status === 'restarting') inst.setStatus('stopped')
    if (inst.status === 'running') inst.setStatus('stopping')
    return this.serial(async () => {
      const proc = inst.proc
      if (!proc?.running) {
        if (inst.status !== 'failed') inst.setStatus('stopped')
        return
      }
      inst.setStatus('stopping')
      inst.log.note(reason)
      if (inst.inflight > 0) {
        inst.log.note(`waiting up to ${cfg.drain_timeout} s for ${inst.inflight} request(s) in flight`)
        await Promise.race([new Promise<void>((r) => (this.drained = r)), Bun.sleep(cfg.drain_timeout * 1000)])
        this.drained = null
      }
      await proc.stop(cfg.stop_grace_period * 1000)
      inst.setStatus('stopped')
    })
  }

  /** A forwarded request ended: a drain waiting for the last one may go on. */
  requestEnded() {
    if (this.inst.inflight === 0) this.drained?.()
  }

  /** Why llamactl killed the running backend as crashed (see kill), for its exit's message. */
  private killedFor: string | null = null

  /**
   * The running backend no longer answers: it is killed and its exit handled as a crash (the
   * restart policy applies), with `reason` in the log and the error.
   */
  kill(reason: string) {
    const inst = this.inst
    if (inst.status !== 'running' || !inst.proc?.running) return
    this.killedFor = reason
    inst.log.note(`${reason}: killing it`)
    inst.proc.kill()
  }

  private onExit(proc: BackendProcess, requested: boolean, code: number | null, signal: string | null) {
    const inst = this.inst
    inst.host.forgetProcess(inst, proc)
    if (inst.proc !== proc) return
    inst.proc = null
    inst.slots = null
    inst.releasePort()
    const signalled = signal ? `signal ${signal}` : `exit code ${code}`
    inst.log.note(`exited (${signalled})`)
    const how = this.killedFor ? `${this.killedFor}; killed` : signalled
    this.killedFor = null
    // Exits during a start are reported by the start itself; requested ones by stop().
    if (requested || inst.status !== 'running') return
    inst.host.event(inst, 'crash')
    this.afterCrash(how, inst.readyAt ? Date.now() - inst.readyAt : 0)
  }

  /** Applies the restart policy's decision after an unexpected exit, or after a restart that failed to load. */
  private afterCrash(how: string, healthyForMs: number) {
    const inst = this.inst
    const decision = afterExit({ how, restarts: inst.restarts, healthyForMs, policy: inst.options })
    if (decision.do === 'give-up') {
      inst.log.note(decision.reason)
      inst.gaveUp = true
      inst.fail(decision.error)
      return
    }
    inst.restarts = decision.attempt
    inst.host.event(inst, 'restart')
    inst.error = decision.error
    inst.log.note(inst.error)
    inst.setStatus('restarting')
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null
      // A failure is in the status already (see failed); a cancelled one needs nothing more.
      this.start(undefined, true).catch(() => {})
    }, decision.delayMs)
  }

  /**
   * A start failed. One the restart policy made is tried again by the policy in the same step,
   * so nobody ever sees it failed while another try is due (a waiting request would start it
   * at once and skip the backoff).
   */
  private failed(reason: string, automatic: boolean) {
    if (automatic) this.afterCrash(reason, 0)
    else this.inst.fail(reason)
  }

  private cancelRestartTimer() {
    if (this.restartTimer) clearTimeout(this.restartTimer)
    this.restartTimer = null
  }

  /** Stops and releases everything; the instance is done after this. */
  async dispose() {
    this.inst.disposed = true
    await this.stop()
    this.inst.log.close()
  }
}

/** What a create, update, start or restart waits for before answering (see settle). */
export type Wait = 'ready' | 'bounded'

/**
 * How long an API call waits for a start: until it is ready (`wait=ready`), else until it is
 * ready, has failed or `instances.start_wait` has passed. Loading a model can take minutes,
 * which no HTTP client should have to hold a request open for; the answer then carries the
 * status of that moment and the start goes on. A start that fails within the bound is still
 * its error (500); one that fails later shows as `failed`.
 */
export async function settle(config: Config, start: Promise<void>, wait: Wait): Promise<void> {
  start.catch(() => {}) // a later failure is in the status and the log
  if (wait === 'ready') return start
  let timer: ReturnType<typeof setTimeout> | undefined
  const bound = new Promise<void>((resolve) => (timer = setTimeout(resolve, config.instances.start_wait * 1000)))
  try {
    await Promise.race([start, bound])
  } finally {
    clearTimeout(timer)
  }
}
