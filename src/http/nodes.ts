/**
 * GET /api/v1/nodes and /api/v1/nodes/{name}, in the original llamactl's shape (a map of node
 * name to `{"address"}`, the local node's address empty) with what the main node knows of each
 * added: reachable, version, running and total instances. A key is never shown. The list
 * answers from the last health checks, so a node that is down delays nothing; one node asked by
 * name is checked again first (bounded by its check's timeout).
 */
import { Type as T } from '@sinclair/typebox'
import { Elysia } from 'elysia'
import type { InstanceManager } from '../instances/manager'
import { NotFound } from '../errors'
import { runningOn } from '../nodes/placement'
import type { NodeState } from '../nodes/registry'
import { BUILD } from '../version'
import { doc } from './openapi'

const NodeSchema = T.Object({
  address: T.String({ description: 'where the node is reached; empty for this llamactl' }),
  local: T.Boolean({ description: 'this llamactl (local_node)' }),
  reachable: T.Union([T.Boolean(), T.Null()], { description: 'whether it answered its last health check; null: not asked yet' }),
  version: T.Union([T.String(), T.Null()], { description: 'its llamactl version, as it last said' }),
  running: T.Union([T.Integer(), T.Null()], { description: 'instances running or starting there (all of its own, not only this llamactl\'s); null: never seen' }),
  total: T.Union([T.Integer(), T.Null()], { description: 'instances defined there' }),
  max_running_instances: T.Union([T.Integer(), T.Null()], { description: 'its limit (-1: none), which placement weighs' }),
  managed: T.Integer({ description: 'instances this llamactl placed there' }),
  last_seen: T.Union([T.Integer(), T.Null()], { description: 'unix seconds of its last answer' }),
  error: T.Union([T.String(), T.Null()], { description: 'why its last health check failed' }),
})

export function nodeRoutes(manager: InstanceManager) {
  const config = manager.config
  const local = config.local_node
  const registry = manager.remote.registry
  const here = () => {
    const all = manager.list()
    return {
      address: '',
      local: true,
      reachable: true,
      version: BUILD.version,
      running: all.filter((i) => i.active).length,
      total: all.length,
      max_running_instances: config.instances.max_running_instances,
      managed: all.length,
      last_seen: Math.floor(Date.now() / 1000),
      error: null,
    }
  }
  const remote = (n: NodeState) => {
    const seen = n.lastSeen !== null
    return {
      address: n.address,
      local: false,
      reachable: n.up,
      version: n.version,
      running: seen ? runningOn(n.instances) : null,
      total: seen ? n.instances.length : null,
      max_running_instances: n.limits?.max_running_instances ?? null,
      managed: manager.remote.countOn(n.name),
      last_seen: seen ? Math.floor(n.lastSeen! / 1000) : null,
      error: n.error,
    }
  }
  return new Elysia({ name: 'nodes' }).guard({ parse: 'none' }, (app) => app
    .get('/api/v1/nodes', () => Response.json({ [local]: here(), ...Object.fromEntries([...registry.nodes.values()].map((n) => [n.name, remote(n)])) }), {
      detail: doc({ summary: 'The nodes instances can run on: this llamactl and the configured remote nodes', tag: 'Nodes', ok: [200, T.Record(T.String(), NodeSchema)] }),
    })
    .get('/api/v1/nodes/:name', async ({ params }) => {
      if (params.name === local) return Response.json(here())
      const node = registry.get(params.name)
      if (!node) {
        const names = [local, ...registry.nodes.keys()].map((n) => JSON.stringify(n)).join(', ')
        throw new NotFound(`node ${JSON.stringify(params.name.slice(0, 80))} not found; the nodes are ${names}`)
      }
      await registry.probe(node.name)
      return Response.json(remote(node))
    }, { detail: doc({ summary: 'One node, checked again first', tag: 'Nodes', ok: [200, NodeSchema], errors: [404] }) }))
}
