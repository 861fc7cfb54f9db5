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

const WEBUI_DOC = doc({
  summary: 'llama-server\'s own web UI (and any other path of it), as the instance proxy forwards it',
  tag: 'Llama.cpp',
  ok: [200, 'any'],
  errors: [404, 502, 503],
  description: 'The original llamactl\'s path for it. Needs a management key as the instance proxy does, and gets the same rules: the answer is served with `Content-Security-Policy: sandbox`, llamactl\'s cookies are never forwarded and a backend cannot set any (docs/security.md). `/llama-cpp/{name}` redirects to `/llama-cpp/{name}/`. Not started on demand.',
})

export function proxyRoutes(manager: InstanceManager) {
  /** `skip`: the path segments before the backend's own path; `nameAt`: the instance name's segment. */
  const forwardRest = (skip: number, nameAt: number) => async ({ params, request }: { params: { name: string }; request: Request }) => {
    noteInstance(request, params.name)
    const { path, query } = splitUrl(request.url)
    // The raw (still percent-encoded) path after the prefix.
    const rest = `/${path.split('/').slice(skip).join('/')}`
    if (manager.remote.has(params.name)) {
      // The node's own proxy of the instance, with the node's key (the web UI's path too).
      unlimited(request)
      const body = request.method === 'GET' || request.method === 'HEAD' ? null : request.body
      const on = `/api/v1/instances/${path.split('/')[nameAt]}/proxy${rest}${query}`
      return manager.remote.forwarder.pass(params.name, request, { pathAndQuery: on, method: request.method, body, route: 'proxy', startedAt: performance.now() })
    }
    const lease = manager.hold(params.name, { route: 'proxy', activity: !NOT_ACTIVITY.has(rest), startedAt: performance.now() })
    unlimited(request)
    return forwardLeased(lease, request, rest + query, request.method, request.method === 'GET' || request.method === 'HEAD' ? null : request.body)
  }
  const handler = forwardRest(6, 4) // /api/v1/instances/{name}/proxy
  const webui = forwardRest(3, 2) // /llama-cpp/{name}
  return new Elysia({ name: 'proxy' }).guard({ parse: 'none' }, (app) =>
    app
      .all('/api/v1/instances/:name/proxy', handler, { detail: PROXY_DOC })
      .all('/api/v1/instances/:name/proxy/*', handler, { detail: PROXY_DOC })
      // Relative links of the UI resolve under the prefix only with its trailing slash.
      .all('/llama-cpp/:name', (ctx) => {
        // The router matches /llama-cpp/{name}/ here too: that one is the UI's own page.
        const { path, query } = splitUrl(ctx.request.url)
        if (path.endsWith('/')) return webui(ctx)
        const { params } = ctx
        manager.get(params.name)
        return new Response(null, { status: 308, headers: { location: `/llama-cpp/${encodeURIComponent(params.name)}/${query}` } })
      }, { detail: WEBUI_DOC })
      .all('/llama-cpp/:name/*', webui, { detail: WEBUI_DOC }),
  )
}
