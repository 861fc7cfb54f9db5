/**
 * The app: Elysia routes, and in front of them what every request goes through (CORS,
 * authentication, response headers). Tests call `app.handle(new Request(...))`; main.ts gives
 * it a socket.
 */
import type { Server } from 'bun'
import { Elysia } from 'elysia'
import type { KeyRing } from '../auth/keys'
import type { Sessions } from '../auth/sessions'
import type { InstanceManager } from '../instances/manager'
import { instanceOf, type Logger } from '../log'
import { versionText } from '../version'
import { authorize } from './auth'
import { backendRoutes } from './backends'
import { decorate, preflight } from './cors'
import { errorResponse, mapError } from './errors'
import { buildOpenApi, doc, swaggerRoutes } from './openapi'
import { instanceRoutes } from './instances'
import { keyRoutes } from './keys'
import { openaiRoutes } from './openai'
import { pageRouteDoc, pageRoutes } from './page'
import { proxyRoutes } from './proxy'
import { sessionRoutes } from './session'
import { systemRoutes } from './system'
import { failed, keyFailed } from './throttle'
import { bindServer } from './timeouts'
import { splitUrl } from './url'

export interface AppDeps {
  manager: InstanceManager
  keys: KeyRing
  sessions: Sessions
  /** llamactl's own log (request lines); none in most tests. */
  logger?: Logger
  /** How long GET /api/v1/server/{help,version,devices} wait for llama-server. */
  serverInfoTimeoutMs?: number
}

export function createRoutes({ manager, keys, sessions, serverInfoTimeoutMs }: AppDeps) {
  // The page calls some API routes in-process (they belong to other modules); set once built.
  let api: (request: Request) => Promise<Response> = () => Promise.reject(new Error('routes are not built yet'))
  const routes = new Elysia()
    .onError(({ code, error, request }) => mapError(code, error, request))
    .get('/api/v1/version', () => new Response(versionText(), { headers: { 'content-type': 'text/plain; charset=utf-8' } }), {
      detail: doc({ summary: 'llamactl version, commit and build time', tag: 'System', ok: [200, 'text'] }),
    })
    .use(instanceRoutes(manager))
    .use(backendRoutes(manager.config.server.max_body_size))
    .use(systemRoutes(manager.config, serverInfoTimeoutMs))
    .use(proxyRoutes(manager))
    .use(openaiRoutes(manager))
    .use(keyRoutes(keys, manager))
    .use(sessionRoutes(keys, sessions))
    .use(pageRoutes({ manager, keys, sessions, api: (request) => api(request) }))
  api = (request) => routes.handle(request)
  if (manager.config.metrics.enabled) {
    routes.get('/metrics', () => new Response(manager.metrics.render(), { headers: { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' } }), {
      detail: doc({ summary: 'Prometheus metrics: per instance and for llamactl itself', tag: 'System', auth: 'management', ok: [200, 'text'], description: 'A management key, the metrics key (`metrics.key`), or none when `metrics.public` is on.' }),
    })
  }
  if (manager.config.server.enable_swagger) routes.use(swaggerRoutes(() => buildOpenApi(routes, pageRouteDoc)))
  return routes
}

export function createApp(deps: AppDeps) {
  const routes = createRoutes(deps)
  const config = deps.manager.config
  const extra = Object.entries(config.server.response_headers)
  const cors = config.server.allowed_origins.length > 0
  const logger = deps.logger
  const logRequests = !!logger && config.log.requests && logger.enabled('info')
  return {
    routes,
    async handle(request: Request, server?: Server<unknown>): Promise<Response> {
      const t0 = logRequests ? performance.now() : 0
      if (server) bindServer(request, server)
      const { path } = splitUrl(request.url)
      const early = malformedPath(path) ?? ((cors && preflight(request, config)) || authorize(request, path, config, deps.keys, deps.sessions))
      const response = early ? (keyFailed(request) ? await failed(request, deps.keys.failures, early) : early) : await routes.handle(request)
      if (cors) decorate(response, request, config)
      // A Content-Security-Policy is added, never replaced: it may not undo the page's or the proxy's.
      for (const [k, v] of extra) k.toLowerCase() === 'content-security-policy' ? response.headers.append(k, v) : response.headers.set(k, v)
      if (logRequests) {
        // Streams are logged when their headers go out: duration is time to first byte.
        logger!.info('request', {
          method: request.method,
          path,
          instance: instanceOf(request),
          status: response.status,
          ms: Math.round((performance.now() - t0) * 100) / 100,
        })
      }
      return response
    },
  }
}

export type App = ReturnType<typeof createApp>

/**
 * 400 for a path whose percent-encoding does not decode (`%zz`, a lone `%`, bytes that are not
 * UTF-8): the router would hand such a name or id to the handlers as null.
 */
function malformedPath(path: string): Response | null {
  if (!path.includes('%')) return null
  try {
    decodeURIComponent(path)
    return null
  } catch {
    return errorResponse(400, `the path has a malformed percent-encoding: ${JSON.stringify(path.slice(0, 120))}`)
  }
}
