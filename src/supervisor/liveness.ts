/**
 * Liveness of running backends. A backend is polled for readiness only while it starts; once
 * running, one that stays alive but stops answering (frozen, deadlocked, swapped out) would
 * hold its requests and its slot forever. So each running backend's health endpoint is probed
 * every `instances.health_check_interval`; after FAILURES_ALLOWED probes in a row that got no
 * answer in time (or a 5xx: vLLM answers 503 once its engine has died) while none of its own
 * requests received a byte, it is killed as a crashed backend, and its restart policy applies.
 *
 * Bytes flowing for a request say the backend is alive even when its health endpoint is slow
 * (a single-threaded server busy generating). Probes go to the backend directly, never through
 * llamactl's routes, so they are not activity: they keep no instance from its idle stop.
 */
import { backendFor } from '../backends'
import type { Instance } from '../instances/instance'

/** Probes failed in a row, with no request making progress, before a backend is taken as dead. */
export const FAILURES_ALLOWED = 3

export interface ProbeState {
  /** Probes failed in a row so far. */
  failures: number
  /** When the current run of failures was last judged (ms): progress after it clears them. */
  since: number
}

export type Verdict = { state: ProbeState; dead: false } | { state: ProbeState; dead: true; reason: string }

/**
 * The decision after one probe, at `now` (ms), `ok` whether it was answered in time; `progressAt`
 * is when a request of this backend last received bytes (0: never). No clock, no I/O.
 */
export function judgeProbe(state: ProbeState, ok: boolean, now: number, progressAt: number, intervalMs: number): Verdict {
  // Bytes arrived since the last judgement: the backend works, however slowly it answers probes.
  if (ok || progressAt > state.since) return { state: { failures: 0, since: now }, dead: false }
  const failures = state.failures + 1
  if (failures < FAILURES_ALLOWED) return { state: { failures, since: now }, dead: false }
  const reason = `not answering: ${failures} health checks in a row failed (none answered within ${intervalMs / 1000} s) while no request of its received any bytes`
  return { state: { failures, since: now }, dead: true, reason }
}

/** When a request of each backend (by its base URL) last received bytes, ms. */
const progress = new Map<string, number>()

/** Bytes of a response arrived from the backend at `base` (forward.ts calls it; cheap). */
export function noteProgress(base: string) {
  progress.set(base, Date.now())
}

/** What the watch needs from the manager. */
export interface LivenessHost {
  config: { instances: { health_check_interval: number } }
  onStatusChange(listener: (i: Instance) => void): () => void
}

/**
 * Watches every instance of `host` while it runs: a probe loop starts when an instance becomes
 * running and ends when it is anything else. Returns a function that ends every watch.
 */
export function watchLiveness(host: LivenessHost): () => void {
  const intervalMs = host.config.instances.health_check_interval * 1000
  const watches = new Map<Instance, () => void>()
  if (intervalMs <= 0) return () => {}
  const off = host.onStatusChange((inst) => {
    const running = inst.status === 'running' && inst.upstream !== null
    const watch = watches.get(inst)
    if (running && !watch) watches.set(inst, probeLoop(inst, intervalMs))
    else if (!running && watch) {
      watch()
      watches.delete(inst)
    }
  })
  return () => {
    off()
    for (const end of watches.values()) end()
    watches.clear()
  }
}

/** Probes one running backend until the returned function is called or it is killed. */
function probeLoop(inst: Instance, intervalMs: number): () => void {
  const base = inst.upstream!
  const url = base + backendFor(inst.options.backend_type).healthPath
  let state: ProbeState = { failures: 0, since: Date.now() }
  let ended = false
  let timer: ReturnType<typeof setTimeout> | null = null
  const next = (ms: number) => {
    if (ended) return
    // Never keeps llamactl (or a test) alive on its own.
    timer = setTimeout(probe, ms)
    timer.unref?.()
  }
  const probe = async () => {
    timer = null
    const sent = Date.now()
    // A probe takes at most one interval, so probes never overlap.
    const ok = await fetch(url, { signal: AbortSignal.timeout(intervalMs) })
      .then(async (res) => {
        await res.arrayBuffer().catch(() => {})
        return res.status < 500
      })
      .catch(() => false)
    if (ended) return
    const verdict = judgeProbe(state, ok, Date.now(), progress.get(base) ?? 0, intervalMs)
    state = verdict.state
    if (verdict.dead) {
      end()
      inst.kill(verdict.reason)
      return
    }
    // One probe per interval, however long this one took.
    next(Math.max(0, sent + intervalMs - Date.now()))
  }
  const end = () => {
    ended = true
    if (timer) clearTimeout(timer)
    timer = null
    progress.delete(base)
  }
  next(intervalMs)
  return end
}
