/**
 * The embedded store: one SQLite file through bun:sqlite, the only place that writes SQL.
 * WAL with synchronous=FULL: a change is on disk before the API acknowledges it, and every
 * change is one transaction, so a crash at any moment leaves either the old row or the new.
 * A change the database cannot take (a full disk, a read-only folder) fails as a whole with a
 * StorageFailed / InsufficientStorage error that says so.
 */
import { Database } from 'bun:sqlite'
import { InsufficientStorage, StorageFailed } from '../errors'
import { closeSync, existsSync, openSync } from 'node:fs'
import { dirname } from 'node:path'
import { MIGRATIONS } from './migrations'
import { makeDir, makePrivate, PRIVATE_FILE } from './private'

export interface StoredInstance {
  /** Stable and never reused, even after the instance is deleted. */
  id: number
  name: string
  /** The options as the user gave them, JSON. */
  options: string
  created: number
  /** What the user asked for last: started instances come back after a restart of llamactl. */
  desired: 'running' | 'stopped'
  /** The remote node it is on; null: this llamactl. */
  node?: string | null
}

export interface BackendProcessRecord {
  instance: string
  pid: number
  /** Process start time as the OS reports it, so a reused pid is never mistaken for ours. */
  start_time: string
}

export interface StoredKey {
  id: number
  name: string
  /** SHA-256 of the key, hex; the key itself is never stored. */
  hash: string
  created_at: number
  expires_at: number | null
  /** JSON list of instance names, or null for all. */
  instances: string | null
  user_id: string
  updated_at: number
  /** Unix seconds; null: never used. Written in batches, so it may lag by the flush interval. */
  last_used_at: number | null
}

export class Store {
  readonly db: Database
  private q

  constructor(private path: string) {
    if (path !== ':memory:') {
      makeDir(dirname(path))
      // Made 0600 before SQLite sees it (an empty file is a new database); SQLite gives the -wal
      // and -shm files the database's mode. An older llamactl's 0644 files are made 0600 too.
      if (!existsSync(path)) closeSync(openSync(path, 'a', PRIVATE_FILE))
      this.privateFiles()
    }
    this.db = new Database(path, { create: true, strict: true })
    this.db.run('PRAGMA journal_mode = WAL')
    this.db.run('PRAGMA synchronous = FULL')
    this.db.run('PRAGMA busy_timeout = 5000')
    this.db.run('PRAGMA foreign_keys = ON')
    this.migrate()
    if (path !== ':memory:') this.privateFiles()
    this.q = {
      list: this.db.query<StoredInstance, []>('SELECT id, name, options, created, desired FROM instances WHERE node IS NULL ORDER BY created, name'),
      remote: this.db.query<StoredInstance & { node: string }, []>('SELECT id, name, options, created, desired, node FROM instances WHERE node IS NOT NULL ORDER BY id'),
      get: this.db.query<StoredInstance, [string]>('SELECT id, name, options, created, desired FROM instances WHERE name = ?'),
      nextId: this.db.query<{ value: number }, []>("UPDATE counters SET value = value + 1 WHERE name = 'instance_id' RETURNING value"),
      insert: this.db.query('INSERT INTO instances (id, name, options, created, desired, node) VALUES ($id, $name, $options, $created, $desired, $node)'),
      update: this.db.query('UPDATE instances SET options = $options WHERE name = $name'),
      setDesired: this.db.query('UPDATE instances SET desired = $desired WHERE name = $name'),
      remove: this.db.query('DELETE FROM instances WHERE name = ?'),
      count: this.db.query<{ n: number }, []>('SELECT count(*) AS n FROM instances'),
      procs: this.db.query<BackendProcessRecord, []>('SELECT instance, pid, start_time FROM backend_processes'),
      procPut: this.db.query(
        'INSERT INTO backend_processes (instance, pid, start_time) VALUES ($instance, $pid, $start_time) ON CONFLICT(instance) DO UPDATE SET pid = excluded.pid, start_time = excluded.start_time',
      ),
      procRemove: this.db.query('DELETE FROM backend_processes WHERE instance = ? AND pid = ?'),
      keys: this.db.query<StoredKey, []>('SELECT id, name, hash, created_at, expires_at, instances, user_id, updated_at, last_used_at FROM api_keys ORDER BY id'),
      key: this.db.query<StoredKey, [number]>('SELECT id, name, hash, created_at, expires_at, instances, user_id, updated_at, last_used_at FROM api_keys WHERE id = ?'),
      keyInsert: this.db.query<StoredKey, Record<string, string | number | null>>(
        'INSERT INTO api_keys (name, hash, created_at, expires_at, instances, user_id, updated_at, last_used_at) VALUES ($name, $hash, $created_at, $expires_at, $instances, $user_id, $updated_at, $last_used_at) RETURNING id, name, hash, created_at, expires_at, instances, user_id, updated_at, last_used_at',
      ),
      keyUsed: this.db.query('UPDATE api_keys SET last_used_at = max(coalesce(last_used_at, 0), $at) WHERE id = $id'),
      keyDelete: this.db.query('DELETE FROM api_keys WHERE id = ?'),
    }
  }

  private privateFiles() {
    for (const f of [this.path, `${this.path}-wal`, `${this.path}-shm`, `${this.path}-journal`]) makePrivate(f)
  }

  private migrate() {
    const current = this.db.query<{ user_version: number }, []>('PRAGMA user_version').get()!.user_version
    if (current > MIGRATIONS.length) {
      throw new Error(
        `the database was written by a newer llamactl (schema ${current}, this one knows ${MIGRATIONS.length}); upgrade llamactl`,
      )
    }
    for (let v = current; v < MIGRATIONS.length; v++) {
      this.db.transaction(() => {
        this.db.run(MIGRATIONS[v]!)
        this.db.run(`PRAGMA user_version = ${v + 1}`)
      })()
    }
  }

  /** The instances of this llamactl. */
  listInstances(): StoredInstance[] {
    return this.q.list.all()
  }

  /** The instances recorded on remote nodes. */
  listRemoteInstances(): (StoredInstance & { node: string })[] {
    return this.q.remote.all()
  }

  getInstance(name: string): StoredInstance | null {
    return this.q.get.get(name)
  }

  countInstances(): number {
    return this.q.count.get()!.n
  }

  /** Runs one change; a database that cannot take it becomes an error that says why. */
  private write<T>(change: () => T): T {
    try {
      return change()
    } catch (e) {
      const code = String((e as { code?: unknown }).code ?? '')
      const why = (e as Error).message
      let error: Error
      if (code === 'SQLITE_FULL') {
        error = new InsufficientStorage(`cannot save the change: the disk holding ${this.path} is full; free some space and try again`)
      } else if (code.startsWith('SQLITE_READONLY')) {
        error = new StorageFailed(`cannot save the change: the database ${this.path} is read-only (${why}); make the data folder writable`)
      } else if (code.startsWith('SQLITE_IOERR') || code.startsWith('SQLITE_CANTOPEN') || code.startsWith('SQLITE_BUSY')) {
        error = new StorageFailed(`cannot save the change: the database ${this.path} could not be written (${why})`)
      } else {
        throw e
      }
      console.error(`llamactl: ${error.message}`)
      throw error
    }
  }

  /** Stores a new instance and answers the number it was given. */
  insertInstance(row: Omit<StoredInstance, 'id'>): number {
    return this.write(() =>
      this.db.transaction(() => {
        const id = this.q.nextId.get()!.value
        this.q.insert.run({ node: null, ...row, id })
        return id
      })(),
    )
  }

  updateOptions(name: string, options: string) {
    this.write(() => this.q.update.run({ name, options }))
  }

  setDesired(name: string, desired: StoredInstance['desired']) {
    this.write(() => this.q.setDesired.run({ name, desired }))
  }

  deleteInstance(name: string) {
    this.write(() =>
      this.db.transaction(() => {
        this.q.remove.run(name)
      })(),
    )
  }

  backendProcesses(): BackendProcessRecord[] {
    return this.q.procs.all()
  }

  recordBackendProcess(rec: BackendProcessRecord) {
    this.write(() => this.q.procPut.run({ ...rec }))
  }

  forgetBackendProcess(instance: string, pid: number) {
    this.write(() => this.q.procRemove.run(instance, pid))
  }

  listKeys(): StoredKey[] {
    return this.q.keys.all()
  }

  getKey(id: number): StoredKey | null {
    return this.q.key.get(id)
  }

  insertKey(k: Omit<StoredKey, 'id'>): StoredKey {
    return this.write(() => this.q.keyInsert.get({ ...k })!)
  }

  /** Records when keys were last used, all in one transaction. */
  keysUsed(uses: Map<number, number>) {
    if (uses.size === 0) return
    this.write(() =>
      this.db.transaction(() => {
        for (const [id, at] of uses) this.q.keyUsed.run({ id, at })
      })(),
    )
  }

  deleteKey(id: number) {
    this.write(() => this.q.keyDelete.run(id))
  }

  close() {
    this.db.close()
  }
}
