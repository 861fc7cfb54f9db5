/**
 * /api/v1/instances/{name}/proxy/*: any method, forwarded to the instance's own host and port
 * with the prefix stripped; 503 when it is not running. Bodies stream through.
 */
import { Elysia } from 'elysia'
import { Unavailable } from '../errors'
import { noteInstance } from '../log'
import type { InstanceManager } from '../instances/manager'
import { forward, upstreamHeaders } from './forward'
import { doc } from './openapi'
import { unlimited } from './timeouts'
import { splitUrl } from './url'
import { watchResponse } from './watch'
import { backendKey, backendResponseHeaders } from './upstream'

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
    const instance = manager.get(params.name)
    noteInstance(request, instance.name)
    const upstream = instance.upstream
    if (!upstream) throw new Unavailable(`instance ${JSON.stringify(params.name)} is not running (status ${instance.status})`)
    const { path, query } = splitUrl(request.url)
    // The raw (still percent-encoded) path after /api/v1/instances/{name}/proxy.
    const rest = `/${path.split('/').slice(6).join('/')}`
    const activity = !NOT_ACTIVITY.has(rest)
    instance.beginRequest(activity)
    unlimited(request)
    const startedAt = performance.now()
    const watch = watchResponse()
    return forward({
      base: upstream,
      pathAndQuery: rest + query,
      method: request.method,
      headers: upstreamHeaders(request.headers, backendKey(instance)),
      body: request.method === 'GET' || request.method === 'HEAD' ? null : request.body,
      signal: request.signal,
      extraResponseHeaders: backendResponseHeaders(manager.config, instance),
      observe: watch,
      onDone: () => {
        instance.endRequest(activity)
        const status = watch.status || (request.signal.aborted ? 499 : 502)
        if (manager.find(instance.name) === instance) {
          setImmediate(() => manager.metrics.request(instance.name, 'proxy', status, startedAt, watch.headersAt, watch.usage()))
        }
      },
    })
  }
  return new Elysia({ name: 'proxy' }).guard({ parse: 'none' }, (app) =>
    app.all('/api/v1/instances/:name/proxy', handler, { detail: PROXY_DOC }).all('/api/v1/instances/:name/proxy/*', handler, { detail: PROXY_DOC }),
  )
}
