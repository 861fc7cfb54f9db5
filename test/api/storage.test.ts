import { afterEach, describe, expect, test } from 'bun:test'
import { chmodSync, existsSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { Store } from '../../src/store/db'
import { type Harness, harness, tempDir, waitFor } from '../helpers'

// The database refusing writes, without mounting anything: SQLite's own limits stand in for a
// read-only folder (query_only) and a full disk (max_page_count). test/faults/storage.fault.ts
// does the same on real read-only and full file systems.
let h: Harness
afterEach(async () => {
  await h?.close()
})

const snapshot = async () => ({
  api: (await h.json('GET', '/api/v1/instances')).body.map((i: any) => [i.name, i.status, i.options]),
  rows: h.store.listInstances(),
  keys: h.store.listKeys(),
})

/** No room for one more page: the database file may not grow. */
function diskFull() {
  const pages = (h.store.db.query('PRAGMA page_count').get() as { page_count: number }).page_count
  h.store.db.run(`PRAGMA max_page_count = ${pages}`)
}

describe('a database that cannot be written', () => {
  test('disk full: every change answers 507 saying so, and nothing changes', async () => {
    h = await harness()
    expect((await h.json('POST', '/api/v1/instances/a?wait=ready', { backend_options: { model: 'x' } })).status).toBe(201)
    const key = (await h.json('POST', '/api/v1/auth/keys', { name: 'k' })).body
    const before = await snapshot()
    diskFull()
    const pad = { PAD: 'x'.repeat(20000) }
    for (const [method, path, body] of [
      ['POST', '/api/v1/instances/b?wait=ready', { backend_options: { model: 'x' }, environment: pad }],
      ['PUT', '/api/v1/instances/a?wait=ready', { backend_options: { model: 'y' }, environment: pad }],
    ] as const) {
      const res = await h.json(method, path, body)
      expect({ path, status: res.status }).toEqual({ path, status: 507 })
      expect(res.body.error).toContain('cannot save the change: the disk holding')
      expect(res.body.error).toContain('is full; free some space and try again')
    }
    expect(await snapshot()).toEqual(before)
    expect(h.manager.find('b')).toBeUndefined()
    expect(h.manager.get('a').status).toBe('running')
    expect(h.keys.list()).toEqual([{ id: key.id, name: 'k', user_id: 'system', permission_mode: 'allow_all', created_at: key.created_at, updated_at: key.created_at, expires_at: null, last_used_at: null, instances: null }])
  })

  test('read-only: changes answer 500 saying so; a backend still starts and restarts, its unrecorded pid noted', async () => {
    h = await harness()
    expect((await h.json('POST', '/api/v1/instances/a?wait=ready', { backend_options: { model: 'x' }, restart_delay: 0 })).status).toBe(201)
    const before = await snapshot()
    h.store.db.run('PRAGMA query_only = ON')
    for (const [method, path, body] of [
      ['POST', '/api/v1/instances/a/stop'],
      ['DELETE', '/api/v1/instances/a'],
      ['POST', '/api/v1/auth/keys', { name: 'k' }],
    ] as const) {
      const res = await h.json(method, path, body)
      expect({ path, status: res.status }).toEqual({ path, status: 500 })
      expect(res.body.error).toContain('is read-only')
    }
    expect(await snapshot()).toEqual(before)
    // The backend crashes: recording the new pid fails, forgetting the old one fails; neither is fatal.
    const inst = h.manager.get('a')
    process.kill(h.store.backendProcesses()[0]!.pid, 'SIGKILL')
    await waitFor(() => inst.restarts === 1 && inst.status === 'running', 10000)
    expect(inst.log.tail().join('\n')).toContain('is not recorded, so if llamactl is killed its next start will not end this backend')
    expect((await h.request('POST', '/v1/chat/completions', { model: 'a', messages: [] })).status).toBe(200)
    h.store.db.run('PRAGMA query_only = OFF')
  })
})

describe('the database files', () => {
  const mode = (p: string) => (statSync(p).mode & 0o777).toString(8)

  test('are 0600 (the folder it makes 0700) whatever the umask, and an older 0644 database is made 0600', () => {
    const umask = process.umask(0o022)
    try {
      const path = join(tempDir(), 'made', 'llamactl.db')
      const files = [path, `${path}-wal`, `${path}-shm`]
      let store = new Store(path)
      store.insertInstance({ name: 'a', options: JSON.stringify({ environment: { TOKEN: 'x' } }), created: 1, desired: 'stopped' })
      expect(files.map(existsSync)).toEqual([true, true, true])
      expect(files.map(mode)).toEqual(['600', '600', '600'])
      expect(mode(join(path, '..'))).toBe('700')
      store.close()

      for (const f of files) if (existsSync(f)) chmodSync(f, 0o644)
      store = new Store(path)
      store.insertInstance({ name: 'b', options: '{}', created: 1, desired: 'stopped' })
      expect(files.map(mode)).toEqual(['600', '600', '600'])
      store.close()
    } finally {
      process.umask(umask)
    }
  })
})
