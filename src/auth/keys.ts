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
  | { kind: 'inference'; id: string; instances: Set<string> | null; expiresAt: number | null }

export const KeyViewSchema = T.Object({
  id: T.Integer(),
  name: T.String(),
  created_at: T.Integer({ description: 'unix seconds' }),
  expires_at: T.Union([T.Integer(), T.Null()], { description: 'unix seconds; null: never' }),
  instances: T.Union([T.Array(T.String()), T.Null()], { description: 'instances it may use; null: all' }),
})
export type KeyView = Static<typeof KeyViewSchema>

export const CreateKeySchema = T.Object(
  {
    name: T.String({ minLength: 1, maxLength: 100, description: 'a label for the key' }),
    expires_at: T.Optional(T.Union([T.Integer({ maximum: 253402300799, description: 'unix seconds (at most the end of year 9999)' }), T.Null()])),
    instances: T.Optional(
      T.Union([T.Array(T.String({ pattern: NAME_PATTERN.source }), { maxItems: 1000 }), T.Null()], {
        description: 'instances the key may use; absent or null: all',
      }),
    ),
  },
  { additionalProperties: false },
)
const checkCreate = TypeCompiler.Compile(CreateKeySchema)

export function hashKey(key: string): string {
  return Bun.SHA256.hash(key, 'hex')
}

export function generateKey(prefix: string): string {
  return `${prefix}-${randomBytes(32).toString('base64url')}`
}

export class KeyRing {
  private byHash = new Map<string, Principal>()
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
      if (!this.byHash.has(h)) this.byHash.set(h, { kind: 'inference', id: `config-inference-${i}`, instances: null, expiresAt: null })
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
    return p
  }

  /** Makes an inference key; the secret is in the answer and nowhere else. */
  create(body: unknown): KeyView & { key: string } {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new BadRequest('the request body must be a JSON object')
    if (!checkCreate.Check(body)) {
      const err = checkCreate.Errors(body).First()!
      const field = err.path ? err.path.slice(1).replaceAll('/', '.') : 'body'
      throw new BadRequest(`${field}: ${err.message.toLowerCase()}`)
    }
    const b = body as Static<typeof CreateKeySchema>
    const now = Math.floor(Date.now() / 1000)
    if (b.expires_at != null && b.expires_at <= now) throw new BadRequest('expires_at must be in the future (unix seconds)')
    const key = generateKey('llamactl')
    const row = this.store.insertKey({
      name: b.name,
      hash: hashKey(key),
      created_at: now,
      expires_at: b.expires_at ?? null,
      instances: b.instances ? JSON.stringify([...new Set(b.instances)]) : null,
    })
    this.byHash.set(row.hash, principalOf(row))
    return { ...viewOf(row), key }
  }

  list(): KeyView[] {
    return this.store.listKeys().map(viewOf)
  }

  get(id: number): KeyView {
    const row = this.store.getKey(id)
    if (!row) throw new NotFound(`key ${id} not found`)
    return viewOf(row)
  }

  remove(id: number) {
    const row = this.store.getKey(id)
    if (!row) throw new NotFound(`key ${id} not found`)
    this.store.deleteKey(id)
    this.byHash.delete(row.hash)
  }
}

function principalOf(row: StoredKey): Principal {
  return {
    kind: 'inference',
    id: `key-${row.id}`,
    instances: row.instances ? new Set(JSON.parse(row.instances) as string[]) : null,
    expiresAt: row.expires_at,
  }
}

function viewOf(row: StoredKey): KeyView {
  return {
    id: row.id,
    name: row.name,
    created_at: row.created_at,
    expires_at: row.expires_at,
    instances: row.instances ? (JSON.parse(row.instances) as string[]) : null,
  }
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
