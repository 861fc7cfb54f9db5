/**
 * The last ten minutes of each instance's traffic in 10-second buckets (requests, errors,
 * completion tokens, and the generation speed the backend measured), for the page's small
 * charts. Bounded: 60 buckets an instance.
 */
export const BUCKET_MS = 10_000
export const BUCKETS = 60

interface Ring {
  /** Bucket index (time / BUCKET_MS) each slot holds. */
  at: Int32Array
  requests: Uint32Array
  errors: Uint32Array
  tokens: Float64Array
  /** Sum and count of the backend's tokens/s of the requests that said it. */
  speed: Float64Array
  speeds: Uint32Array
}

export interface ActivitySeries {
  /** Oldest first; one entry per 10 s; the last is the current, partial bucket. */
  requests: number[]
  errors: number[]
  /** Completion tokens in each bucket. */
  tokens: number[]
  /** Generation speed in each bucket: the mean of the tokens/s the backend reported for its requests; null: none said. */
  speed: (number | null)[]
}

export class RecentActivity {
  private rings = new Map<string, Ring>()

  record(instance: string, status: number, completionTokens: number, perSecond: number | undefined = undefined, now = Date.now()) {
    let r = this.rings.get(instance)
    if (!r) {
      r = { at: new Int32Array(BUCKETS).fill(-1), requests: new Uint32Array(BUCKETS), errors: new Uint32Array(BUCKETS), tokens: new Float64Array(BUCKETS), speed: new Float64Array(BUCKETS), speeds: new Uint32Array(BUCKETS) }
      this.rings.set(instance, r)
    }
    const b = Math.floor(now / BUCKET_MS)
    const slot = b % BUCKETS
    if (r.at[slot] !== b) {
      r.at[slot] = b
      r.requests[slot] = 0
      r.errors[slot] = 0
      r.tokens[slot] = 0
      r.speed[slot] = 0
      r.speeds[slot] = 0
    }
    r.requests[slot]!++
    if (status >= 500 || status === 0) r.errors[slot]!++
    r.tokens[slot]! += completionTokens
    if (perSecond !== undefined && completionTokens > 0) {
      r.speed[slot]! += perSecond
      r.speeds[slot]!++
    }
  }

  series(instance: string, now = Date.now()): ActivitySeries {
    const out: ActivitySeries = { requests: [], errors: [], tokens: [], speed: [] }
    const r = this.rings.get(instance)
    const current = Math.floor(now / BUCKET_MS)
    for (let b = current - BUCKETS + 1; b <= current; b++) {
      const slot = ((b % BUCKETS) + BUCKETS) % BUCKETS
      const live = r && r.at[slot] === b
      out.requests.push(live ? r!.requests[slot]! : 0)
      out.errors.push(live ? r!.errors[slot]! : 0)
      out.tokens.push(live ? r!.tokens[slot]! : 0)
      out.speed.push(live && r!.speeds[slot]! > 0 ? r!.speed[slot]! / r!.speeds[slot]! : null)
    }
    return out
  }

  forget(instance: string) {
    this.rings.delete(instance)
  }
}
