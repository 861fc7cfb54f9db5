/**
 * Durability under SIGKILL: 20 rounds (FAULT_ROUNDS) of 200 concurrent create / update / delete
 * requests (instances and inference keys) against llamactl as a process, each round ended by a
 * SIGKILL at a random moment (FAULT_SEED repeats the choices). After every kill the
 * database must pass `PRAGMA integrity_check`, hold every change that was acknowledged, hold
 * nothing half-done, and open again under a new llamactl that shows the same.
 *
 * Why this design: every request in a round touches a different instance or key, so whether a
 * change must be there depends only on its own answer. Creating an instance starts it, and 200
 * backends would not fit on a CI machine, so most creates and updates name a command that does
 * not exist: the start fails at once, and the documented answer (500, "the instance is kept") is
 * as much an acknowledgement as a 201. A few creates per round run the fake llama-server for
 * real, so kills also land during real starts; they are deleted in the next round.
 */
import { Database } from 'bun:sqlite'
import { afterAll, expect, test } from 'bun:test'
import { readdirSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { portRange, tempDir } from '../helpers'
import { type Running, startLlamactl } from '../system/process'
import { AUTH_HEADER, fakeServerPids } from './util'

const ROUNDS = Number(process.env.FAULT_ROUNDS ?? 20)
const PER_ROUND = 200
const REAL_CREATES = 3
const MISSING = '/nonexistent/llamactl-fault-backend'
const seed = Number(process.env.FAULT_SEED ?? Math.floor(Math.random() * 2 ** 31))

/** mulberry32: a small seeded generator, so a failing round can be replayed with FAULT_SEED. */
function rng(s: number) {
  return () => {
    s = (s + 0x6d2b79f5) | 0
    let t = Math.imul(s ^ (s >>> 15), 1 | s)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
// Two streams, so the kill moments (fractions of a round's measured length) repeat with the seed
// whatever the rounds' answers were.
const killRandom = rng(seed)
const random = rng(seed ^ 0x5bd1e995)
const shuffle = <T>(xs: T[]) => {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    ;[xs[i], xs[j]] = [xs[j]!, xs[i]!]
  }
  return xs
}

type Op =
  | { kind: 'create'; name: string; body: Record<string, unknown> }
  | { kind: 'update'; name: string; body: Record<string, unknown>; before: unknown }
  | { kind: 'delete'; name: string; before: unknown }
  | { kind: 'key-create'; label: string }
  | { kind: 'key-delete'; id: number }
type Outcome = { op: Op; status: number | null; body: any; acked: boolean }

interface Snapshot {
  instances: Map<string, { options: unknown; created: number }>
  keys: Map<number, string>
}

function readDb(dir: string): Snapshot & { integrity: string; pids: number[] } {
  const db = new Database(join(dir, 'llamactl.db'))
  try {
    const integrity = (db.query('PRAGMA integrity_check').get() as { integrity_check: string }).integrity_check
    const instances = new Map(
      (db.query('SELECT name, options, created FROM instances').all() as { name: string; options: string; created: number }[]).map((r) => [
        r.name,
        { options: JSON.parse(r.options), created: r.created },
      ]),
    )
    const keys = new Map((db.query('SELECT id, name FROM api_keys').all() as { id: number; name: string }[]).map((r) => [r.id, r.name]))
    const pids = (db.query('SELECT pid FROM backend_processes').all() as { pid: number }[]).map((r) => r.pid)
    return { integrity, instances, keys, pids }
  } finally {
    db.close()
  }
}

/** A backend process as its command line and the instance log that started it tell. */
function describeBackend(pid: number): string {
  const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ')
  const port = /--port (\d+)/.exec(cmd)?.[1]
  const logs = join(dir, 'logs')
  const log = readdirSync(logs).find((f) => readFileSync(join(logs, f), 'utf8').includes(`--port ${port}`))
  return `pid ${pid} (${cmd.slice(-60)}), started for ${log}:\n${log ? readFileSync(join(logs, log), 'utf8').slice(-1500) : ''}`
}

/** A start that fails because the executable is missing: documented as a kept instance. */
const keptDespiteStart = (status: number, body: any) => status === 500 && typeof body?.error === 'string' && body.error.includes('failed to start')

async function send(r: Running, op: Op): Promise<Outcome> {
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(r.url + path, {
      method,
      headers: body === undefined ? { authorization: AUTH_HEADER } : { authorization: AUTH_HEADER, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    })
    const text = await res.text()
    return { status: res.status, body: text ? JSON.parse(text) : null }
  }
  try {
    let res: { status: number; body: any }
    let acked: boolean
    switch (op.kind) {
      case 'create':
        res = await call('POST', `/api/v1/instances/${op.name}?wait=ready`, op.body)
        acked = res.status === 201 || keptDespiteStart(res.status, res.body)
        break
      case 'update':
        res = await call('PUT', `/api/v1/instances/${op.name}?wait=ready`, op.body)
        acked = res.status === 200 || keptDespiteStart(res.status, res.body)
        break
      case 'delete':
        res = await call('DELETE', `/api/v1/instances/${op.name}`)
        acked = res.status === 204
        break
      case 'key-create':
        res = await call('POST', '/api/v1/auth/keys', { name: op.label })
        acked = res.status === 201
        break
      case 'key-delete':
        res = await call('DELETE', `/api/v1/auth/keys/${op.id}`)
        acked = res.status === 204
        break
    }
    if (!acked) throw new Error(`unexpected answer to ${JSON.stringify(op)}: ${res.status} ${JSON.stringify(res.body)}`)
    return { op, status: res.status, body: res.body, acked }
  } catch (e) {
    if ((e as Error).message.startsWith('unexpected answer')) throw e
    // No answer: llamactl was killed first. The change may or may not have been made.
    return { op, status: null, body: null, acked: false }
  }
}

function plan(round: number, before: Snapshot): Op[] {
  const names = shuffle([...before.instances.keys()])
  // Instances that really run go first, so they do not pile up across rounds.
  const real = names.filter((n) => (before.instances.get(n)!.options as any).command_override === undefined)
  const rest = names.filter((n) => !real.includes(n))
  const ops: Op[] = []
  // At least 40 deletes, more when there are over 120 instances: the population stays about level.
  const deletes = Math.max(40, rest.length - 120)
  for (const name of [...real, ...rest.slice(0, deletes)]) ops.push({ kind: 'delete', name, before: before.instances.get(name)!.options })
  for (const name of rest.slice(deletes, deletes + 60)) {
    ops.push({ kind: 'update', name, before: before.instances.get(name)!.options, body: { command_override: MISSING, backend_options: { model: 'x' }, environment: { TAG: `r${round}-u-${name}` } } })
  }
  for (const id of shuffle([...before.keys.keys()]).slice(0, 10)) ops.push({ kind: 'key-delete', id })
  for (let i = 0; i < 10; i++) ops.push({ kind: 'key-create', label: `r${round}-k${i}` })
  for (let i = 0; ops.length < PER_ROUND; i++) {
    const name = `r${round}-c${i}`
    const body: Record<string, unknown> =
      i < REAL_CREATES
        ? { backend_options: { model: 'x' }, environment: { TAG: name } }
        : { command_override: MISSING, backend_options: { model: 'x' }, environment: { TAG: name } }
    ops.push({ kind: 'create', name, body })
  }
  return shuffle(ops)
}

/** Every acknowledged change is in `after`; every other one is there whole or not at all; nothing else moved. */
function check(before: Snapshot, after: Snapshot, outcomes: Outcome[]) {
  const touched = new Set<string>()
  const touchedKeys = new Set<number>()
  for (const { op, acked, body } of outcomes) {
    switch (op.kind) {
      case 'create': {
        touched.add(op.name)
        const row = after.instances.get(op.name)
        if (acked) expect({ name: op.name, options: row?.options }).toEqual({ name: op.name, options: op.body })
        else if (row) expect({ name: op.name, options: row.options }).toEqual({ name: op.name, options: op.body })
        break
      }
      case 'update': {
        touched.add(op.name)
        const row = after.instances.get(op.name)
        if (acked) expect({ name: op.name, options: row?.options }).toEqual({ name: op.name, options: op.body })
        else expect([JSON.stringify(op.before), JSON.stringify(op.body)]).toContain(JSON.stringify(row?.options))
        break
      }
      case 'delete': {
        touched.add(op.name)
        const row = after.instances.get(op.name)
        if (acked) expect({ name: op.name, there: !!row }).toEqual({ name: op.name, there: false })
        else if (row) expect(row.options).toEqual(op.before)
        break
      }
      case 'key-create':
        if (acked) {
          touchedKeys.add(body.id)
          expect(after.keys.get(body.id)).toBe(op.label)
        }
        break
      case 'key-delete':
        touchedKeys.add(op.id)
        if (acked) expect(after.keys.has(op.id)).toBe(false)
        break
    }
  }
  for (const [name, row] of before.instances) if (!touched.has(name)) expect(after.instances.get(name)).toEqual(row)
  for (const name of after.instances.keys()) if (!before.instances.has(name)) expect(touched.has(name)).toBe(true)
  for (const [id, label] of before.keys) if (!touchedKeys.has(id)) expect(after.keys.get(id)).toBe(label)
  for (const [id, label] of after.keys) if (!before.keys.has(id) && !touchedKeys.has(id)) expect(label).toMatch(/^r\d+-k\d+$/)
}

const dir = tempDir()
const [lo, hi] = portRange()
let current: Running | null = null
afterAll(async () => {
  if (current && current.proc.exitCode === null) await current.stop('SIGTERM')
  // After a failure, end what the killed runs left (their backends listen in this test's port range).
  for (const pid of fakeServerPids()) {
    const port = Number(/--port\0(\d+)/.exec(readFileSync(`/proc/${pid}/cmdline`, 'utf8'))?.[1])
    if (port >= lo && port <= hi) process.kill(pid, 'SIGKILL')
  }
  rmSync(dir, { recursive: true, force: true })
})

test(`${ROUNDS} rounds of ${PER_ROUND} concurrent changes, each ended by a SIGKILL at a random moment: acknowledged changes survive, the database stays sound`, async () => {
  console.log(`[faults] durability: seed ${seed} (FAULT_SEED=${seed} repeats the choices)`)
  const env = { LLAMACTL_STOP_GRACE_PERIOD: '1', LLAMACTL_LOG_REQUESTS: 'false', LLAMACTL_INSTANCE_PORT_RANGE: `${lo}-${hi}` }
  let before: Snapshot = { instances: new Map(), keys: new Map() }
  let window = 0
  const stats = { acked: 0, unanswered: 0, killedAfter: [] as number[], checkMs: [] as number[] }
  for (let round = 0; round < ROUNDS; round++) {
    current = await startLlamactl(dir, { env })
    const r = current
    // What the restarted llamactl shows is what the database held after the last kill.
    const list = (await r.api('GET', '/api/v1/instances')).body as { name: string; options: { environment: Record<string, string> } }[]
    expect(list.map((i) => i.name).sort()).toEqual([...before.instances.keys()].sort())
    for (const i of list) expect(i.options.environment).toEqual((before.instances.get(i.name)!.options as any).environment ?? {})
    const keys = (await r.api('GET', '/api/v1/auth/keys')).body as { id: number; name: string }[]
    expect(new Map(keys.map((k) => [k.id, k.name]))).toEqual(before.keys)

    const ops = plan(round, before)
    const t0 = performance.now()
    const running = Promise.all(ops.map((op) => send(r, op)))
    // Round 0 runs to the end and measures how long a round takes; later rounds are cut at a random moment in it.
    const killAt = round === 0 ? null : killRandom() * window * 1.1
    if (killAt === null) {
      await running
      window = performance.now() - t0
    } else {
      await Bun.sleep(killAt)
    }
    r.proc.kill('SIGKILL')
    await r.proc.exited
    stats.killedAfter.push(performance.now() - t0)
    const outcomes = await running

    const t1 = performance.now()
    const after = readDb(dir)
    expect(after.integrity).toBe('ok')
    // Every backend the killed llamactl left running is recorded, so the next start can end it.
    const unrecorded = fakeServerPids().filter((pid) => !after.pids.includes(pid))
    expect(unrecorded.map((pid) => describeBackend(pid))).toEqual([])
    check(before, after, outcomes)
    stats.checkMs.push(performance.now() - t1)
    stats.acked += outcomes.filter((o) => o.acked).length
    stats.unanswered += outcomes.filter((o) => !o.acked).length
    before = { instances: after.instances, keys: after.keys }
  }
  // One last start: the database opens, and the old run's backends are ended.
  current = await startLlamactl(dir, { env })
  expect(((await current.api('GET', '/api/v1/instances')).body as unknown[]).length).toBe(before.instances.size)
  await current.stop('SIGTERM')
  expect(fakeServerPids()).toEqual([])
  console.log(
    `[faults] durability: ${ROUNDS} rounds, ${stats.acked} changes acknowledged and found, ${stats.unanswered} cut off by the kill; ` +
      `a full round took ${window.toFixed(0)} ms, kills at ${stats.killedAfter.map((t) => t.toFixed(0)).join(', ')} ms; ` +
      `${before.instances.size} instances and ${before.keys.size} keys at the end`,
  )
}, 600000)
