/**
 * API keys: management keys (config, or one generated on first start), inference keys (config,
 * or made through the API and stored as hashes). Keys are long random strings, so a fast hash
 * is right: checking a key is one SHA-256 and one map lookup, whatever the number of keys, and
 * the lookup is on hashes, so its timing says nothing about a stored secret.
 */
import { randomBytes } from 'node:crypto'
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { type Static, Type as T } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import type { Config } from '../config/load'
import { BadRequest, NotFound } from '../errors'
import { FailureLimit } from './failures'
import { NAME_PATTERN } from '../instances/options'
import type { StoredKey, Store } from '../store/db'

export type Principal =
  | { kind: 'management'; id: string }
  | { kind: 'metrics'; id: string }
  | { kind: 'inference'; id: string; instances: Set<string> | null; expiresAt: number | null; /** the stored key's row; null: from the config */ keyId: number | null }

export const PERMISSION_MODES = ['allow_all', 'per_instance'] as const

export const KeyViewSchema = T.Object({
  id: T.Integer(),
  name: T.String(),
  user_id: T.String({ description: 'always "system" (the original\'s field; there are no users)' }),
  permission_mode: T.Union(PERMISSION_MODES.map((m) => T.Literal(m)), { description: 'allow_all: every instance; per_instance: those in `instances`' }),
  created_at: T.Integer({ description: 'unix seconds' }),
  updated_at: T.Integer({ description: 'unix seconds' }),
  expires_at: T.Union([T.Integer(), T.Null()], { description: 'unix seconds; null: never' }),
  last_used_at: T.Union([T.Integer(), T.Null()], { description: 'unix seconds of its last accepted request; null: never used' }),
  instances: T.Union([T.Array(T.String()), T.Null()], { description: 'instances it may use; null: all' }),
})
export type KeyView = Static<typeof KeyViewSchema>

/** Both forms: ours (`instances`, by name) and the original's (`permission_mode`, `instance_ids`). */
export const CreateKeySchema = T.Object(
  {
    name: T.String({ minLength: 1, maxLength: 100, description: 'a label for the key' }),
    expires_at: T.Optional(T.Union([T.Integer({ maximum: 253402300799, description: 'unix seconds (at most the end of year 9999)' }), T.Null()])),
    instances: T.Optional(
      T.Union([T.Array(T.String({ pattern: NAME_PATTERN.source }), { maxItems: 1000 }), T.Null()], {
        description: 'instances the key may use, by name; absent or null: all',
      }),
    ),
    permission_mode: T.Optional(T.Union(PERMISSION_MODES.map((m) => T.Literal(m)), { description: 'the original\'s form: allow_all, or per_instance with instance_ids' })),
    instance_ids: T.Optional(T.Array(T.Integer({ minimum: 0 }), { maxItems: 1000, description: 'the original\'s form: instances by their `id`' })),
  },
  { additionalProperties: false },
)

/** Instance names and numbers, as key creation needs them. */
export interface InstanceIndex {
  nameOf(id: number): string | undefined
  exists(name: string): boolean
}

/** How often the times keys were last used are written to the database, at most. */
export const KEY_USE_FLUSH_MS = 30_000

const checkCreate = TypeCompiler.Compile(CreateKeySchema)

export function hashKey(key: string): string {
  return Bun.SHA256.hash(key, 'hex')
}

export function generateKey(prefix: string): string {
  return `${prefix}-${randomBytes(32).toString('base64url')}`
}

export class KeyRing {
  private byHash = new Map<string, Principal>()
  /** Last accepted use per stored key (unix seconds), and the uses not yet written. */
  private lastUsed = new Map<number, number>()
  private unflushed = new Map<number, number>()
  private flushTimer: ReturnType<typeof setTimeout> | null = null
  /** Set when llamactl generated the management key: where it is. */
  readonly generatedKeyFile: string | null = null
  /** Failed sign-ins and wrong keys per client address (see failures.ts). */
  readonly failures: FailureLimit

  constructor(
    private config: Config,
    private store: Store,
  ) {
    const a = config.auth
    this.failures = new FailureLimit(a)
    let managementKeys = a.management_keys
    if (a.require_management_auth && managementKeys.length === 0) {
      const file = join(config.data_dir, 'management.key')
      this.generatedKeyFile = file
      managementKeys = [loadOrCreateKeyFile(file)]
    }
    managementKeys.forEach((k, i) => this.byHash.set(hashKey(k), { kind: 'management', id: `config-management-${i}` }))
    a.inference_keys.forEach((k, i) => {
      const h = hashKey(k)
      if (!this.byHash.has(h)) this.byHash.set(h, { kind: 'inference', id: `config-inference-${i}`, instances: null, expiresAt: null, keyId: null })
    })
    for (const row of store.listKeys()) this.byHash.set(row.hash, principalOf(row))
    if (config.metrics.key) {
      const h = hashKey(config.metrics.key)
      if (!this.byHash.has(h)) this.byHash.set(h, { kind: 'metrics', id: 'config-metrics' })
    }
  }

  /**
   * The principal for a bearer key, or null when it is unknown or expired. The lookup is on the
   * key's SHA-256, so how long it takes says nothing about any stored key.
   */
  authenticate(key: string): Principal | null {
    const p = this.byHash.get(hashKey(key))
    if (!p) return null
    if (p.kind === 'inference' && p.expiresAt !== null && p.expiresAt * 1000 <= Date.now()) return null
    if (p.kind === 'inference' && p.keyId !== null) this.noteUse(p.keyId)
    return p
  }

  /** Makes an inference key; the secret is in the answer and nowhere else. */
  create(body: unknown, index: InstanceIndex): KeyView & { key: string } {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new BadRequest('the request body must be a JSON object')
    if (!checkCreate.Check(body)) {
      const err = checkCreate.Errors(body).First()!
      const field = err.path ? err.path.slice(1).replaceAll('/', '.') : 'body'
      throw new BadRequest(`${field}: ${err.message.toLowerCase()}`)
    }
    const b = body as Static<typeof CreateKeySchema>
    const now = Math.floor(Date.now() / 1000)
    if (b.expires_at != null && b.expires_at <= now) throw new BadRequest('expires_at must be in the future (unix seconds)')
    const instances = allowedInstances(b, index)
    const key = generateKey('llamactl')
    const row = this.store.insertKey({
      name: b.name,
      hash: hashKey(key),
      created_at: now,
      expires_at: b.expires_at ?? null,
      instances: instances ? JSON.stringify(instances) : null,
      user_id: 'system',
      updated_at: now,
      last_used_at: null,
    })
    this.byHash.set(row.hash, principalOf(row))
    return { ...this.viewOf(row), key }
  }

  list(): KeyView[] {
    return this.store.listKeys().map((row) => this.viewOf(row))
  }

  get(id: number): KeyView {
    const row = this.store.getKey(id)
    if (!row) throw new NotFound(`key ${id} not found`)
    return this.viewOf(row)
  }

  /**
   * Notes that a stored key was just accepted. The request path only sets a map entry; the
   * database is written by flushUsage, at most every KEY_USE_FLUSH_MS for all keys used meanwhile.
   */
  private noteUse(id: number) {
    const at = Math.floor(Date.now() / 1000)
    this.lastUsed.set(id, at)
    this.unflushed.set(id, at)
    if (!this.flushTimer) {
      this.flushTimer = setTimeout(() => {
        this.flushTimer = null
        this.flushUsage()
      }, KEY_USE_FLUSH_MS)
      this.flushTimer.unref?.()
    }
  }

  /** Writes the pending last-used times in one transaction (also at shutdown). */
  flushUsage() {
    if (this.unflushed.size === 0) return
    const batch = this.unflushed
    this.unflushed = new Map()
    try {
      this.store.keysUsed(batch)
    } catch {
      // Not saved (a full disk): kept in memory and tried again with the next batch.
      for (const [id, at] of batch) if (!this.unflushed.has(id)) this.unflushed.set(id, at)
    }
  }

  /** Flushes and stops the timer; the ring still answers after this but writes nothing more on its own. */
  close() {
    if (this.flushTimer) clearTimeout(this.flushTimer)
    this.flushTimer = null
    this.flushUsage()
  }

  private viewOf(row: StoredKey): KeyView {
    const used = Math.max(row.last_used_at ?? 0, this.lastUsed.get(row.id) ?? 0)
    return {
      id: row.id,
      name: row.name,
      user_id: row.user_id,
      permission_mode: row.instances ? 'per_instance' : 'allow_all',
      created_at: row.created_at,
      updated_at: row.updated_at ?? row.created_at,
      expires_at: row.expires_at,
      last_used_at: used || null,
      instances: row.instances ? (JSON.parse(row.instances) as string[]) : null,
    }
  }

  remove(id: number) {
    const row = this.store.getKey(id)
    if (!row) throw new NotFound(`key ${id} not found`)
    this.store.deleteKey(id)
    this.byHash.delete(row.hash)
    this.lastUsed.delete(id)
    this.unflushed.delete(id)
  }
}

function principalOf(row: StoredKey): Principal {
  return {
    kind: 'inference',
    id: `key-${row.id}`,
    instances: row.instances ? new Set(JSON.parse(row.instances) as string[]) : null,
    expiresAt: row.expires_at,
    keyId: row.id,
  }
}

/**
 * The instances a new key may use, by name (null: all), from either form. Permissions are kept
 * by name, as our own keys always were: a number given is turned into its instance's name now.
 */
function allowedInstances(b: Static<typeof CreateKeySchema>, index: InstanceIndex): string[] | null {
  const names = b.instances ?? null
  const ids = b.instance_ids ?? []
  if (b.permission_mode === 'allow_all') {
    if ((names && names.length) || ids.length) throw new BadRequest('permission_mode allow_all takes no instances or instance_ids; use per_instance to limit the key')
    return null
  }
  const out: string[] = []
  for (const n of names ?? []) {
    if (!index.exists(n)) throw new BadRequest(`instances: no instance named ${JSON.stringify(n)}`)
    out.push(n)
  }
  for (const id of ids) {
    const n = index.nameOf(id)
    if (n === undefined) throw new BadRequest(`instance_ids: no instance has id ${id}`)
    out.push(n)
  }
  const limited = b.permission_mode === 'per_instance' || names !== null || ids.length > 0
  if (!limited) return null
  if (b.permission_mode === 'per_instance' && out.length === 0) {
    throw new BadRequest('permission_mode per_instance needs at least one instance in instance_ids (or instances)')
  }
  return [...new Set(out)]
}

/** Reads the generated management key, or makes one (mode 0600). */
function loadOrCreateKeyFile(file: string): string {
  if (existsSync(file)) {
    const key = readFileSync(file, 'utf8').trim()
    if (key.length >= 16) return key
  }
  const key = generateKey('llamactl-mgmt')
  writeFileSync(file, `${key}\n`, { mode: 0o600 })
  chmodSync(file, 0o600)
  return key
}
