/**
 * What the fault suite needs beyond test/helpers.ts and test/system/process.ts: a look at other
 * processes through /proc (open files, sockets, memory, who is still alive), and mounting a
 * small or read-only file system for the storage faults.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs'
import { join } from 'node:path'
import { Store } from '../../src/store/db'
import { processStartTime } from '../../src/supervisor/os-process'
import { FAKE_SERVER } from '../helpers'
import { TEST_KEY } from '../system/process'

export const AUTH_HEADER = `Bearer ${TEST_KEY}`

/** Open file descriptors of a process. */
export function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length
}

/** Sockets among a process's file descriptors. */
export function openSockets(pid: number): number {
  let n = 0
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:')) n++
    } catch {
      // closed while we looked
    }
  }
  return n
}

/** Resident memory of a process, bytes. */
export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kb = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? Number.NaN)
  return kb * 1024
}

/** CPU time a process has used (user + system), seconds. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  // utime and stime are fields 14 and 15, in clock ticks (100 a second on Linux).
  return (Number(fields[11]) + Number(fields[12])) / 100
}

/** Pids of the fake llama-servers this checkout started (others' checkouts run their own). */
export function fakeServerPids(): number[] {
  const pids: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0')
      // Probes (--help, --version, --list-devices) end on their own; they are no backend to record.
      const probe = cmd.some((a) => a === '--help' || a === '--version' || a === '--list-devices')
      if (cmd.includes(FAKE_SERVER) && !probe && processStartTime(Number(entry)) !== null) pids.push(Number(entry))
    } catch {
      // gone
    }
  }
  return pids
}

/** The backend processes llamactl has recorded in the data folder's database (instance → pid). */
export function recordedBackends(dataDir: string): Map<string, number> {
  const store = new Store(join(dataDir, 'llamactl.db'))
  try {
    return new Map(store.backendProcesses().map((r) => [r.instance, r.pid]))
  } finally {
    store.close()
  }
}

/** Runs a command; throws with its output unless it succeeds. */
export function sh(...argv: string[]): string {
  const r = Bun.spawnSync(argv, { stdout: 'pipe', stderr: 'pipe' })
  if (r.exitCode !== 0) throw new Error(`${argv.join(' ')}: exit ${r.exitCode}: ${r.stderr.toString().trim()}`)
  return r.stdout.toString()
}

/** Whether this process may mount file systems (root in a privileged enough container). */
export function canMount(scratch: string): boolean {
  const r = Bun.spawnSync(['mount', '-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', scratch], { stdout: 'pipe', stderr: 'pipe' })
  if (r.exitCode !== 0) return false
  sh('umount', scratch)
  return true
}

/** A Prometheus sample's value from /metrics text, or 0 when absent. */
export function metric(text: string, name: string, labels: Record<string, string>): number {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`)
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue
    const inside = line.slice(name.length + 1, line.lastIndexOf('}'))
    const have = inside.split(',')
    if (want.every((w) => have.includes(w))) return Number(line.slice(line.lastIndexOf(' ') + 1))
  }
  return 0
}
