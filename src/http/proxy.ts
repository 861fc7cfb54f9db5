/**
 * /api/v1/instances/{name}/proxy/*: any method, forwarded to the instance's own host and port
 * with the prefix stripped; 503 when it is not running. Bodies stream through.
 */
import { Elysia } from 'elysia'
import { noteInstance } from '../log'
import type { InstanceManager } from '../instances/manager'
import { forwardLeased } from './leased'
import { doc } from './openapi'
import { unlimited } from './timeouts'
import { splitUrl } from './url'

/** Paths that monitoring polls: forwarding them does not count as use of the instance. */
const NOT_ACTIVITY = new Set(['/health', '/props', '/metrics', '/slots', '/v1/models', '/models'])

const PROXY_DOC = doc({
  summary: 'Forward a request to the instance\'s own server, prefix stripped',
  tag: 'Instance operations',
  ok: [200, 'any'],
  errors: [404, 502, 503],
  description: 'Any method, path, query, headers (hop-by-hop removed) and body; the backend\'s answer comes back as it is.',
})

export function proxyRoutes(manager: InstanceManager) {
  const handler = async ({ params, request }: { params: { name: string }; request: Request }) => {
    noteInstance(request, params.name)
    const { path, query } = splitUrl(request.url)
    // The raw (still percent-encoded) path after /api/v1/instances/{name}/proxy.
    const rest = `/${path.split('/').slice(6).join('/')}`
    if (manager.remote.has(params.name)) {
      // The node's own proxy of the instance, with the node's key.
      unlimited(request)
      const body = request.method === 'GET' || request.method === 'HEAD' ? null : request.body
      const on = `/${path.split('/').slice(1, 6).join('/')}${rest}${query}`
      return manager.remote.forwarder.pass(params.name, request, { pathAndQuery: on, method: request.method, body, route: 'proxy', startedAt: performance.now() })
    }
    const lease = manager.hold(params.name, { route: 'proxy', activity: !NOT_ACTIVITY.has(rest), startedAt: performance.now() })
    unlimited(request)
    return forwardLeased(lease, request, rest + query, request.method, request.method === 'GET' || request.method === 'HEAD' ? null : request.body)
  }
  return new Elysia({ name: 'proxy' }).guard({ parse: 'none' }, (app) =>
    app.all('/api/v1/instances/:name/proxy', handler, { detail: PROXY_DOC }).all('/api/v1/instances/:name/proxy/*', handler, { detail: PROXY_DOC }),
  )
}
