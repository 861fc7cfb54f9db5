/**
 * One running backend process: spawn (argv, never a shell, in its own process group), pump its
 * output into the instance's log, poll its health endpoint until ready, and stop it with
 * SIGTERM to the whole group, then SIGKILL after the grace period.
 *
 * A backend runs only once llamactl has recorded its pid: it is spawned behind a gate, a POSIX
 * sh that waits for one line on its stdin and then execs the backend's argv as it is (no shell
 * parsing: the arguments are sh's positional parameters; the pid and process start time stay
 * the same; stdin becomes /dev/null). If llamactl dies before opening the gate, the gate reads
 * end-of-file and exits, so a SIGKILL between spawn and record never leaves a backend running
 * that no later llamactl knows to end.
 */
import type { Subprocess } from 'bun'
import { existsSync } from 'node:fs'
import { resolve } from 'node:path'
import type { LogSink } from './log-sink'
import { processStartTime, signalGroup } from './os-process'

export interface SpawnSpec {
  argv: string[]
  env: Record<string, string>
  cwd?: string
  /** URL polled until it answers 200. */
  healthUrl: string
  /**
   * Runs whenever llamactl stops the process, alongside the signals (given the grace period):
   * what else must go with it, such as the Docker container a `docker run` client stands for.
   */
  onStop?: (graceMs: number) => Promise<void>
}

export interface ExitInfo {
  code: number | null
  signal: string | null
  /** True when llamactl asked for the stop. */
  requested: boolean
}

const GATE = ['/bin/sh', '-c', 'read -r _ || exit 125; exec "$@" </dev/null', 'llamactl-gate']

/**
 * How often readiness is polled: 1 ms after the spawn, doubling up to 25 ms; and at once
 * whenever the backend prints something (llama-server says when it has loaded and listens),
 * so a backend that says it is ready is seen without waiting for a tick.
 */
const FIRST_POLL_MS = 1
const POLL_MS = 25
const POLL_REQUEST_TIMEOUT_MS = 1000

export class BackendProcess {
  readonly pid: number
  readonly startTime: string
  readonly exited: Promise<ExitInfo>
  private proc: Subprocess<'pipe', 'pipe', 'pipe'>
  private stopRequested = false
  private done = false
  /** Chunks of output so far, and who wants to hear of the next (waitReady). */
  private printed = 0
  private onPrinted: (() => void) | null = null

  private constructor(
    proc: Subprocess<'pipe', 'pipe', 'pipe'>,
    private log: LogSink,
    private onStop?: (graceMs: number) => Promise<void>,
  ) {
    this.proc = proc
    this.pid = proc.pid
    this.startTime = processStartTime(proc.pid) ?? String(Date.now())
    // The log file is open while the process runs, closed once its output is flushed.
    log.hold()
    const pumps = [this.pump(proc.stdout, 'out'), this.pump(proc.stderr, 'err')]
    this.exited = proc.exited.then(async (code) => {
      // A grandchild may hold the pipes open; don't wait on it for long.
      await Promise.race([Promise.allSettled(pumps), Bun.sleep(500)])
      log.flush()
      log.release()
      this.done = true
      this.onPrinted?.() // a start waiting for it to be ready hears at once
      const signal = proc.signalCode === null ? null : String(proc.signalCode)
      return { code: signal ? null : code, signal, requested: this.stopRequested }
    })
  }

  /**
   * Spawns the process behind its gate; throws with a readable reason when the executable
   * cannot run. Call open() once its pid is recorded: until then it has not started.
   */
  static spawn(spec: SpawnSpec, log: LogSink): BackendProcess {
    const [command, ...args] = spec.argv
    const executable = findExecutable(command!, spec.env.PATH ?? process.env.PATH ?? '', spec.cwd)
    let proc: Subprocess<'pipe', 'pipe', 'pipe'>
    try {
      proc = Bun.spawn([...GATE, executable, ...args], {
        env: spec.env,
        cwd: spec.cwd,
        stdin: 'pipe',
        stdout: 'pipe',
        stderr: 'pipe',
        detached: true,
      })
    } catch (e) {
      throw new Error(`cannot run ${command}: ${(e as Error).message}`)
    }
    return new BackendProcess(proc, log, spec.onStop)
  }

  /** Lets the backend start (its pid is recorded). */
  open() {
    try {
      this.proc.stdin.write('\n')
      this.proc.stdin.end()
    } catch {
      // it was stopped before it could start
    }
  }

  get running(): boolean {
    return !this.done
  }

  private async pump(stream: ReadableStream<Uint8Array>, which: 'out' | 'err') {
    for await (const chunk of stream) {
      this.log.write(which, chunk)
      this.printed++
      this.onPrinted?.()
    }
  }

  /**
   * Resolves when the health URL answers 200; rejects when the process exits first, the
   * deadline passes, or the signal aborts.
   */
  async waitReady(healthUrl: string, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    const deadline = Date.now() + timeoutMs
    let exited = false
    this.exited.then(() => {
      exited = true
    })
    let delay = FIRST_POLL_MS
    while (true) {
      if (exited) throw new Error('exited while loading')
      if (signal?.aborted) throw new Error('start cancelled')
      if (Date.now() > deadline) throw new Error(`not ready after ${Math.round(timeoutMs / 1000)} s`)
      const printed = this.printed
      try {
        const res = await fetch(healthUrl, { signal: AbortSignal.timeout(POLL_REQUEST_TIMEOUT_MS) })
        await res.arrayBuffer()
        if (res.status === 200) return
      } catch {
        // not listening yet
      }
      // It printed while that poll was out: look again at once (after a breath, so a chatty load is not a busy loop).
      if (this.printed !== printed) await Bun.sleep(1)
      else await this.nextPollOrOutput(delay)
      delay = Math.min(delay * 2, POLL_MS)
    }
  }

  /** Resolves after `ms`, or sooner when the backend prints or exits. */
  private nextPollOrOutput(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer)
        if (this.onPrinted === done) this.onPrinted = null
        resolve()
      }
      const timer = setTimeout(done, ms)
      this.onPrinted = done
      if (this.done) done()
    })
  }

  /**
   * SIGKILL to the group at once, not as a requested stop: its exit is a crash, so the restart
   * policy applies. For a backend that no longer answers (a stopped process takes no SIGTERM).
   */
  kill() {
    if (!this.done) signalGroup(this.pid, 'SIGKILL')
  }

  /** SIGTERM to the group; SIGKILL if still alive after graceMs. Resolves once it has exited. */
  async stop(graceMs: number): Promise<ExitInfo> {
    this.stopRequested = true
    const hook = this.onStop?.(graceMs).catch((e) => this.log.note(`stop hook failed: ${(e as Error).message}`))
    if (this.done) {
      await hook
      return this.exited
    }
    signalGroup(this.pid, 'SIGTERM')
    const timer = setTimeout(() => signalGroup(this.pid, 'SIGKILL'), graceMs)
    try {
      return await this.exited
    } finally {
      clearTimeout(timer)
      // Children the backend left in its group (a wrapper script's server, say) go too.
      signalGroup(this.pid, 'SIGKILL')
      await hook
    }
  }
}

/** The executable the argv names, resolved as exec would (PATH, or a path from cwd). */
function findExecutable(command: string, PATH: string, cwd?: string): string {
  const found = Bun.which(command, { PATH, cwd })
  if (found) return found
  if (command.includes('/') && existsSync(resolve(cwd ?? process.cwd(), command))) {
    throw new Error(`cannot run ${command}: not an executable file`)
  }
  throw new Error(`executable not found: ${command}`)
}
