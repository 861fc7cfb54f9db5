/**
 * Slowing down key guessing: failed sign-ins and wrong Bearer keys are counted per client
 * address (the socket's, IPv6 by /64) in a fixed window of auth.failure_window seconds. Past
 * auth.max_failures, a wrong key from that address is answered 429 with Retry-After, after
 * auth.failure_delay seconds; and while MAX_HELD such answers are being held, every attempt
 * from the address is refused unchecked. So one address tests at most MAX_HELD keys per delay,
 * however many connections it opens, while a client there with the right key still gets in
 * whenever the address is not saturated. Loopback is limited like any address: on a shared
 * host, the attacker is another local user.
 *
 * The table holds at most MAX_ADDRESSES entries; the oldest window goes first when it is full.
 */

/** Failure answers held at once for one address; past it, attempts are refused unchecked. */
export const MAX_HELD = 4
/** Addresses remembered at once (about 100 bytes each). */
export const MAX_ADDRESSES = 10_000

export interface FailureSettings {
  /** Failures allowed in a window before the address is limited; 0: no limit. */
  max_failures: number
  /** Seconds. */
  failure_window: number
  /** Seconds a failure answer is held once the address is limited. */
  failure_delay: number
}

interface Entry {
  start: number
  failures: number
  held: number
}

/**
 * What to do with a failed attempt. When limited, the answer counts as held until done() is
 * called (once, when it has been sent).
 */
export type FailureVerdict = { limited: false } | { limited: true; holdMs: number; retryAfter: number; done: () => void }

export class FailureLimit {
  private table = new Map<string, Entry>()
  /** Failure answers held now, across all addresses. */
  private heldTotal = 0

  constructor(
    private settings: FailureSettings,
    private now: () => number = Date.now,
    private maxAddresses = MAX_ADDRESSES,
  ) {}

  get enabled(): boolean {
    return this.settings.max_failures > 0
  }

  /**
   * Whether any address can be refused now: only one with MAX_HELD answers held is, so while
   * fewer are held in all, a request need not even look up its address (the hot path's case).
   */
  get mayRefuse(): boolean {
    return this.heldTotal >= MAX_HELD
  }

  /**
   * Seconds to wait when attempts from `address` are refused without being checked (the
   * address is limited and MAX_HELD answers are already held for it); 0 to go on and check.
   */
  refusing(address: string): number {
    if (!this.enabled) return 0
    const e = this.current(addressKey(address))
    if (!e || e.failures < this.settings.max_failures || e.held < MAX_HELD) return 0
    return Math.max(1, Math.ceil(this.settings.failure_delay))
  }

  /** Records a failed attempt from `address`; when the address is limited, how to answer it. */
  fail(address: string): FailureVerdict {
    if (!this.enabled) return { limited: false }
    const key = addressKey(address)
    let e = this.current(key)
    if (!e) {
      if (this.table.size >= this.maxAddresses) this.evictOldest()
      e = { start: this.now(), failures: 0, held: 0 }
      this.table.set(key, e)
    }
    e.failures++
    if (e.failures <= this.settings.max_failures) return { limited: false }
    const windowEnd = e.start + this.settings.failure_window * 1000
    const entry = e
    entry.held++
    this.heldTotal++
    let released = false
    const done = () => {
      if (released) return
      released = true
      entry.held--
      this.heldTotal--
    }
    return { limited: true, holdMs: this.settings.failure_delay * 1000, retryAfter: Math.max(1, Math.ceil((windowEnd - this.now()) / 1000)), done }
  }

  /** Failure answers being held for `address` now (for tests and diagnostics). */
  heldFor(address: string): number {
    return this.table.get(addressKey(address))?.held ?? 0
  }

  /** Addresses in the table. */
  get size(): number {
    return this.table.size
  }

  /** The address's entry while its window lasts (an expired one is dropped, unless answers are still held). */
  private current(key: string): Entry | undefined {
    const e = this.table.get(key)
    if (!e) return undefined
    if (this.now() - e.start < this.settings.failure_window * 1000) return e
    if (e.held > 0) {
      // A new window for the same entry (answers still on their way out release it), moved to
      // the end of the eviction order.
      e.start = this.now()
      e.failures = 0
      this.table.delete(key)
      this.table.set(key, e)
      return e
    }
    this.table.delete(key)
    return undefined
  }

  private evictOldest() {
    // Map order is insertion order, and an entry is re-inserted when its window starts again.
    const oldest = this.table.keys().next()
    if (!oldest.done) this.table.delete(oldest.value)
  }
}

/**
 * The key for an address: IPv4 as it is (also when IPv4-mapped), IPv6 by its /64 network,
 * which one host or user usually has whole.
 */
export function addressKey(address: string): string {
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address)
  if (mapped) return mapped[1]!
  if (!address.includes(':')) return address
  const bare = address.split('%')[0]!
  const [head = '', tail] = bare.split('::')
  const first = head ? head.split(':') : []
  const last = tail === undefined ? [] : tail ? tail.split(':') : []
  const groups = tail === undefined ? first : [...first, ...Array<string>(Math.max(0, 8 - first.length - last.length)).fill('0'), ...last]
  return `${groups
    .slice(0, 4)
    .map((g) => (Number.parseInt(g, 16) || 0).toString(16))
    .join(':')}::/64`
}
