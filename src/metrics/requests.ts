/**
 * The last requests forwarded to backends, newest first, for the Activity view and
 * GET /api/v1/activity: what was asked of which instance, how it ended, its tokens and the
 * backend's own generation speed. Bounded (a ring of CAPACITY entries); nothing of a request's
 * content is kept.
 */
import type { Usage } from './usage'

export const CAPACITY = 1000

export interface RequestRecord {
  /** Unix ms the request ended. */
  at: number
  instance: string
  route: string
  status: number
  prompt_tokens: number | null
  completion_tokens: number | null
  /** Generation speed, tokens per second, as the backend measured it (llama.cpp's timings); null when it did not say. */
  tokens_per_second: number | null
  duration_ms: number
  /** Until the backend's answer began (its headers). */
  first_byte_ms: number | null
  /** A stream's first generated token (its first event with content); null for a whole answer. */
  first_token_ms: number | null
}

export interface RequestFilter {
  instance?: string
  /** ok: under 400; error: 400 and over (and requests cut off). */
  outcome?: 'ok' | 'error'
  limit?: number
}

const round = (ms: number) => Math.round(ms * 100) / 100

export class RecentRequests {
  private ring: RequestRecord[] = []
  private next = 0

  record(instance: string, route: string, status: number, startedAt: number, headersAt: number, firstTokenAt: number, usage: Usage | null, now = performance.now()) {
    const r: RequestRecord = {
      at: Date.now(),
      instance,
      route,
      status,
      prompt_tokens: usage ? usage.prompt : null,
      completion_tokens: usage ? usage.completion : null,
      tokens_per_second: usage?.perSecond !== undefined ? Math.round(usage.perSecond * 10) / 10 : null,
      duration_ms: round(now - startedAt),
      first_byte_ms: headersAt ? round(headersAt - startedAt) : null,
      first_token_ms: firstTokenAt ? round(firstTokenAt - startedAt) : null,
    }
    if (this.ring.length < CAPACITY) this.ring.push(r)
    else this.ring[this.next] = r
    this.next = (this.next + 1) % CAPACITY
  }

  /** Newest first. */
  list(f: RequestFilter = {}): RequestRecord[] {
    const out: RequestRecord[] = []
    const limit = f.limit ?? 100
    const n = this.ring.length
    for (let i = 1; i <= n && out.length < limit; i++) {
      const r = this.ring[(this.next - i + n * 2) % n]!
      if (f.instance !== undefined && r.instance !== f.instance) continue
      if (f.outcome === 'ok' && !(r.status > 0 && r.status < 400)) continue
      if (f.outcome === 'error' && r.status > 0 && r.status < 400) continue
      out.push(r)
    }
    return out
  }

  /** The instance was deleted: its requests go too. */
  forget(instance: string) {
    const kept = this.list({ limit: CAPACITY }).filter((r) => r.instance !== instance).reverse()
    this.ring = kept
    this.next = kept.length % CAPACITY
  }
}
