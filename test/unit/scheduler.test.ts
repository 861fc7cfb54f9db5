/**
 * The scheduler's decisions as tables: each row is a sentence, a state, an event and the
 * effects it must answer. Time is a number in the state (milliseconds); nothing waits.
 */
import { describe, expect, test } from 'bun:test'
import { afterExit, decide, MAX_START_TRIES, nextInQueue, MAX_TIMER_MS, type Effect, type Event, type Limits, type Slot, type World } from '../../src/scheduler/decide'
import { chooseEviction } from '../../src/scheduler/eviction'

const MIN = 60_000

function slot(name: string, o: Partial<Slot> = {}): Slot {
  return { name, status: 'stopped', group: null, inflight: 0, waiting: 0, lastUsed: 0, onDemand: true, gaveUp: false, deleting: false, idleTimeout: 0, error: null, ...o }
}
const running = (name: string, o: Partial<Slot> = {}) => slot(name, { status: 'running', ...o })

function world(instances: Slot[], limits: Partial<Limits> = {}, now = 10 * MIN): World {
  return { now, instances, limits: { maxRunning: -1, lruEviction: true, groupLimits: {}, ...limits } }
}
const req = (name: string, o: Partial<{ sawStart: boolean; tries: number }> = {}): Event => ({ type: 'request', name, sawStart: false, tries: 0, ...o })
const start = (name: string): Event => ({ type: 'start', name })

/** The effects' kinds and targets, for rows that do not care about the words. */
function shape(effects: Effect[]): string[] {
  return effects.map((e) => (e.do === 'refuse' ? `refuse ${e.status}` : e.do === 'spawn' ? `spawn ${e.name}${e.after.length ? ` after ${e.after.join(',')}` : ''}` : e.do === 'arm' ? `arm ${e.name} ${e.ms}` : `${e.do} ${e.name}`))
}

interface Row {
  says: string
  world: World
  event: Event
  then: string[]
}

/**
 * The same world as the executor gives it: `find` answers one slot, and the list of all is
 * built only if read. A decision must not depend on which way it is asked.
 */
function lazily(w: World): { world: World; listRead: () => boolean } {
  let read = false
  const world: World = {
    now: w.now,
    limits: w.limits,
    get instances() {
      read = true
      return w.instances
    },
    find: (name) => w.instances.find((i) => i.name === name),
  }
  return { world, listRead: () => read }
}

function table(rows: Row[]) {
  for (const r of rows) {
    test(r.says, () => {
      expect(shape(decide(r.world, r.event))).toEqual(r.then)
      expect(shape(decide(lazily(r.world).world, r.event))).toEqual(r.then)
    })
  }
}

describe('scheduler: what a decision reads', () => {
  test('a request for a running instance, and a request ending, read only that instance (not the list of all)', () => {
    const w = world([running('a'), running('b'), slot('c')], { maxRunning: 2 })
    for (const event of [req('a'), { type: 'request-ended', name: 'a' } as Event]) {
      const l = lazily(w)
      decide(l.world, event)
      expect(l.listRead()).toBe(false)
    }
    // A start must see them all (the limits count every running instance).
    const l = lazily(w)
    expect(shape(decide(l.world, start('c')))).toEqual(shape(decide(w, start('c'))))
    expect(l.listRead()).toBe(true)
  })
})

describe('scheduler: a request', () => {
  table([
    { says: 'for a running instance is forwarded at once', world: world([running('a')]), event: req('a'), then: ['grant a'] },
    { says: 'for a name no instance has is a 400', world: world([running('a')]), event: req('b'), then: ['refuse 400'] },
    { says: 'for a stopped instance starts it on demand and waits', world: world([slot('a')]), event: req('a'), then: ['spawn a', 'wait a'] },
    { says: 'for a stopped instance when there is no room and every running instance is busy waits for room', world: world([running('x', { inflight: 1 }), slot('a')], { maxRunning: 1 }), event: req('a'), then: ['wait-room a'] },
    { says: 'for a stopped instance when there is no room and eviction is off is a 409', world: world([running('x'), slot('a')], { maxRunning: 1, lruEviction: false }), event: req('a'), then: ['refuse 409'] },
    { says: 'for a stopped instance with on_demand_start off is a 503', world: world([slot('a', { onDemand: false })]), event: req('a'), then: ['refuse 503'] },
    { says: 'for an instance already starting waits for that start (no second one)', world: world([slot('a', { status: 'starting', waiting: 1 })]), event: req('a'), then: ['wait a'] },
    { says: 'for an instance whose crash loop gave up is a 503 (requests do not revive it)', world: world([slot('a', { status: 'failed', gaveUp: true, error: 'gave up' })]), event: req('a'), then: ['refuse 503'] },
    { says: 'for an instance that failed earlier tries a new start', world: world([slot('a', { status: 'failed', error: 'old' })]), event: req('a'), then: ['spawn a', 'wait a'] },
    { says: 'that waited through a start which failed is a 503, not another start', world: world([slot('a', { status: 'failed', error: 'bad model\nmore' })]), event: req('a', { sawStart: true }), then: ['refuse 503'] },
    { says: `that saw its instance stopped again ${MAX_START_TRIES} times gives up with a 503`, world: world([slot('a')]), event: req('a', { tries: MAX_START_TRIES }), then: ['refuse 503'] },
  ])

  test('that waited through a failed start is told the first line of why', () => {
    const [e] = decide(world([slot('a', { status: 'failed', error: 'exited while loading (exit code 1); last log lines:\nx' })]), req('a', { sawStart: true }))
    expect(e).toEqual({ do: 'refuse', status: 503, message: 'instance "a" could not be started: exited while loading (exit code 1)' })
  })
})

describe('scheduler: the races', () => {
  table([
    { says: 'a request arriving during an idle stop starts the instance again after that stop, never joins the backend going away', world: world([slot('a', { status: 'stopping', lastUsed: 0, idleTimeout: 1 })]), event: req('a'), then: ['spawn a', 'wait a'] },
    { says: 'a request arriving during a drain (stopping, requests still in flight) is not forwarded to the draining backend', world: world([slot('a', { status: 'stopping', inflight: 2 })]), event: req('a'), then: ['spawn a', 'wait a'] },
    { says: 'a request arriving during a crash restart waits for the policy\'s restart (its backoff and count stay)', world: world([slot('a', { status: 'restarting' })]), event: req('a'), then: ['wait a'] },
    { says: 'a request arriving during a delete is a 404, the model is gone', world: world([slot('a', { status: 'stopping', deleting: true })]), event: req('a'), then: ['refuse 404'] },
    { says: 'a request for a running instance being deleted is a 404 too', world: world([running('a', { deleting: true })]), event: req('a'), then: ['refuse 404'] },
    { says: 'a start asked for during a delete is refused', world: world([slot('a', { deleting: true })]), event: start('a'), then: ['refuse 404'] },
  ])

  test('two on-demand requests for two instances when one slot is left: the first starts, the second waits for room (the first is starting, never evicted)', () => {
    let instances = [running('busy', { inflight: 1 }), slot('a'), slot('b')]
    const limits = { maxRunning: 2 }
    expect(shape(decide(world(instances, limits), req('a')))).toEqual(['spawn a', 'wait a'])
    // What the executor did in the same step: a is starting, its request waiting.
    instances = instances.map((i) => (i.name === 'a' ? { ...i, status: 'starting', waiting: 1 } : i))
    const second = decide(world(instances, limits), req('b'))
    expect(shape(second)).toEqual(['wait-room b'])
    // The words it is answered with if no instance goes idle within on_demand_start_timeout:
    expect(second[0]).toMatchObject({ message: expect.stringContaining('max_running_instances (2) reached and every running instance is busy') })
  })

  test('the same with eviction off: the second is a 409 at once (nothing would make room)', () => {
    const instances = [running('busy', { inflight: 1 }), slot('a', { status: 'starting', waiting: 1 }), slot('b')]
    expect(shape(decide(world(instances, { maxRunning: 2, lruEviction: false }), req('b')))).toEqual(['refuse 409'])
  })

  test('two on-demand requests when one slot is left and an idle one can go: the second evicts the idle one, not the first that is starting', () => {
    let instances = [running('idle', { lastUsed: 1 }), slot('a'), slot('b')]
    const limits = { maxRunning: 2 }
    expect(shape(decide(world(instances, limits), req('a')))).toEqual(['spawn a', 'wait a'])
    instances = instances.map((i) => (i.name === 'a' ? { ...i, status: 'starting', waiting: 1 } : i))
    expect(shape(decide(world(instances, limits), req('b')))).toEqual(['stop idle', 'spawn b after idle', 'wait b'])
  })
})

describe('scheduler: capacity and eviction', () => {
  table([
    { says: 'no limit (-1): a start never evicts', world: world([slot('a'), running('x'), running('y')]), event: start('a'), then: ['spawn a'] },
    { says: 'under max_running_instances: the start goes ahead', world: world([slot('a'), running('x')], { maxRunning: 2 }), event: start('a'), then: ['spawn a'] },
    { says: 'at max_running_instances: the least recently used idle instance is stopped first', world: world([slot('a'), running('old', { lastUsed: 1 }), running('new', { lastUsed: 5 })], { maxRunning: 2 }), event: start('a'), then: ['stop old', 'spawn a after old'] },
    { says: 'eviction never chooses a busy instance, however old', world: world([slot('a'), running('old', { lastUsed: 1, inflight: 1 }), running('new', { lastUsed: 5 })], { maxRunning: 2 }), event: start('a'), then: ['stop new', 'spawn a after new'] },
    { says: 'eviction never chooses one with a request waiting for it', world: world([slot('a'), running('old', { lastUsed: 1, waiting: 1 }), running('new', { lastUsed: 5 })], { maxRunning: 2 }), event: start('a'), then: ['stop new', 'spawn a after new'] },
    { says: 'every running instance busy: 409', world: world([slot('a'), running('x', { inflight: 1 })], { maxRunning: 1 }), event: start('a'), then: ['refuse 409'] },
    { says: 'enable_lru_eviction off: 409 rather than stop anything', world: world([slot('a'), running('x')], { maxRunning: 1, lruEviction: false }), event: start('a'), then: ['refuse 409'] },
    { says: 'a stopping instance still holds its slot until it has exited', world: world([slot('a'), slot('x', { status: 'stopping' })], { maxRunning: 1 }), event: start('a'), then: ['refuse 409'] },
    { says: 'a starting instance holds its slot and is never evicted', world: world([slot('a'), slot('x', { status: 'starting' })], { maxRunning: 1 }), event: start('a'), then: ['refuse 409'] },
    { says: 'a failed or stopped instance holds no slot', world: world([slot('a'), slot('x', { status: 'failed' }), slot('y')], { maxRunning: 1 }), event: start('a'), then: ['spawn a'] },
    { says: 'a start of an instance already running changes nothing', world: world([running('a')], { maxRunning: 1 }), event: start('a'), then: [] },
    { says: 'a start asked for while it restarts after a crash changes nothing here (the start itself cancels the backoff)', world: world([slot('a', { status: 'restarting' })], { maxRunning: 1 }), event: start('a'), then: [] },
  ])

  test('the least recently used is chosen by last use, then by name; the instance being started never', () => {
    const c = (name: string, lastUsed: number, busy = 0, status = 'running') => ({ name, status, busy, lastUsed })
    expect(chooseEviction([c('b', 1), c('a', 1), c('z', 0)], 'z')).toBe('a')
    expect(chooseEviction([c('b', 2), c('a', 3)], 'x')).toBe('b')
    expect(chooseEviction([c('a', 1, 1), c('b', 1, 0, 'starting')], 'x')).toBeNull()
    expect(chooseEviction([], 'x')).toBeNull()
  })
})

describe('scheduler: groups', () => {
  const large = (name: string, o: Partial<Slot> = {}) => running(name, { group: 'large', ...o })
  const small = (name: string, o: Partial<Slot> = {}) => running(name, { group: 'small', ...o })
  table([
    { says: 'a group at its limit: its least recently used idle member is stopped, even when an older instance of another group is idle', world: world([small('s-old', { lastUsed: 1 }), large('l', { lastUsed: 5 }), slot('new', { group: 'large' })], { groupLimits: { large: 1 } }), event: start('new'), then: ['stop l', 'spawn new after l'] },
    { says: 'a group at its limit whose members are all busy: 409, and no member of another group is stopped', world: world([small('s', { lastUsed: 1 }), large('l', { inflight: 1 }), slot('new', { group: 'large' })], { groupLimits: { large: 1 } }), event: start('new'), then: ['refuse 409'] },
    { says: 'a group under its limit: only the global limit applies', world: world([large('l'), slot('new', { group: 'large' })], { groupLimits: { large: 2 } }), event: start('new'), then: ['spawn new'] },
    { says: 'a group absent from group_limits has no limit', world: world([running('m1', { group: 'medium' }), running('m2', { group: 'medium' }), slot('new', { group: 'medium' })], { groupLimits: { large: 1 } }), event: start('new'), then: ['spawn new'] },
    { says: 'an instance with no group only meets the global limit', world: world([large('l'), slot('new')], { groupLimits: { large: 1 } }), event: start('new'), then: ['spawn new'] },
    { says: 'a group limit of 0: its instances never start', world: world([slot('new', { group: 'large' })], { groupLimits: { large: 0 } }), event: start('new'), then: ['refuse 409'] },
    { says: 'the group eviction frees the slot the global limit needs: one stop, not two', world: world([large('l', { lastUsed: 5 }), small('s', { lastUsed: 1 }), slot('new', { group: 'large' })], { maxRunning: 2, groupLimits: { large: 1 } }), event: start('new'), then: ['stop l', 'spawn new after l'] },
    { says: 'the global limit wins: under its group limit, a start at max_running_instances still evicts the least recently used of any group', world: world([large('l', { lastUsed: 5 }), small('s', { lastUsed: 1 }), slot('new', { group: 'large' })], { maxRunning: 2, groupLimits: { large: 2 } }), event: start('new'), then: ['stop s', 'spawn new after s'] },
    { says: 'the global limit wins: room in the group but every instance busy is a 409', world: world([small('s', { inflight: 1 }), slot('new', { group: 'large' })], { maxRunning: 1, groupLimits: { large: 2 } }), event: start('new'), then: ['refuse 409'] },
  ])

  test('a group at its limit names the group and its limit', () => {
    const [e] = decide(world([running('l', { group: 'large', inflight: 1 }), slot('new', { group: 'large' })], { groupLimits: { large: 1 } }), start('new'))
    expect(e).toMatchObject({ do: 'refuse', status: 409, message: expect.stringContaining('group_limits.large (1) reached and every running instance in group "large" is busy') })
  })
})

describe('scheduler: idle stop (milliseconds of fake time)', () => {
  table([
    { says: 'a request that ended one minute before a one-minute idle_timeout: stop now', world: world([running('a', { idleTimeout: 1, lastUsed: 0 })], {}, MIN), event: { type: 'request-ended', name: 'a' }, then: ['stop a'] },
    { says: 'half way there: check in again when the rest has passed', world: world([running('a', { idleTimeout: 1, lastUsed: 0 })], {}, 30_000), event: { type: 'request-ended', name: 'a' }, then: ['arm a 30000'] },
    { says: 'just becoming ready counts from then', world: world([running('a', { idleTimeout: 2, lastUsed: 1000 })], {}, 1000), event: { type: 'ready', name: 'a' }, then: ['arm a 120000'] },
    { says: 'the timer firing one millisecond early checks in again for that millisecond', world: world([running('a', { idleTimeout: 1, lastUsed: 0 })], {}, MIN - 1), event: { type: 'timer', name: 'a' }, then: ['arm a 1'] },
    { says: 'the timer firing while a request is in flight does nothing (its end asks again)', world: world([running('a', { idleTimeout: 1, inflight: 1 })], {}, 5 * MIN), event: { type: 'timer', name: 'a' }, then: [] },
    { says: 'the timer firing while a request waits for it does nothing', world: world([running('a', { idleTimeout: 1, waiting: 1 })], {}, 5 * MIN), event: { type: 'timer', name: 'a' }, then: [] },
    { says: 'idle_timeout 0 never stops it', world: world([running('a', { idleTimeout: 0 })], {}, 1e12), event: { type: 'timer', name: 'a' }, then: [] },
    { says: 'the timer firing after the instance stopped does nothing', world: world([slot('a', { idleTimeout: 1 })], {}, 5 * MIN), event: { type: 'timer', name: 'a' }, then: [] },
    { says: 'the timer firing for a deleted instance does nothing', world: world([], {}, 5 * MIN), event: { type: 'timer', name: 'a' }, then: [] },
    { says: 'a deadline beyond what a timer keeps is checked in on at the longest timer', world: world([running('a', { idleTimeout: 1e9 })], {}, 0), event: { type: 'timer', name: 'a' }, then: [`arm a ${MAX_TIMER_MS}`] },
    { says: 'an idle_timeout too large for a number of milliseconds still arms the longest timer', world: world([running('a', { idleTimeout: 1e308 })], {}, 0), event: { type: 'timer', name: 'a' }, then: [`arm a ${MAX_TIMER_MS}`] },
  ])

  test('an idle stop says why, for the log', () => {
    expect(decide(world([running('a', { idleTimeout: 1 })], {}, MIN), { type: 'timer', name: 'a' })).toEqual([{ do: 'stop', name: 'a', why: 'idle', reason: 'idle for 1 min: stopping' }])
  })
})

describe('scheduler: the request queue (max_concurrent_requests)', () => {
  const q = (o: Partial<Slot>) => running('a', { maxConcurrent: 2, maxQueued: 2, ...o })
  table([
    { says: 'under the limit with nobody queued: forwarded', world: world([q({ inflight: 1 })]), event: req('a'), then: ['grant a'] },
    { says: 'at the limit: queued', world: world([q({ inflight: 2 })]), event: req('a'), then: ['queue a'] },
    { says: 'under the limit but others queued before it: queued behind them (first come, first served)', world: world([q({ inflight: 1, queued: 1 })]), event: req('a'), then: ['queue a'] },
    { says: 'at the limit with the queue full: 429', world: world([q({ inflight: 2, queued: 2 })]), event: req('a'), then: ['refuse 429'] },
    { says: 'max_queued_requests 0: past the limit is 429 at once', world: world([q({ inflight: 2, maxQueued: 0 })]), event: req('a'), then: ['refuse 429'] },
    { says: 'no limit (0): never queued', world: world([q({ inflight: 1000, maxConcurrent: 0 })]), event: req('a'), then: ['grant a'] },
    { says: 'a request ending with others queued grants the head of the queue', world: world([q({ inflight: 1, queued: 2 })]), event: { type: 'request-ended', name: 'a' }, then: ['dequeue a'] },
    { says: 'a request ending with nobody queued asks about idleness as usual', world: world([q({ inflight: 0, idleTimeout: 1 })], {}, 0), event: { type: 'request-ended', name: 'a' }, then: ['arm a 60000'] },
    { says: 'a queued request keeps its instance from idling', world: world([q({ queued: 1, idleTimeout: 1 })], {}, 5 * MIN), event: { type: 'timer', name: 'a' }, then: [] },
  ])
  test('queued requests make an instance busy: eviction passes it by', () => {
    const w = world([running('old', { lastUsed: 1, queued: 1, maxConcurrent: 1 }), running('new', { lastUsed: 5 }), slot('x')], { maxRunning: 2 })
    expect(shape(decide(w, start('x')))).toEqual(['stop new', 'spawn x after new'])
  })
})

describe('scheduler: the instance proxy', () => {
  table([
    { says: 'forwards to a running instance', world: world([running('a')]), event: { type: 'proxy', name: 'a' }, then: ['grant a'] },
    { says: 'never starts one: 503 while it is not running', world: world([slot('a')]), event: { type: 'proxy', name: 'a' }, then: ['refuse 503'] },
    { says: 'an unknown instance is a 404', world: world([]), event: { type: 'proxy', name: 'a' }, then: ['refuse 404'] },
  ])
})

describe('scheduler: after a crash (the restart policy)', () => {
  const policy = { auto_restart: true, max_restarts: 3, restart_delay: 2 }
  const rows: { says: string; exit: Parameters<typeof afterExit>[0]; then: ReturnType<typeof afterExit> }[] = [
    { says: 'a first crash restarts after restart_delay, and says so in its error', exit: { how: 'signal SIGKILL', restarts: 0, healthyForMs: 5000, policy }, then: { do: 'restart', delayMs: 2000, attempt: 1, error: 'exited unexpectedly (signal SIGKILL); restart 1 in 2 s' } },
    { says: 'a restart that failed to load backs off twice as long', exit: { how: 'exited while loading (exit code 1)', restarts: 1, healthyForMs: 0, policy }, then: { do: 'restart', delayMs: 4000, attempt: 2, error: 'exited unexpectedly (exited while loading (exit code 1)); restart 2 in 4 s' } },
    { says: 'at max_restarts it gives up and stays failed', exit: { how: 'exit code 1', restarts: 3, healthyForMs: 0, policy }, then: { do: 'give-up', reason: 'exited unexpectedly; gave up after 3 restarts (max_restarts)', error: 'exited unexpectedly; gave up after 3 restarts (max_restarts) (exit code 1)' } },
    { says: 'a backend that ran healthy for a minute starts its count over', exit: { how: 'exit code 1', restarts: 3, healthyForMs: 60_000, policy }, then: { do: 'restart', delayMs: 2000, attempt: 1, error: 'exited unexpectedly (exit code 1); restart 1 in 2 s' } },
    { says: 'auto_restart off: failed at once', exit: { how: 'exit code 1', restarts: 0, healthyForMs: 0, policy: { ...policy, auto_restart: false } }, then: { do: 'give-up', reason: 'exited unexpectedly; auto_restart is off', error: 'exited unexpectedly; auto_restart is off (exit code 1)' } },
  ]
  for (const r of rows) test(r.says, () => expect(afterExit(r.exit)).toEqual(r.then))
})

describe('scheduler: which queued request goes next', () => {
  const rows: { says: string; queue: string[]; served: [string, number][]; fairness: 'fifo' | 'per_key'; then: number }[] = [
    { says: 'fifo: the first in the queue, whoever sent it', queue: ['a', 'a', 'b'], served: [['b', 0]], fairness: 'fifo', then: 0 },
    { says: 'per_key: a client never served goes before one served already, though it came later', queue: ['a', 'a', 'b'], served: [['a', 5]], fairness: 'per_key', then: 2 },
    { says: 'per_key: of two clients served, the one served longest ago', queue: ['a', 'b'], served: [['a', 7], ['b', 3]], fairness: 'per_key', then: 1 },
    { says: 'per_key: of two never served, the one that came first', queue: ['b', 'a'], served: [], fairness: 'per_key', then: 0 },
    { says: 'per_key: a single client is served in its own order', queue: ['a', 'a', 'a'], served: [['a', 1]], fairness: 'per_key', then: 0 },
  ]
  for (const r of rows) test(r.says, () => expect(nextInQueue(r.queue, new Map(r.served), r.fairness)).toBe(r.then))
})
