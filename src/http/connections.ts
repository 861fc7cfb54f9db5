/**
 * Bounding idle keep-alive connections. Bun.serve (1.4.5) has no connection limit, no count of
 * open connections and no hook when one is accepted; what it has is closeIdleConnections(),
 * which closes every connection that has finished its requests and is not serving one. So
 * llamactl counts its own file descriptors (client sockets are most of them) once a second, and
 * past server.max_open_files closes the idle keep-alive connections; clients simply reconnect.
 *
 * Not covered, because Bun gives no handle on them: connections that have sent nothing, or
 * only part of a request's head. Those are closed by the server's idle timeout alone.
 */
import { readdirSync, readFileSync } from 'node:fs'
import type { Logger } from '../log'

export interface IdleCloser {
  closeIdleConnections(): number
}

/** The soft RLIMIT_NOFILE (Bun raises it to the hard limit at start), or null when unknown. */
export function openFilesLimit(): number | null {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'))
    const soft = line?.split(/\s{2,}/)[1]
    return soft && /^\d+$/.test(soft) ? Number(soft) : null
  } catch {
    return null
  }
}

/**
 * server.max_open_files, with 0 meaning 80 % of the open-files limit (1024 if unknown) and at
 * most 8192: under systemd the hard limit is often 524288, and that many idle connections is
 * no bound at all. Only idle connections are closed past it, so a low bound costs reconnects.
 */
export function openFilesBound(configured: number): number {
  if (configured > 0) return configured
  return Math.min(8192, Math.floor((openFilesLimit() ?? 1024) * 0.8))
}

/** Open file descriptors of this process; Infinity when they cannot even be listed (EMFILE). */
export function openFiles(): number {
  try {
    return readdirSync('/proc/self/fd').length
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EMFILE' || (e as NodeJS.ErrnoException).code === 'ENFILE' ? Infinity : Number.NaN
  }
}

/**
 * Checks every `intervalMs`; returns a function that stops the checks. Warns at most once a
 * minute, with how many connections were closed since the last warning.
 */
export function guardIdleConnections(server: IdleCloser, bound: number, logger: Logger, intervalMs = 1000, count = openFiles): () => void {
  let closedSinceWarning = 0
  let lastWarning = 0
  const timer = setInterval(() => {
    const open = count()
    if (!(open > bound)) return
    closedSinceWarning += server.closeIdleConnections()
    if (Date.now() - lastWarning >= 60_000) {
      logger.warn(`${open} open files, more than server.max_open_files (${bound}): closed ${closedSinceWarning} idle keep-alive connection(s)`)
      lastWarning = Date.now()
      closedSinceWarning = 0
    }
  }, intervalMs)
  timer.unref?.()
  return () => clearInterval(timer)
}
