/**
 * A request's hold on a running instance. `acquire` asks the scheduler what to do with the
 * request (forward, wait, start on demand, refuse), applies it, and after each wait asks
 * again: every decision is made on the state of that moment and applied in the same step.
 */
import { AppError, BadRequest, Conflict, NotFound, TooManyRequests, Unavailable } from '../errors'
import type { Effect, Event } from '../scheduler/decide'
import type { Usage } from '../metrics/usage'
import type { Instance } from './instance'

/** What forwarding gets: where to send, and the one call that ends the request's hold. */
export interface Lease {
  instance: Instance
  upstream: string
  /** The backend's own API key, if it has one, sent instead of the client's. */
  backendKey: string | null
  /** Headers the backend's config adds to every answer. */
  headers: Record<string, string>
  /**
   * The request has ended (completed, failed or abandoned): exactly once. Times are
   * performance.now() of the answer's headers and of a stream's first token (0: none).
   */
  release(status: number, headersAt: number, usage: Usage | null, firstTokenAt?: number): void
}

/** How a request uses the instance: its metrics route, and whether it counts as use (health polls do not). */
export interface Use {
  route: string
  /** Who sent it (its key), for the queue's fairness. */
  client?: string
  activity: boolean
  startedAt: number
}

/** What acquire needs of the manager, which applies effects. */
export interface Executor {
  find(name: string): Instance | undefined
  /** Decides and applies; answers what is left for the request: grant, wait or refuse. */
  decide(event: Event): Effect[]
  /** The lease for a granted request, counted in flight at once. */
  lease(inst: Instance, use: Use): Lease
  /** Resolves at the instance's next change of status. */
  changed(inst: Instance): Promise<void>
  /** Resolves when any instance changes status or a request ends: room may have been made. */
  changedAny(): Promise<void>
  /** Joins the instance's queue: the lease once granted, null if the instance stopped running meanwhile (decide again). */
  enqueue(inst: Instance, signal: AbortSignal, use: Use): Promise<Lease | null>
  onDemandTimeout: number
  observeWait(name: string, seconds: number): void
}

export async function acquire(x: Executor, name: string, signal: AbortSignal, use: Use): Promise<Lease> {
  let sawStart = false
  let tries = 0
  const waitStarted = performance.now()
  let timer: ReturnType<typeof setTimeout> | undefined
  let giveUp: Promise<never> | null = null
  let noRoom: string | null = null
  try {
    for (;;) {
      const effects = x.decide({ type: 'request', name, sawStart, tries })
      const inst = x.find(name)
      const ask = effects.find((e) => e.do === 'grant' || e.do === 'refuse' || e.do === 'wait' || e.do === 'queue' || e.do === 'wait-room')
      if (!inst || !ask || ask.do === 'refuse') throw refusal(ask)
      if (ask.do === 'grant') {
        if (giveUp) x.observeWait(name, (performance.now() - waitStarted) / 1000)
        return x.lease(inst, use)
      }
      if (ask.do === 'queue') {
        const lease = await x.enqueue(inst, signal, use)
        if (lease) return lease
        continue
      }
      if (effects.some((e) => e.do === 'spawn')) tries++
      if (inst.status === 'starting') sawStart = true
      // A wait for room that runs out is the 409 it stands for; a wait for a start, a 503.
      noRoom = ask.do === 'wait-room' ? ask.message : null
      giveUp ??= new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(noRoom !== null ? new Conflict(noRoom) : new Unavailable(`instance ${JSON.stringify(name)} did not become ready within on_demand_start_timeout (${x.onDemandTimeout} s)`)), x.onDemandTimeout * 1000)
        const left = () => reject(new Unavailable('the client went away'))
        if (signal.aborted) left()
        signal.addEventListener('abort', left, { once: true })
      })
      giveUp.catch(() => {})
      inst.waiting++
      try {
        await Promise.race([ask.do === 'wait-room' ? x.changedAny() : x.changed(inst), giveUp])
      } finally {
        inst.waiting--
      }
    }
  } finally {
    clearTimeout(timer)
  }
}

/** Throws the refusal among a decision's effects, if there is one. */
export function throwIfRefused(effects: Effect[]) {
  const refused = effects.find((e) => e.do === 'refuse')
  if (refused) throw refusal(refused)
}

/** The error a refusal is answered with. */
export function refusal(e: Effect | undefined): AppError {
  if (!e || e.do !== 'refuse') return new Unavailable('the instance is gone')
  if (e.status === 400) return new BadRequest(e.message)
  if (e.status === 404) return new NotFound(e.message)
  if (e.status === 409) return new Conflict(e.message)
  if (e.status === 429) return new TooManyRequests(e.message, { 'retry-after': '1' })
  return new Unavailable(e.message)
}
