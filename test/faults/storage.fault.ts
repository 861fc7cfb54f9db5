/**
 * The data folder read-only or its disk full. llamactl either refuses to start with one line
 * saying why, or runs on: every change it cannot save answers 507 (disk full) with a message
 * that says so and changes nothing, reads and inference go on, a crashed backend is still
 * restarted, the process stays up, and once there is space again everything works and the
 * database passes integrity_check.
 *
 * The disks are real file systems mounted for the test (a 1 MiB tmpfs; a read-only bind mount),
 * which needs root with CAP_SYS_ADMIN; elsewhere these tests are skipped, saying so.
 */
import { Database } from 'bun:sqlite'
import { afterAll, afterEach, describe, expect, test } from 'bun:test'
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { tempDir, waitFor } from '../helpers'
import { type Running, runLlamactl, startLlamactl } from '../system/process'
import { AUTH_HEADER, canMount, recordedBackends, sh } from './util'

const scratch = tempDir('llamactl-storage-')
const mountable = canMount(scratch)
if (!mountable) console.log('[faults] storage: skipped, this process may not mount file systems (needs root with CAP_SYS_ADMIN)')
// Bun keeps a transpiler cache under HOME: keep it off the small disks.
const home = tempDir('llamactl-home-')
const mounts: string[] = []
const started: Running[] = []

function mount(...args: string[]) {
  const target = args.at(-1)!
  sh('mount', ...args)
  mounts.push(target)
}

afterEach(async () => {
  for (const r of started.splice(0)) if (r.proc.exitCode === null) await r.stop('SIGTERM')
  for (const m of mounts.splice(0).reverse()) sh('umount', m)
})
afterAll(() => {
  rmSync(scratch, { recursive: true, force: true })
  rmSync(home, { recursive: true, force: true })
})

async function start(dir: string) {
  const r = await startLlamactl(dir, { env: { HOME: home, LLAMACTL_STOP_GRACE_PERIOD: '1' } })
  started.push(r)
  return r
}

/** Fills the file system holding dir to its last byte. */
function fill(dir: string): string {
  const file = join(dir, 'filler')
  const fd = openSync(file, 'w')
  const block = Buffer.alloc(4096, 1)
  try {
    for (;;) writeSync(fd, block)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e
  } finally {
    closeSync(fd)
  }
  // The last partial block too.
  const small = openSync(file, 'a')
  try {
    for (;;) writeSync(small, Buffer.alloc(64, 1))
  } catch {
    // full
  } finally {
    closeSync(small)
  }
  return file
}

function integrity(dir: string): string {
  const db = new Database(join(dir, 'llamactl.db'))
  try {
    return (db.query('PRAGMA integrity_check').get() as { integrity_check: string }).integrity_check
  } finally {
    db.close()
  }
}

/** What is stored, as the API shows it: instances (name, options) and keys. */
async function stored(r: Running) {
  const instances = ((await r.api('GET', '/api/v1/instances')).body as { name: string; options: unknown }[]).map((i) => [i.name, i.options])
  const keys = (await r.api('GET', '/api/v1/auth/keys')).body
  return { instances, keys }
}

const MISSING = '/nonexistent/llamactl-fault-backend'

describe.skipIf(!mountable)('a read-only data folder', () => {
  test('llamactl refuses to start with one line saying so, and the database is untouched', async () => {
    const dir = join(scratch, 'ro')
    mkdirSync(dir)
    const a = await start(dir)
    expect((await a.api('POST', '/api/v1/instances/kept?wait=ready', { command_override: MISSING })).status).toBe(500)
    expect((await a.api('POST', '/api/v1/auth/keys', { name: 'k' })).status).toBe(201)
    const before = await stored(a)
    await a.stop('SIGTERM')
    const bytes = readFileSync(join(dir, 'llamactl.db'))

    mount('--bind', dir, dir)
    sh('mount', '-o', 'remount,bind,ro', dir)
    const r = await runLlamactl(dir, ['--port', '0'], { HOME: home })
    expect(r.code).toBe(1)
    expect(r.stderr.trim().split('\n')).toHaveLength(1)
    expect(r.stderr).toContain(`cannot write to ${dir} (it is on a read-only file system)`)
    sh('umount', dir)
    mounts.pop()

    expect(readFileSync(join(dir, 'llamactl.db')).equals(bytes)).toBe(true)
    expect(integrity(dir)).toBe('ok')
    const b = await start(dir)
    expect(await stored(b)).toEqual(before)
  })
})

describe.skipIf(!mountable)('a full disk', () => {
  test('changes answer 507 and change nothing; reads, inference and restarts go on; all is well once there is space', async () => {
    const dir = join(scratch, 'full')
    mkdirSync(dir)
    mount('-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir)
    const r = await start(dir)
    expect((await r.api('POST', '/api/v1/instances/real?wait=ready', { backend_options: { model: 'x' }, restart_delay: 0, environment: { FAKE_TOKEN_DELAY_MS: '1' } })).status).toBe(201)
    expect((await r.api('POST', '/api/v1/instances/kept?wait=ready', { command_override: MISSING })).status).toBe(500)
    expect((await r.api('POST', '/api/v1/auth/keys', { name: 'k' })).status).toBe(201)
    const before = await stored(r)
    const filler = fill(dir)

    const full = 'cannot save the change: the disk holding'
    const changes: [string, string, unknown?][] = [
      ['POST', '/api/v1/instances/new?wait=ready', { command_override: MISSING, environment: { PAD: 'x'.repeat(8000) } }],
      ['PUT', '/api/v1/instances/kept?wait=ready', { command_override: `${MISSING}-2`, environment: { PAD: 'x'.repeat(8000) } }],
      ['DELETE', '/api/v1/instances/kept'],
      ['POST', '/api/v1/instances/real/stop'],
      ['POST', '/api/v1/auth/keys', { name: 'another' }],
      ['DELETE', `/api/v1/auth/keys/${before.keys[0].id}`],
    ]
    for (const [method, path, body] of changes) {
      const res = await r.api(method, path, body)
      expect({ method, path, status: res.status }).toEqual({ method, path, status: 507 })
      expect(res.body.error).toContain(full)
      expect(res.body.error).toContain('free some space')
    }
    expect(await stored(r)).toEqual(before)
    expect((await r.api('GET', '/api/v1/instances/real')).body.status).toBe('running')

    // Inference does not need the disk.
    const stream = await fetch(`${r.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: AUTH_HEADER },
      body: JSON.stringify({ model: 'real', stream: true, max_tokens: 20, messages: [] }),
    })
    expect(await stream.text()).toContain('[DONE]')

    // A crash while the disk is full: restarted as usual; the unrecordable pid is noted, not fatal.
    process.kill(recordedBackends(dir).get('real')!, 'SIGKILL')
    await waitFor(async () => {
      const v = (await r.api('GET', '/api/v1/instances/real')).body
      return v.restarts === 1 && v.status === 'running'
    }, 10000, 50)
    const logs = (await r.api('GET', '/api/v1/instances/real/logs')).body as string
    expect(logs).toContain('is not recorded, so if llamactl is killed its next start will not end this backend')
    expect(r.proc.exitCode).toBeNull()

    // Space again: changes work, and the database is sound.
    rmSync(filler)
    expect((await r.api('POST', '/api/v1/instances/new?wait=ready', { command_override: MISSING })).status).toBe(500)
    expect((await r.api('GET', '/api/v1/instances/new')).body.status).toBe('failed')
    expect((await r.api('POST', '/api/v1/auth/keys', { name: 'another' })).status).toBe(201)
    expect((await r.api('POST', '/api/v1/instances/real/restart?wait=ready')).body.status).toBe('running')
    expect(recordedBackends(dir).has('real')).toBe(true)
    await r.stop('SIGTERM')
    expect(integrity(dir)).toBe('ok')
  })

  test('a fresh data folder on a full disk: llamactl refuses to start with one line', async () => {
    const dir = join(scratch, 'fresh')
    mkdirSync(dir)
    // mode 0700: a tmpfs root is 1777, which llamactl would warn about on a line of its own
    mount('-t', 'tmpfs', '-o', 'size=256k,mode=0700', 'tmpfs', dir)
    fill(dir)
    const r = await runLlamactl(dir, ['--port', '0'], { HOME: home })
    expect(r.code).toBe(1)
    expect(r.stderr.trim().split('\n')).toHaveLength(1)
    expect(r.stderr).toMatch(/^llamactl: cannot open the database .*llamactl\.db: (database or disk is full|disk I\/O error)/)
  })
})
