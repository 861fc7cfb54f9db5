/**
 * Where a new instance goes. One node named: that node. Several: the one with the most free
 * room, that is its max_running_instances less the instances running there now (no limit:
 * unbounded room), read from the node's last health check; among equal room the one running
 * fewer instances, then the one listed first. A node that is down is passed over. Every name must be a configured node (400).
 */
import type { Config } from '../config/load'
import { BadGateway, BadRequest } from '../errors'
import type { NodeRegistry } from './registry'

export interface LocalRoom {
  maxRunning: number
  running: number
}

/** Checks the names; throws 400 naming the first that is not a node of this llamactl. */
export function checkNodes(nodes: readonly string[], config: Config, registry: NodeRegistry) {
  for (const n of nodes) {
    if (n === config.local_node || registry.get(n)) continue
    const known = [config.local_node, ...registry.nodes.keys()].map((k) => JSON.stringify(k)).join(', ')
    throw new BadRequest(`nodes: ${JSON.stringify(n)} is not a configured node; the nodes are ${known}`)
  }
}

export async function place(nodes: readonly string[], config: Config, registry: NodeRegistry, local: LocalRoom): Promise<string> {
  checkNodes(nodes, config, registry)
  if (nodes.length === 1) return nodes[0]!
  // A node not asked yet since start-up is asked now (bounded by its check's timeout).
  await Promise.all(nodes.filter((n) => registry.get(n)?.up === null).map((n) => registry.probe(n)))
  let best: string | null = null
  let bestRoom = { free: -Infinity, running: Infinity }
  for (const n of nodes) {
    const room = roomOn(n, config, registry, local)
    if (room === null) continue
    if (room.free > bestRoom.free || (room.free === bestRoom.free && room.running < bestRoom.running)) {
      best = n
      bestRoom = room
    }
  }
  if (best === null) throw new BadGateway(`none of the nodes ${nodes.map((n) => JSON.stringify(n)).join(', ')} is answering; the instance was not created`)
  return best
}

/** Free room on a node and how many run there; null when it is down. */
export function roomOn(name: string, config: Config, registry: NodeRegistry, local: LocalRoom): { free: number; running: number } | null {
  const free = (max: number, running: number) => ({ free: max < 0 ? Infinity : max - running, running })
  if (name === config.local_node) return free(local.maxRunning, local.running)
  const node = registry.get(name)
  if (!node || node.up !== true) return null
  return free(node.limits?.max_running_instances ?? -1, runningOn(node.instances))
}

/** Instances running or starting, by the statuses the API answers. */
export function runningOn(views: readonly { status: string }[]): number {
  return views.filter((i) => i.status === 'running' || i.status === 'restarting').length
}
