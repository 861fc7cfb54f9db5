/**
 * Schema migrations, applied in order; the database's user_version says how many have run.
 * Append only: never edit a migration that has shipped.
 */
export const MIGRATIONS: string[] = [
  `CREATE TABLE instances (
     name    TEXT PRIMARY KEY NOT NULL,
     options TEXT NOT NULL,
     created INTEGER NOT NULL,
     desired TEXT NOT NULL CHECK (desired IN ('running', 'stopped'))
   ) STRICT;
   CREATE TABLE backend_processes (
     instance   TEXT PRIMARY KEY NOT NULL,
     pid        INTEGER NOT NULL,
     start_time TEXT NOT NULL
   ) STRICT;`,
  `CREATE TABLE api_keys (
     id         INTEGER PRIMARY KEY AUTOINCREMENT,
     name       TEXT NOT NULL,
     hash       TEXT NOT NULL UNIQUE,
     created_at INTEGER NOT NULL,
     expires_at INTEGER,
     instances  TEXT
   ) STRICT;`,
  // A stable number per instance, as the original llamactl gives (its keys and web UI name
  // instances by it). Numbers are never reused: a counter, not max(id) + 1.
  `ALTER TABLE instances ADD COLUMN id INTEGER;
   UPDATE instances SET id = (
     SELECT count(*) FROM instances AS o
     WHERE o.created < instances.created OR (o.created = instances.created AND o.name <= instances.name)
   );
   CREATE UNIQUE INDEX instances_id ON instances (id);
   CREATE TABLE counters (
     name  TEXT PRIMARY KEY NOT NULL,
     value INTEGER NOT NULL
   ) STRICT;
   INSERT INTO counters (name, value) VALUES ('instance_id', (SELECT coalesce(max(id), 0) FROM instances));`,
  // The original's key fields: its owner (always "system" there too), when it last changed and
  // when it was last used (written in batches, see auth/keys.ts).
  `ALTER TABLE api_keys ADD COLUMN user_id TEXT NOT NULL DEFAULT 'system';
   ALTER TABLE api_keys ADD COLUMN updated_at INTEGER;
   ALTER TABLE api_keys ADD COLUMN last_used_at INTEGER;
   UPDATE api_keys SET updated_at = created_at;`,
  // Instances on remote nodes are recorded here too, with the node's name (NULL: this llamactl),
  // so the main node lists them after a restart and names stay unique across nodes.
  `ALTER TABLE instances ADD COLUMN node TEXT;`,
]
