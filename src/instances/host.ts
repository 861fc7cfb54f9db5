/** What each Instance is given of the rest of llamactl: ports, the pid records, metrics, status listeners. */
import type { Config } from '../config/load'
import type { Metrics } from '../metrics/llamactl'
import type { Store } from '../store/db'
import { PortPool } from '../supervisor/ports'
import type { Instance, InstanceHost } from './instance'

export function makeHost(config: Config, store: Store, metrics: Metrics, statusChanged: (inst: Instance) => void): InstanceHost {
  const ports = new PortPool(config.instances.port_range)
  return {
    config,
    acquirePort: (inst) => {
      const wanted = inst.options.backend_options.port
      if (typeof wanted === 'number' && wanted > 0) {
        ports.claim(wanted, inst.name)
        return wanted
      }
      return ports.acquire(inst.lastPort)
    },
    releasePort: (port) => ports.release(port),
    // The backend runs even when its pid cannot be recorded (a full disk must not stop
    // inference); the log says what that risks.
    recordProcess: (inst, proc) => {
      try {
        store.recordBackendProcess({ instance: inst.name, pid: proc.pid, start_time: proc.startTime })
      } catch (e) {
        inst.log.note(`${(e as Error).message}: pid ${proc.pid} is not recorded, so if llamactl is killed its next start will not end this backend`)
      }
    },
    forgetProcess: (inst, proc) => {
      try {
        store.forgetBackendProcess(inst.name, proc.pid)
      } catch {
        // A stale record is harmless: the next start sees the process is gone (or another).
      }
    },
    statusChanged,
    event: (inst, event) => metrics.event(inst.name, event),
  }
}
