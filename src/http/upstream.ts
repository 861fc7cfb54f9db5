/** What forwarding needs to know about an instance's backend. */
import { backendFor } from '../backends'
import type { Config } from '../config/load'
import type { Instance } from '../instances/instance'

/** The backend's own API key (llama-server --api-key), sent instead of the client's llamactl key. */
export function backendKey(inst: Instance): string | null {
  const k = inst.options.backend_options.api_key
  return typeof k === 'string' && k ? k : null
}

/** server.response_headers, then the backend's response_headers. */
export function backendResponseHeaders(config: Config, inst: Instance): Record<string, string> {
  const backend = config.backends[backendFor(inst.options.backend_type).configKey]
  return { ...config.server.response_headers, ...backend.response_headers }
}
