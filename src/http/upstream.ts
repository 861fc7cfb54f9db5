/** What forwarding needs to know about an instance's backend. */
import { backendFor } from '../backends'
import type { Config } from '../config/load'
import type { Instance } from '../instances/instance'

/**
 * The backend's own API key, sent instead of the client's llamactl key: llama-server's
 * --api-key (several keys comma-separated: the first) or vLLM's (a list: the first).
 */
export function backendKey(inst: Instance): string | null {
  const k = inst.options.backend_options.api_key
  const first = Array.isArray(k) ? k[0] : typeof k === 'string' ? k.split(',')[0] : undefined
  return typeof first === 'string' && first ? first : null
}

/** The backend's response_headers (server.response_headers go on every answer, in app.ts). */
export function backendResponseHeaders(config: Config, inst: Instance): Record<string, string> {
  return config.backends[backendFor(inst.options.backend_type).configKey].response_headers
}
