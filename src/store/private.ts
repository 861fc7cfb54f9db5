/**
 * What llamactl writes is for its own user only: files 0600, folders 0700, whatever the umask
 * and whatever mode an older llamactl left (the database holds instance api_keys and
 * environments in clear; logs hold what backends print).
 */
import { accessSync, chmodSync, constants, mkdirSync, statSync } from 'node:fs'

export const PRIVATE_FILE = 0o600
export const PRIVATE_DIR = 0o700

/** Makes a file private if it exists. Best effort: a read-only disk or a file of another owner stays as it is. */
export function makePrivate(path: string, mode = PRIVATE_FILE) {
  try {
    chmodSync(path, mode)
  } catch {
    // missing (nothing to protect), or not ours to change: llamactl still runs
  }
}

/** Creates a folder (and missing parents, 0700) when it is missing; makes one it created 0700 despite the umask. */
export function makeDir(dir: string) {
  if (mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR }) !== undefined) makePrivate(dir, PRIVATE_DIR)
}

/**
 * Creates a folder llamactl keeps its data in if needed, makes it 0700 and checks it can write
 * there (throws the fs error otherwise). Returns a warning line when the folder was open to
 * other users, saying whether that is fixed; null when it was private already.
 */
export function privateDir(dir: string, what: string): string | null {
  makeDir(dir)
  accessSync(dir, constants.W_OK)
  const before = statSync(dir).mode & 0o777
  if ((before & 0o077) === 0) return null
  const was = `0${before.toString(8)}`
  try {
    chmodSync(dir, PRIVATE_DIR)
    return `llamactl: warning: the ${what} ${dir} was open to other users (mode ${was}); it is 0700 now (it holds instance api_keys, environments and logs)`
  } catch (e) {
    return `llamactl: warning: the ${what} ${dir} is open to other users (mode ${was}) and could not be made 0700 (${(e as Error).message}); they can read instance api_keys, environments and logs there`
  }
}
