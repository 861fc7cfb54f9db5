/** Shared benchmark machinery: child processes, percentiles, interleaved sampling. */
import type { Subprocess } from 'bun'

export const BUN = process.execPath

export interface Child {
  proc: Subprocess
  output: () => string
}

/** Spawns a process and waits for a line matching `ready`; returns the first capture group. */
export async function spawnUntil(argv: string[], ready: RegExp, env: Record<string, string> = {}, timeoutMs = 60000): Promise<{ child: Child; match: string }> {
  const proc = Bun.spawn(argv, { env: { ...process.env, ...env } as Record<string, string>, stdout: 'pipe', stderr: 'pipe', stdin: 'ignore' })
  let out = ''
  let ready_ = false
  // Drained for as long as the process runs (a full pipe would stall it); once it is ready only
  // the last 64 KiB are kept, so a chatty process (the request log) does not grow the bench.
  const pump = async (s: ReadableStream<Uint8Array>) => {
    for await (const c of s) {
      out += new TextDecoder().decode(c)
      if (ready_ && out.length > 128 * 1024) out = out.slice(-64 * 1024)
    }
  }
  void pump(proc.stdout as ReadableStream<Uint8Array>)
  void pump(proc.stderr as ReadableStream<Uint8Array>)
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const m = ready.exec(out)
    if (m) {
      ready_ = true
      return { child: { proc, output: () => out }, match: m[1] ?? m[0] }
    }
    if (proc.exitCode !== null || Date.now() > deadline) {
      proc.kill('SIGKILL')
      throw new Error(`${argv.join(' ')} did not become ready:\n${out}`)
    }
    await Bun.sleep(5)
  }
}

export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (!sorted.length) return Number.NaN
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[i]!
}

export interface Summary {
  p50: number
  p99: number
  mean: number
  n: number
}

export function summarize(samples: number[]): Summary {
  const s = [...samples].sort((a, b) => a - b)
  return { p50: percentile(s, 50), p99: percentile(s, 99), mean: s.reduce((a, b) => a + b, 0) / s.length, n: s.length }
}

/**
 * Times `rounds` sequential requests for each target, interleaved (A, B, C, A, B, C, …) so
 * machine noise falls on all alike. Returns milliseconds per target.
 */
export async function interleaved(targets: Record<string, () => Promise<void>>, rounds: number, warmup = 200): Promise<Record<string, number[]>> {
  const names = Object.keys(targets)
  for (let i = 0; i < warmup; i++) for (const n of names) await targets[n]!()
  const out: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]))
  for (let i = 0; i < rounds; i++) {
    // rotate the order each round so no target always goes first
    for (let j = 0; j < names.length; j++) {
      const n = names[(i + j) % names.length]!
      const t0 = performance.now()
      await targets[n]!()
      out[n]!.push(performance.now() - t0)
    }
  }
  return out
}

/** A small seeded generator, so that resampling gives the same band for the same samples. */
function mulberry32(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/**
 * The noise between two identical paths at a percentile: how far apart their percentiles came out
 * in this run, and the 95th percentile of that difference over `rounds` resamples of both (with
 * replacement), which a single pair of floors can understate by landing close by chance.
 */
export function floorNoise(a: number[], b: number[], p: number, rounds = 200): { observed: number; resampled: number } {
  const at = (xs: Float64Array) => percentile(xs.sort(), p)
  const observed = Math.abs(at(Float64Array.from(a)) - at(Float64Array.from(b)))
  const rand = mulberry32(1)
  const draw = (xs: number[]) => {
    const out = new Float64Array(xs.length)
    for (let i = 0; i < xs.length; i++) out[i] = xs[Math.floor(rand() * xs.length)]!
    return out
  }
  const diffs: number[] = []
  for (let r = 0; r < rounds; r++) diffs.push(Math.abs(at(draw(a)) - at(draw(b))))
  return { observed, resampled: percentile(diffs.sort((x, y) => x - y), 95) }
}

export const fmt = (ms: number) => `${ms.toFixed(3)} ms`

/** Thrown by a measurement that got a wrong answer: the run stops, naming the measurement. */
export class WrongResponse extends Error {
  constructor(measure: string, what: string) {
    super(`${measure}: ${what}`)
    this.name = 'WrongResponse'
  }
}
