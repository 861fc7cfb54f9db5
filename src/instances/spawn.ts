/**
 * Bringing a backend process into being for an instance: its port, its command line (or
 * container) and the spawn. A failure releases the port and is thrown as the reason.
 */
import { backendFor } from '../backends'
import { shownArgv } from '../backends/mask'
import { backendKey } from '../http/upstream'
import { BackendProcess } from '../supervisor/backend-process'
import { removeStaleContainer, stopContainer } from '../supervisor/container'
import type { Instance } from './instance'
import { presetArgs } from '../models/router'
import { launchPlan } from './launch'
import type { InstanceOptions } from './options'

export interface Spawned {
  proc: BackendProcess
  healthUrl: string
}

/** Spawns the backend; it is not ready yet. The port is the instance's from here until it exits or this throws. */
export async function spawnBackend(inst: Instance): Promise<Spawned> {
  const { host, options } = inst
  const backend = backendFor(options.backend_type)
  const bc = host.config.backends[backend.configKey]
  const port = host.acquirePort(inst)
  inst.port = port
  const healthUrl = `http://${connectHost(options)}:${port}${backend.healthPath}`
  try {
    if (!options.docker_enabled) await backend.learnFlags(options.command_override ?? bc.command, bc.args)
    const { argv, env, container } = launchPlan(inst.name, options, bc, { host: bindHost(options), port }, process.env)
    // A router instance's presets, as a file llama-server reads (see models/router.ts).
    argv.push(...presetArgs(host.config, inst.name, options))
    let onStop: ((graceMs: number) => Promise<void>) | undefined
    if (container) {
      await removeStaleContainer(container, env)
      onStop = (graceMs) => stopContainer(container, graceMs, env, (line) => inst.log.note(line))
    }
    inst.log.note(`starting: ${shownArgv(argv, backend.table)}`)
    return { proc: BackendProcess.spawn({ argv, env, healthUrl, onStop }, inst.log), healthUrl }
  } catch (e) {
    inst.releasePort()
    inst.log.note((e as Error).message)
    throw e
  }
}

/** Where the backend listens: its own `host` option, else loopback only. */
export function bindHost(o: InstanceOptions): string {
  return typeof o.backend_options.host === 'string' ? o.backend_options.host : '127.0.0.1'
}

/** Where llamactl reaches it: loopback when it listens on every interface. */
export function connectHost(o: InstanceOptions): string {
  const h = bindHost(o)
  if (h === '0.0.0.0' || h === '' || h === '::') return '127.0.0.1'
  return h.includes(':') ? `[${h}]` : h
}

/**
 * Asks the ready backend how many requests it decodes at once (llama-server's /props), for
 * max_concurrent_requests' default. Off the start's path: until it answers, or if it cannot,
 * the instance has no limit of its own. Answers for this process only (a later start asks again).
 */
export async function learnSlots(inst: Instance, proc: BackendProcess): Promise<void> {
  const slots = backendFor(inst.options.backend_type).slots
  if (!slots || inst.port === null) return
  const key = backendKey(inst)
  try {
    const res = await fetch(`http://${connectHost(inst.options)}:${inst.port}${slots.path}`, {
      headers: key ? { authorization: `Bearer ${key}` } : {},
      signal: AbortSignal.timeout(5000),
    })
    const n = res.ok ? slots.read(await res.json()) : null
    if (n !== null && inst.proc === proc) inst.slots = n
  } catch {
    // It cannot say: no limit of its own.
  }
}
