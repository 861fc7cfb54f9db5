/**
 * Requests passed through to a remote node as they are: /v1 inference (the node starts the
 * instance on demand, and streams event by event), the instance proxy, and a log followed.
 * The client's credentials are replaced by the node's key; a client that goes away aborts the
 * request to the node, and so does the node being marked down (a 502 naming it, whatever TCP
 * would have noticed). Each /v1 request is counted on the main node per instance and per node.
 */
import { BadGateway } from '../errors'
import { forward, upstreamHeaders } from '../http/forward'
import { watchResponse } from '../http/watch'
import type { Metrics } from '../metrics/llamactl'
import type { RemoteInstances } from './remote-instances'

export interface Passing {
  /** Path and query on the node, from '/'. */
  pathAndQuery: string
  method: string
  body: BodyInit | Uint8Array | null
  /** The metrics route it is counted under; null: not counted (a log followed). */
  route: string | null
  startedAt: number
}

export class NodeForwarder {
  private readonly nodeRequests

  constructor(
    private remote: RemoteInstances,
    private metrics: Metrics,
  ) {
    this.nodeRequests = metrics.registry.counter('llamactl_node_requests_total', 'Requests forwarded to a remote node\'s instances, by node, route and status', ['node', 'route', 'status'])
    const up = metrics.registry.gauge('llamactl_node_up', 'Whether a remote node answered its last health check (1) or not (0)', ['node'])
    up.collect = () => [...remote.registry.nodes.values()].map((n) => [[n.name], n.up ? 1 : 0])
  }

  async pass(name: string, request: Request, p: Passing): Promise<Response> {
    const { node } = this.remote.reach(name)
    const c = node.client
    const ctrl = new AbortController()
    const clientLeft = () => ctrl.abort(new Error('the client went away'))
    if (request.signal.aborted) clientLeft()
    request.signal.addEventListener('abort', clientLeft, { once: true })
    const untrack = this.remote.registry.track(node.name, ctrl)
    const headers = upstreamHeaders(request.headers, null)
    const auth = c.authorization()
    if (auth) headers.set('authorization', auth)
    const watch = watchResponse()
    const done = () => {
      untrack()
      request.signal.removeEventListener('abort', clientLeft)
      if (p.route === null) return
      const status = watch.status || (request.signal.aborted ? 499 : 502)
      this.metrics.request(name, p.route, status, p.startedAt, watch.headersAt, watch.usage())
      this.nodeRequests.inc([node.name, p.route, String(status)])
    }
    let res: Response
    try {
      res = await forward({
        base: c.origin,
        pathAndQuery: c.prefix + p.pathAndQuery,
        method: p.method,
        headers,
        body: p.body,
        signal: ctrl.signal,
        extraResponseHeaders: {},
        observe: watch,
        tls: c.tls,
        onDone: done,
      })
    } catch (e) {
      this.remote.registry.nudge(node.name)
      throw new BadGateway(`${c.label} could not be reached for instance ${JSON.stringify(name)}: ${(e as Error).message}`)
    }
    if (res.status === 499 && !request.signal.aborted) {
      throw new BadGateway(`${c.label} stopped answering before instance ${JSON.stringify(name)} did: ${String(ctrl.signal.reason?.message ?? ctrl.signal.reason)}`)
    }
    if (res.status === 401 || res.status === 403) {
      await res.body?.cancel()
      throw new BadGateway(`${c.label} refused llamactl's key (${res.status}) for instance ${JSON.stringify(name)}: check nodes.${node.name}.api_key (it must be a management key of that node)`)
    }
    return res
  }
}
