/**
 * What llamactl does at start-up, before it serves: end the backends a killed llamactl left
 * behind, and read back the stored instances; and what a delete leaves to clear (log files).
 */
import { BACKEND_TYPES, backendFor } from '../backends'
import type { Config } from '../config/load'
import type { Store } from '../store/db'
import { rmSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { presetPath } from '../models/router'
import { rotatedNames } from '../supervisor/log-sink'
import { endOrphan } from '../supervisor/os-process'
import { parseOptions, type InstanceOptionsInput } from './options'

export interface Stored {
  id: number
  name: string
  input: InstanceOptionsInput
  created: number
  running: boolean
}

/** Ends orphans (returns how many) and answers the stored instances this version can read. */
export async function readBack(config: Config, store: Store): Promise<{ orphansEnded: number; stored: Stored[] }> {
  // What each configured backend binary understands, read once before anything is started.
  await Promise.all(BACKEND_TYPES.map((t) => {
    const b = backendFor(t)
    const bc = config.backends[b.configKey]
    return bc.docker.enabled ? Promise.resolve() : b.learnFlags(bc.command, bc.args)
  }))
  let orphansEnded = 0
  const grace = config.instances.stop_grace_period * 1000
  await Promise.all(
    store.backendProcesses().map(async (rec) => {
      if (await endOrphan(rec.pid, rec.start_time, grace)) orphansEnded++
      try {
        store.forgetBackendProcess(rec.instance, rec.pid)
      } catch {
        // ended all the same; the stale record is harmless
      }
    }),
  )
  const stored: Stored[] = []
  for (const row of store.listInstances()) {
    try {
      stored.push({ id: row.id, name: row.name, input: parseOptions(JSON.parse(row.options)), created: row.created, running: row.desired === 'running' })
    } catch (e) {
      console.error(`llamactl: stored instance ${row.name} has options this version cannot read (${(e as Error).message}); it is left out`)
    }
  }
  return { orphansEnded, stored }
}

/**
 * A deleted instance's files: its logs, rotated ones included, and its folder under
 * instances_dir (a router preset); a failure is said, never thrown (the instance is gone).
 */
export function removeFiles(config: Config, name: string) {
  const file = join(config.instances.logs_dir, `${name}.log`)
  try {
    rmSync(file, { force: true })
    for (let i = 1; i <= config.instances.log_rotation_max_files; i++) for (const n of rotatedNames(file, i)) rmSync(n, { force: true })
    rmSync(dirname(presetPath(config, name)), { recursive: true, force: true })
  } catch (e) {
    console.error(`llamactl: instance ${name} is deleted, but not all its files: ${(e as Error).message}`)
  }
}
