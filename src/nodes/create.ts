/**
 * Creating an instance on a remote node, so that it is either made there and recorded here, or
 * neither: the name is checked free on the node first (which is also the check that it can be
 * reached), and what a create that ended unclear (a timeout, an answer of the wrong shape) may
 * have made there is deleted again.
 */
import { Conflict, type StartFailed } from '../errors'
import type { Wait } from '../instances/lifecycle'
import type { InstanceOptionsInput } from '../instances/options'
import type { Store } from '../store/db'
import { Garbled, NodeUnreachable, NodeViewSchema, type NodeView } from './client'
import type { RemoteRecord } from './records'
import type { NodeState } from './registry'

export interface Creating {
  store: Store
  /** Where the new record goes. */
  records: Map<string, RemoteRecord>
  /** The bound on a call that may wait for the backend. */
  timeout(node: NodeState, wait: Wait): number
}

/** The new record; a start that failed there is thrown after the record is kept, as a local one is. */
export async function createOn(x: Creating, node: NodeState, name: string, input: InstanceOptionsInput, wait: Wait): Promise<RemoteRecord> {
  const c = node.client
  const path = `/api/v1/instances/${encodeURIComponent(name)}`
  const before = await c.call('GET', path)
  if (before.status === 200) {
    c.expect(before, [200], NodeViewSchema, `GET ${path}`)
    throw new Conflict(`instance ${JSON.stringify(name)} already exists on node ${JSON.stringify(node.name)} (made there, not through this llamactl)`)
  }
  if (before.status !== 404) throw c.refusal(before, `GET ${path}`)
  // The node runs it as its own: its local_node need not be the name the main node knows it by.
  const { nodes: _, ...sent } = input
  let view: NodeView
  let failed: StartFailed | null = null
  try {
    const answer = await c.call('POST', path + (wait === 'ready' ? '?wait=ready' : ''), { body: sent, timeoutMs: x.timeout(node, wait) })
    if (answer.status === 500) {
      // Made, but its start failed: it exists there, so it is recorded here.
      failed = c.refusal(answer, `POST ${path}`) as StartFailed
      view = c.expect(await c.call('GET', path), [200], NodeViewSchema, `GET ${path}`)
    } else {
      view = c.expect(answer, [201], NodeViewSchema, `POST ${path}`)
    }
    if (view.name !== name) throw new Garbled(`${c.label} answered POST ${path} with instance ${JSON.stringify(view.name.slice(0, 64))}`)
  } catch (e) {
    if (e instanceof Garbled || (e instanceof NodeUnreachable && e.maybeReceived)) cleanUp(node, name)
    throw e
  }
  const stored = { ...input, nodes: [node.name] }
  const created = Math.floor(Date.now() / 1000)
  let id: number
  try {
    id = x.store.insertInstance({ name, options: JSON.stringify(stored), created, desired: 'running', node: node.name })
  } catch (e) {
    cleanUp(node, name)
    throw e
  }
  const r: RemoteRecord = { id, name, node: node.name, input: stored, created, last: view, missing: false }
  x.records.set(name, r)
  if (failed) throw failed
  return r
}

/** Deletes what a failed create may have made on the node, in the background; a failure is said, never thrown. */
function cleanUp(node: NodeState, name: string) {
  node.client.call('DELETE', `/api/v1/instances/${encodeURIComponent(name)}`).then(
    (a) => {
      if (a.status !== 204 && a.status !== 404) console.error(`llamactl: instance ${name} may be left on node ${node.name} after a failed create (its delete answered ${a.status})`)
    },
    (e: Error) => console.error(`llamactl: instance ${name} may be left on node ${node.name} after a failed create: ${e.message}`),
  )
}
