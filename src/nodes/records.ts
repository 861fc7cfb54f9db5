/**
 * A remote instance as the main node keeps it: its row (number, name, node, options) and what
 * its node last said of it; and the instance as the API answers it, `unknown` while its node
 * cannot say.
 */
import type { InstanceOptions, InstanceOptionsInput, InstanceView } from '../instances/options'
import type { NodeView } from './client'
import type { NodeState } from './registry'

export interface RemoteRecord {
  id: number
  name: string
  node: string
  input: InstanceOptionsInput
  created: number
  /** What the node last answered for it; null: nothing yet since start-up. */
  last: NodeView | null
  /** The node answered, and does not have it. */
  missing: boolean
}

const STATE_OF: Record<string, InstanceView['state']> = { restarting: 'starting', shutting_down: 'stopping' }

/** The record as the API answers it; `node` undefined: not configured any more. */
export function viewOf(r: RemoteRecord, node: NodeState | undefined): InstanceView {
  const why = unknownWhy(r, node)
  const last = r.last
  const options = { ...((last?.options ?? r.input) as Partial<InstanceOptions>), nodes: [r.node] } as InstanceOptions
  return {
    id: r.id,
    name: r.name,
    status: why ? 'unknown' : (last?.status ?? 'stopped'),
    state: why ? 'unknown' : (last?.state ?? STATE_OF[last?.status ?? ''] ?? (last?.status as InstanceView['state']) ?? 'stopped'),
    node: r.node,
    created: r.created,
    options,
    port: last?.port ?? null,
    restarts: last?.restarts ?? 0,
    error: why ?? last?.error ?? null,
    // The node's own numbers: its process, its requests (those through this llamactl and any other).
    pid: why ? null : (last?.pid ?? null),
    uptime: why ? null : (last?.uptime ?? null),
    last_request: last?.last_request ?? null,
    requests: why || !last?.requests ? { in_flight: 0, queued: 0, max_concurrent: 0 } : last.requests,
  }
}

/** Why its state is not known now, or null when it is. */
function unknownWhy(r: RemoteRecord, node: NodeState | undefined): string | null {
  const label = `node ${JSON.stringify(r.node)}`
  if (!node) return `${label} is not configured any more (nodes in the configuration)`
  if (node.up === false) return `${label} is not answering: ${node.error}`
  if (node.up === null || !r.last) return `${label} has not answered yet`
  if (r.missing) return `${label} does not have this instance any more`
  return null
}

export function aliasesOf(r: RemoteRecord): string[] {
  return (r.last?.options.aliases as string[] | undefined) ?? r.input.aliases ?? []
}
