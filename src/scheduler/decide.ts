/**
 * Every decision about which backend runs and who may use it, as pure functions: given what
 * is known of the instances, the limits and the time, and one event, it answers the effects to
 * apply. No I/O, no clock, no promises: the executor (src/instances/executor.ts, lease.ts)
 * applies the effects in the same synchronous step it asked in, so no decision is made on a
 * read that another request could change before it is acted on.
 */
import { chooseEviction } from './eviction'
import { decideRestart, type RestartPolicy } from './restart-policy'

export type Status = 'stopped' | 'starting' | 'running' | 'stopping' | 'restarting' | 'failed'

/** What the scheduler knows of one instance. */
export interface Slot {
  name: string
  status: Status
  /** Its group; null or absent: only the global limit applies. */
  group?: string | null
  /** Requests being forwarded to it. */
  inflight: number
  /** Requests waiting for it to start. */
  waiting: number
  /** Requests in its queue (it was at max_concurrent_requests when they came). */
  queued?: number
  /** max_concurrent_requests; 0 or absent: no limit, and no queue. */
  maxConcurrent?: number
  /** max_queued_requests: past it, a request is refused (429). */
  maxQueued?: number
  /** Unix ms of last use. */
  lastUsed: number
  onDemand: boolean
  /** The restart policy gave up on it: requests do not revive it, only a start asked for does. */
  gaveUp: boolean
  /** It is being deleted. */
  deleting: boolean
  /** Minutes; 0: never stopped for being idle. */
  idleTimeout: number
  error: string | null
}

export interface Limits {
  /** -1: no limit. */
  maxRunning: number
  lruEviction: boolean
  /** Most running instances per group; a group not named here has no limit. */
  groupLimits: Readonly<Record<string, number>>
}

export interface World {
  now: number
  instances: readonly Slot[]
  limits: Limits
  /** The slot of one instance, where the caller can answer it without building them all (the executor's hot path). */
  find?(name: string): Slot | undefined
}

export type Event =
  /** A start was asked for (the API, an on-demand request, a resume at start-up). */
  | { type: 'start'; name: string }
  /**
   * A request for this instance arrived, or is decided again after waiting. `sawStart`: it
   * waited through a start of its own asking, so a failure now is that start's; `tries`: how
   * often it has already asked for a start.
   */
  | { type: 'request'; name: string; sawStart: boolean; tries: number }
  /** A request ended, or the idle timer fired: both ask whether the instance is now idle. */
  | { type: 'request-ended'; name: string }
  | { type: 'timer'; name: string }
  /** The backend became ready. */
  | { type: 'ready'; name: string }
  /** A request through the instance proxy, which forwards only to a running backend. */
  | { type: 'proxy'; name: string }

export type Effect =
  /** Start it once the instances named in `after` have stopped. */
  | { do: 'spawn'; name: string; after: string[] }
  /** Stop it, letting the requests in flight finish first (drain). */
  | { do: 'stop'; name: string; why: 'eviction' | 'idle'; reason: string }
  /** Forward the request now (the executor counts it in flight in the same step). */
  | { do: 'grant'; name: string }
  /** Wait for the instance's next change of status, then decide again. */
  | { do: 'wait'; name: string }
  /**
   * No room, and every running instance is busy: wait (bounded by on_demand_start_timeout) for
   * any of them to go idle, then decide again; `message` is the 409 when the wait runs out.
   */
  | { do: 'wait-room'; name: string; message: string }
  /** Join the instance's queue; it leaves when granted, at queue_timeout or when its client goes. */
  | { do: 'queue'; name: string }
  /** A request in flight just ended: grant the queued request nextInQueue names. */
  | { do: 'dequeue'; name: string }
  | { do: 'refuse'; status: 400 | 404 | 409 | 429 | 503; message: string }
  /** Fire a `timer` event for it after `ms`. */
  | { do: 'arm'; name: string; ms: number }

/** The longest timer setTimeout keeps (about 24.8 days); a later deadline is checked in on again. */
export const MAX_TIMER_MS = 2 ** 31 - 1

/** How often one request may ask for a start before it gives up (each was stopped again before it got in). */
export const MAX_START_TRIES = 3

const q = JSON.stringify

export function decide(world: World, event: Event): Effect[] {
  const inst = world.find ? world.find(event.name) : world.instances.find((i) => i.name === event.name)
  switch (event.type) {
    case 'start':
      if (!inst) return [{ do: 'refuse', status: 404, message: `instance ${q(event.name)} not found` }]
      return admit(world, inst)
    case 'request':
      return request(world, inst, event)
    case 'proxy':
      if (!inst) return [{ do: 'refuse', status: 404, message: `instance ${q(event.name)} not found` }]
      if (inst.status !== 'running') return [{ do: 'refuse', status: 503, message: `instance ${q(event.name)} is not running (status ${inst.status})` }]
      return [{ do: 'grant', name: event.name }]
    case 'request-ended':
      if (inst && inst.status === 'running' && (inst.queued ?? 0) > 0 && inst.inflight < (inst.maxConcurrent ?? 0)) return [{ do: 'dequeue', name: inst.name }]
      return inst ? idle(world, inst) : []
    case 'ready':
    case 'timer':
      return inst ? idle(world, inst) : []
  }
}

/** A request: forward it, wait, start the instance on demand, or refuse. */
function request(world: World, inst: Slot | undefined, e: { name: string; sawStart: boolean; tries: number }): Effect[] {
  const name = e.name
  // The seed and the original both answer an unknown model 400: the request named nothing there is.
  if (!inst) return [{ do: 'refuse', status: 400, message: `model ${q(name)} not found: no instance has that name (GET /v1/models lists them)` }]
  if (inst.deleting) return [{ do: 'refuse', status: 404, message: `model ${q(name)} not found: the instance was deleted` }]
  if (inst.status === 'running') return admitRequest(inst)
  if (!inst.onDemand) return [{ do: 'refuse', status: 503, message: `instance ${q(name)} is not running and on_demand_start is off; start it first` }]
  if (inst.status === 'failed') {
    // A crash loop that ended failed stays failed until someone starts it.
    if (inst.gaveUp) return [{ do: 'refuse', status: 503, message: `instance ${q(name)} is failed: ${inst.error}; start it again with POST /api/v1/instances/${name}/start` }]
    // The start this request waited through failed: say why, rather than try again at once.
    if (e.sawStart) return [{ do: 'refuse', status: 503, message: `instance ${q(name)} could not be started: ${firstLine(inst.error)}` }]
  }
  // Started already, or restarting after a crash: wait for it, so clients neither skip the
  // restart's backoff nor reset its count (a crash loop still ends failed).
  if (inst.status === 'starting' || inst.status === 'restarting') return [{ do: 'wait', name }]
  if (e.tries >= MAX_START_TRIES) return [{ do: 'refuse', status: 503, message: `instance ${q(name)} keeps stopping; try again` }]
  // Stopping (idle, evicted, asked) or stopped: a new start, after the stop in hand.
  const admitted = admit(world, inst)
  const refused = admitted.find((x) => x.do === 'refuse')
  // Full of busy instances: one will go idle, so an on-demand request waits for that rather
  // than fail at once. With eviction off nothing will make room: the 409 stays.
  if (refused && refused.status === 409 && world.limits.lruEviction) return [{ do: 'wait-room', name, message: refused.message }]
  if (refused) return admitted
  return [...admitted, { do: 'wait', name }]
}

/**
 * Room for one more running instance: first its group's limit, evicting that group's least
 * recently used idle member; then max_running_instances across all groups, evicting the least
 * recently used idle one anywhere. The global limit wins: passing the group check is not enough.
 */
function admit(world: World, inst: Slot): Effect[] {
  if (inst.deleting) return [{ do: 'refuse', status: 404, message: `instance ${q(inst.name)} is being deleted` }]
  if (inst.status === 'starting' || inst.status === 'running' || inst.status === 'restarting') return []
  const { limits } = world
  const others = world.instances.filter((i) => i.name !== inst.name && holdsSlot(i))
  const evicted: Effect[] = []
  const group = inst.group ?? null
  const groupLimit = group !== null ? limits.groupLimits[group] : undefined
  if (groupLimit !== undefined) {
    const members = others.filter((i) => (i.group ?? null) === group)
    if (members.length >= groupLimit) {
      const victim = evict(members, inst.name, limits.lruEviction)
      if (!victim) return [refuseFull(`group_limits.${group} (${groupLimit})`, limits.lruEviction, `in group ${q(group)} `)]
      evicted.push(stopFor(victim, inst.name, `group ${q(group)} limit ${groupLimit}`))
    }
  }
  if (limits.maxRunning >= 0) {
    const left = others.filter((i) => !evicted.some((v) => v.do === 'stop' && v.name === i.name))
    if (left.length >= limits.maxRunning) {
      const victim = evict(left, inst.name, limits.lruEviction)
      if (!victim) return [refuseFull(`max_running_instances (${limits.maxRunning})`, limits.lruEviction, '')]
      evicted.push(stopFor(victim, inst.name, `max_running_instances ${limits.maxRunning}`))
    }
  }
  return [...evicted, { do: 'spawn', name: inst.name, after: evicted.map((v) => (v as { name: string }).name) }]
}

/**
 * A request for a running instance: forwarded while it is under max_concurrent_requests and
 * nobody is queued before it (first come, first served); else queued, or refused once the
 * queue is full.
 */
function admitRequest(inst: Slot): Effect[] {
  const max = inst.maxConcurrent ?? 0
  const queued = inst.queued ?? 0
  if (max <= 0 || (inst.inflight < max && queued === 0)) return [{ do: 'grant', name: inst.name }]
  if (queued >= (inst.maxQueued ?? 0)) {
    return [{ do: 'refuse', status: 429, message: `instance ${q(inst.name)} is at max_concurrent_requests (${max}) and its queue is full (max_queued_requests ${inst.maxQueued ?? 0}); try again shortly` }]
  }
  return [{ do: 'queue', name: inst.name }]
}

/** Everything that keeps an instance from being idle: requests in flight, waiting for a start, or queued. */
function busy(i: Slot): number {
  return i.inflight + i.waiting + (i.queued ?? 0)
}

/** Holds a process, or is about to: counts against the limits. */
export function holdsSlot(i: Slot): boolean {
  return i.status === 'starting' || i.status === 'running' || i.status === 'restarting' || i.status === 'stopping'
}

function evict(candidates: Slot[], target: string, lru: boolean): string | null {
  if (!lru) return null
  return chooseEviction(candidates.map((i) => ({ name: i.name, status: i.status, busy: busy(i), lastUsed: i.lastUsed })), target)
}

function stopFor(victim: string, target: string, limit: string): Effect {
  return { do: 'stop', name: victim, why: 'eviction', reason: `stopping to make room for ${target} (least recently used, ${limit})` }
}

function refuseFull(what: string, lru: boolean, where: string): Effect {
  const why = lru ? `and every running instance ${where}is busy` : 'and enable_lru_eviction is off'
  return { do: 'refuse', status: 409, message: `${what} reached ${why}; stop an instance first or raise the limit` }
}

/** idle_timeout counts from the end of the last request; a request in flight, waiting or queued keeps it alive. */
function idle(world: World, inst: Slot): Effect[] {
  if (inst.status !== 'running' || inst.idleTimeout <= 0 || busy(inst) > 0) return []
  const deadline = inst.lastUsed + inst.idleTimeout * 60_000
  if (world.now >= deadline) return [{ do: 'stop', name: inst.name, why: 'idle', reason: `idle for ${inst.idleTimeout} min: stopping` }]
  return [{ do: 'arm', name: inst.name, ms: Math.min(deadline - world.now, MAX_TIMER_MS) }]
}

/** Inference clients get a start failure's first line; the backend's log lines are for management. */
function firstLine(error: string | null): string {
  return (error ?? 'failed to start').split('\n')[0]!.replace(/; last log lines:$/, '')
}

/** A backend exited unasked while running, or a start the restart policy made failed to load. */
export interface Exit {
  /** How it ended, in words: "exit code 1", "signal SIGKILL", or why the start failed. */
  how: string
  restarts: number
  /** How long it had been ready before exiting; 0 if it never became ready. */
  healthyForMs: number
  policy: RestartPolicy
}

export type ExitEffect = { do: 'restart'; delayMs: number; attempt: number; error: string } | { do: 'give-up'; reason: string; error: string }

/** What the restart policy makes of an exit: try again after a backoff, or stay failed (requests do not revive it). */
export function afterExit(e: Exit): ExitEffect {
  const d = decideRestart(e.policy, e.restarts, e.healthyForMs)
  if (d.action === 'fail') return { do: 'give-up', reason: d.reason, error: `${d.reason} (${e.how})` }
  return { do: 'restart', delayMs: d.delayMs, attempt: d.attempt, error: `exited unexpectedly (${e.how}); restart ${d.attempt} in ${d.delayMs / 1000} s` }
}

export type Fairness = 'fifo' | 'per_key'

/**
 * Which queued request is served next, by index: the first in the queue (fifo), or the first
 * of the client served longest ago (per_key), so clients take turns whatever the queue holds.
 * `lastServed`: each client's turn number when it was last served; a client never served has
 * the earliest.
 */
export function nextInQueue(clients: readonly string[], lastServed: ReadonlyMap<string, number>, fairness: Fairness): number {
  if (fairness === 'fifo' || clients.length === 0) return 0
  let best = 0
  for (let i = 1; i < clients.length; i++) {
    if ((lastServed.get(clients[i]!) ?? -1) < (lastServed.get(clients[best]!) ?? -1)) best = i
  }
  return best
}
