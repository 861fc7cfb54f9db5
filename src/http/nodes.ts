/**
 * GET /api/v1/nodes and /api/v1/nodes/{name}, in the original llamactl's shape: a map of node
 * name to `{"address"}`. Until remote nodes exist there is one node, this llamactl, with an
 * empty address (the original's convention for the local node), named `local_node` (default
 * `main`, as in the original).
 */
import { Type as T } from '@sinclair/typebox'
import { Elysia } from 'elysia'
import type { Config } from '../config/load'
import { NotFound } from '../errors'
import { doc } from './openapi'

const NodeSchema = T.Object({ address: T.String({ description: 'where the node is reached; empty for this llamactl' }) })

export function nodeRoutes(config: Config) {
  const local = config.local_node
  return new Elysia({ name: 'nodes' }).guard({ parse: 'none' }, (app) => app
    .get('/api/v1/nodes', () => Response.json({ [local]: { address: '' } }), {
      detail: doc({ summary: 'The nodes instances can run on: this llamactl only, for now', tag: 'Nodes', ok: [200, T.Record(T.String(), NodeSchema)] }),
    })
    .get('/api/v1/nodes/:name', ({ params }) => {
      if (params.name !== local) throw new NotFound(`node ${JSON.stringify(params.name.slice(0, 80))} not found; the only node is ${JSON.stringify(local)}`)
      return Response.json({ address: '' })
    }, { detail: doc({ summary: 'One node', tag: 'Nodes', ok: [200, NodeSchema], errors: [404] }) }))
}
