/**
 * Ports for instances from the configured range: never one another instance holds, never one
 * already bound on the machine (by anyone).
 */
import { Conflict } from '../errors'

export class PortPool {
  private taken = new Set<number>()
  private next: number

  constructor(private range: [number, number]) {
    this.next = range[0]
  }

  /**
   * A free port, reserved until release(): `preferred` (the instance's last port) while it is in
   * the range and free, so an instance keeps its port across restarts; else the next free one,
   * scanning round-robin so a port another instance just freed is not reused at once.
   */
  acquire(preferred: number | null = null): number {
    const [lo, hi] = this.range
    if (preferred !== null && preferred >= lo && preferred <= hi && !this.taken.has(preferred) && isFree(preferred)) {
      this.taken.add(preferred)
      return preferred
    }
    const size = hi - lo + 1
    for (let i = 0; i < size; i++) {
      const port = lo + ((this.next - lo + i) % size)
      if (this.taken.has(port) || !isFree(port)) continue
      this.taken.add(port)
      this.next = port + 1 > hi ? lo : port + 1
      return port
    }
    throw new Conflict(`no free port in instances.port_range ${lo}-${hi}; widen the range or stop an instance`)
  }

  /** Reserves a port the user chose; refuses one another instance holds or that is bound. */
  claim(port: number, instance: string) {
    if (this.taken.has(port)) throw new Conflict(`port ${port} is already used by another instance`)
    if (!isFree(port)) throw new Conflict(`port ${port} for instance ${instance} is already in use on this machine`)
    this.taken.add(port)
  }

  release(port: number) {
    this.taken.delete(port)
  }
}

/** True when nothing listens on the port, on loopback or on every interface. */
export function isFree(port: number): boolean {
  for (const hostname of ['127.0.0.1', '0.0.0.0']) {
    try {
      const probe = Bun.listen({ hostname, port, socket: { data() {} } })
      probe.stop(true)
    } catch {
      return false
    }
  }
  return true
}
