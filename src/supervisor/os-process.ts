/**
 * What the operating system knows about a process: its start time (to tell our backend from a
 * process that merely reused its pid) and how to signal its whole group.
 */
import { readFileSync } from 'node:fs'

/** The process's start time as an opaque string, or null when no such process exists. */
export function processStartTime(pid: number): string | null {
  try {
    // /proc/<pid>/stat: field 22 is the start time in clock ticks since boot. The command name
    // (field 2) is in parentheses and may contain spaces, so count from the last ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    // A zombie has exited; it only waits to be reaped.
    if (fields[0] === 'Z') return null
    return fields[19] ?? null
  } catch {
    if (process.platform === 'linux') return null
  }
  const ps = Bun.spawnSync(['ps', '-o', 'lstart=', '-p', String(pid)], { stdout: 'pipe', stderr: 'ignore' })
  const out = ps.stdout.toString().trim()
  return ps.exitCode === 0 && out ? out : null
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * Signals the process group led by pid (backends run in their own session). Never the bare pid:
 * once the group is empty the pid may belong to someone else.
 */
export function signalGroup(pid: number, signal: NodeJS.Signals) {
  try {
    process.kill(-pid, signal)
  } catch {
    // the group is gone
  }
}

/**
 * Ends a backend left behind by an earlier llamactl that was killed: only when the pid still
 * belongs to the process we started (same start time). Returns true if it was ours and is gone.
 */
export async function endOrphan(pid: number, startTime: string, graceMs: number): Promise<boolean> {
  if (processStartTime(pid) !== startTime) return false
  signalGroup(pid, 'SIGTERM')
  const deadline = Date.now() + graceMs
  while (Date.now() < deadline) {
    if (processStartTime(pid) !== startTime) {
      // The leader is gone; what it left in its group (a child ignoring SIGTERM) goes too.
      signalGroup(pid, 'SIGKILL')
      return true
    }
    await Bun.sleep(20)
  }
  signalGroup(pid, 'SIGKILL')
  while (processStartTime(pid) === startTime && Date.now() < deadline + 2000) await Bun.sleep(10)
  return true
}
