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
]
