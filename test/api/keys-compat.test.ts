/** Keys in the original llamactl's shape, last_used_at, and the instances' stable numbers. */
import { Database } from 'bun:sqlite'
import { afterEach, describe, expect, test } from 'bun:test'
import { join } from 'node:path'
import { KeyRing } from '../../src/auth/keys'
import { InstanceManager } from '../../src/instances/manager'
import { MIGRATIONS } from '../../src/store/migrations'
import { Store } from '../../src/store/db'
import { type Harness, harness, tempDir } from '../helpers'

const MGMT = 'mgmt-key-for-tests-0123456789'
const on = { LLAMACTL_REQUIRE_MANAGEMENT_AUTH: 'true', LLAMACTL_REQUIRE_INFERENCE_AUTH: 'true', LLAMACTL_MANAGEMENT_KEYS: MGMT }

let h: Harness | undefined
afterEach(async () => {
  await h?.close()
  h = undefined
})

const as = (key: string) => ({ authorization: `Bearer ${key}` })
async function call(method: string, path: string, body?: unknown, key = MGMT) {
  const res = await h!.request(method, path, body, as(key))
  const text = await res.text()
  return { status: res.status, body: text ? JSON.parse(text) : null }
}
const KEY_FIELDS = ['id', 'name', 'user_id', 'permission_mode', 'expires_at', 'created_at', 'updated_at', 'last_used_at']

describe('instances have a stable number', () => {
  test('given in order, never reused after a delete, kept across restarts', async () => {
    h = await harness()
    const a = await call('POST', '/api/v1/instances/a?wait=ready', { backend_options: { model: 'x' } })
    const b = await call('POST', '/api/v1/instances/b?wait=ready', { backend_options: { model: 'x' } })
    expect([typeof a.body.id, b.body.id - a.body.id]).toEqual(['number', 1])
    expect((await call('GET', '/api/v1/instances/b')).body.id).toBe(b.body.id)
    expect((await call('DELETE', '/api/v1/instances/b')).status).toBe(204)
    const c = await call('POST', '/api/v1/instances/c?wait=ready', { backend_options: { model: 'x' } })
    expect(c.body.id).toBe(b.body.id + 1)
    // Another llamactl on the same database sees the same numbers.
    const again = new InstanceManager(h.config, h.store)
    await again.init()
    expect(again.list().map((i) => [i.name, i.id])).toEqual([['a', a.body.id], ['c', c.body.id]])
    await again.shutdown()
  })

  test('a database from before the numbers gets them in creation order; keys get updated_at', () => {
    const dir = tempDir()
    const path = join(dir, 'old.db')
    const old = new Database(path)
    for (const m of MIGRATIONS.slice(0, 2)) old.run(m)
    old.run('PRAGMA user_version = 2')
    old.run(`INSERT INTO instances (name, options, created, desired) VALUES ('late', '{}', 20, 'stopped'), ('early', '{}', 10, 'stopped'), ('same', '{}', 20, 'stopped')`)
    old.run(`INSERT INTO api_keys (name, hash, created_at, expires_at, instances) VALUES ('k', 'h', 5, NULL, NULL)`)
    old.close()
    const store = new Store(path)
    expect(store.listInstances().map((r) => [r.name, r.id])).toEqual([['early', 1], ['late', 2], ['same', 3]])
    expect(store.insertInstance({ name: 'new', options: '{}', created: 30, desired: 'stopped' })).toBe(4)
    expect(store.listKeys()[0]).toMatchObject({ user_id: 'system', updated_at: 5, last_used_at: null })
    store.close()
  })
})

describe('keys in the original\'s shape', () => {
  test('per_instance with instance_ids: the key may use those instances only; its permissions list them', async () => {
    h = await harness(on)
    const a = await call('POST', '/api/v1/instances/a?wait=ready', { backend_options: { model: 'x' } })
    await call('POST', '/api/v1/instances/b?wait=ready', { backend_options: { model: 'x' } })
    const made = await call('POST', '/api/v1/auth/keys', { name: 'ui key', permission_mode: 'per_instance', instance_ids: [a.body.id] })
    expect(made.status).toBe(201)
    for (const f of [...KEY_FIELDS, 'key']) expect([f, f in made.body]).toEqual([f, true])
    expect(made.body).toMatchObject({ name: 'ui key', user_id: 'system', permission_mode: 'per_instance', expires_at: null, last_used_at: null, instances: ['a'] })
    expect(made.body.updated_at).toBe(made.body.created_at)
    const chat = (model: string) => h!.request('POST', '/v1/chat/completions', { model, messages: [] }, as(made.body.key))
    expect((await chat('a')).status).toBe(200)
    expect((await chat('b')).status).toBe(403)
    expect(await call('GET', `/api/v1/auth/keys/${made.body.id}/permissions`)).toEqual({ status: 200, body: [{ instance_id: a.body.id, instance_name: 'a' }] })
  })

  test('allow_all (with the empty instance_ids the original\'s UI sends) may use every instance; no permissions listed', async () => {
    h = await harness(on)
    await call('POST', '/api/v1/instances/a?wait=ready', { backend_options: { model: 'x' } })
    const made = await call('POST', '/api/v1/auth/keys', { name: 'all', permission_mode: 'allow_all', instance_ids: [] })
    expect(made.status).toBe(201)
    expect(made.body).toMatchObject({ permission_mode: 'allow_all', instances: null })
    expect((await h.request('POST', '/v1/chat/completions', { model: 'a', messages: [] }, as(made.body.key))).status).toBe(200)
    expect(await call('GET', `/api/v1/auth/keys/${made.body.id}/permissions`)).toEqual({ status: 200, body: [] })
    // Our own form still works and answers the same fields.
    const ours = await call('POST', '/api/v1/auth/keys', { name: 'ours', instances: ['a'] })
    expect(ours.body).toMatchObject({ permission_mode: 'per_instance', instances: ['a'] })
    expect((await call('GET', '/api/v1/auth/keys')).body.map((k: { name: string }) => k.name)).toEqual(['all', 'ours'])
  })

  test('400 for what the original refuses, and for a contradiction', async () => {
    h = await harness(on)
    const a = await call('POST', '/api/v1/instances/a?wait=ready', { backend_options: { model: 'x' } })
    const bad = [
      { name: 'k', permission_mode: 'per_instance', instance_ids: [] },
      { name: 'k', permission_mode: 'per_instance', instance_ids: [a.body.id + 100] },
      { name: 'k', permission_mode: 'some' },
      { name: 'k', permission_mode: 'allow_all', instance_ids: [a.body.id] },
      { name: '', permission_mode: 'allow_all' },
      { name: 'k', permission_mode: 'allow_all', expires_at: 1 },
    ]
    for (const body of bad) expect([body, (await call('POST', '/api/v1/auth/keys', body)).status]).toEqual([body, 400])
    expect((await call('GET', '/api/v1/auth/keys/999/permissions')).status).toBe(404)
    expect((await call('GET', '/api/v1/auth/keys')).body).toEqual([])
  })
})

describe('last_used_at', () => {
  test('shown at once after a use, written to the database in a batch, not per request', async () => {
    h = await harness(on)
    await call('POST', '/api/v1/instances/a?wait=ready', { backend_options: { model: 'x' } })
    const made = await call('POST', '/api/v1/auth/keys', { name: 'k' })
    const other = await call('POST', '/api/v1/auth/keys', { name: 'unused' })
    for (let i = 0; i < 5; i++) expect((await h.request('GET', '/v1/models', undefined, as(made.body.key))).status).toBe(200)
    const shown = (await call('GET', `/api/v1/auth/keys/${made.body.id}`)).body.last_used_at
    expect(typeof shown).toBe('number')
    expect(Math.abs(shown - Date.now() / 1000)).toBeLessThan(120)
    expect((await call('GET', `/api/v1/auth/keys/${other.body.id}`)).body.last_used_at).toBeNull()
    // Five requests, no write yet: the row is written when the batch is flushed.
    expect(h.store.getKey(made.body.id)!.last_used_at).toBeNull()
    h.keys.flushUsage()
    expect(h.store.getKey(made.body.id)!.last_used_at).toBe(shown)
    expect(h.store.getKey(other.body.id)!.last_used_at).toBeNull()
    // A later llamactl reads it back.
    const ring = new KeyRing(h.config, h.store)
    expect(ring.get(made.body.id).last_used_at).toBe(shown)
    ring.close()
  })

  test('a refused key is not a use; close() writes what is pending', async () => {
    h = await harness(on)
    await call('POST', '/api/v1/instances/a?wait=ready', { backend_options: { model: 'x' } })
    const made = await call('POST', '/api/v1/auth/keys', { name: 'k', instances: ['a'] })
    // A wrong key is no use of the right one.
    expect((await h.request('POST', '/v1/chat/completions', { model: 'a', messages: [] }, as(made.body.key + 'x'))).status).toBe(401)
    expect((await call('GET', `/api/v1/auth/keys/${made.body.id}`)).body.last_used_at).toBeNull()
    expect((await h.request('POST', '/v1/chat/completions', { model: 'a', messages: [] }, as(made.body.key))).status).toBe(200)
    h.keys.close()
    expect(typeof h.store.getKey(made.body.id)!.last_used_at).toBe('number')
  })
})

