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
import { authorize, checkRouteGrant, grantInternal } from './auth'
import { backendRoutes } from './backends'
import { configRoutes } from './config-route'
import { crossSiteRefusal, decorate, preflight } from './cors'
import { mapError } from './errors'
import { buildOpenApi, doc, swaggerRoutes } from './openapi'
import { instanceRoutes } from './instances'
import { keyRoutes } from './keys'
import { modelRoutes } from './models'
import { ModelDownloads } from '../models/jobs'
import { libraryRoutes } from './library'
import { nodeRoutes } from './nodes'
import { activityRoutes } from './activity'
import { openaiRoutes } from './openai'
import { pageRouteDoc, pageRoutes } from './page'
import { proxyRoutes } from './proxy'
import { sessionRoutes } from './session'
import { systemRoutes } from './system'
import { failed, keyFailed } from './throttle'
import { bindServer } from './timeouts'
import { HostPolicy, pinUrl, readTarget } from './target'

export interface AppDeps {
  manager: InstanceManager
  keys: KeyRing
  sessions: Sessions
  /** llamactl's own log (request lines); none in most tests. */
  logger?: Logger
  /** How long GET /api/v1/server/{help,version,devices} wait for llama-server. */
  serverInfoTimeoutMs?: number
  /** Model downloads (src/models); made from the config when not given. */
  downloads?: ModelDownloads
}

export function createRoutes({ manager, keys, sessions, serverInfoTimeoutMs, downloads = new ModelDownloads(manager.config, { registry: manager.metrics.registry }) }: AppDeps) {
  // The page calls some API routes in-process (they belong to other modules); set once built.
  let api: (request: Request) => Promise<Response> = () => Promise.reject(new Error('routes are not built yet'))
  const routes = new Elysia()
    .onError(({ code, error, request }) => mapError(code, error, request))
    // Every route, before anything of its own runs: was the request let in as this route's class?
    .onTransform({ as: 'global' }, ({ request, route }) => checkRouteGrant(request, route))
    .get('/api/v1/version', () => new Response(versionText(), { headers: { 'content-type': 'text/plain; charset=utf-8' } }), {
      detail: doc({ summary: 'llamactl version, commit and build time', tag: 'System', ok: [200, 'text'] }),
    })
    .use(instanceRoutes(manager))
    .use(backendRoutes(manager.config.server.max_body_size))
    .use(systemRoutes(manager.config, serverInfoTimeoutMs))
    .use(configRoutes(manager.config))
    .use(nodeRoutes(manager))
    .use(activityRoutes(manager))
    .use(proxyRoutes(manager))
    .use(libraryRoutes(manager))
    .use(openaiRoutes(manager))
    .use(keyRoutes(keys, manager))
    .use(modelRoutes(manager, downloads))
    .use(sessionRoutes(keys, sessions))
    // The page has checked its session before it calls the API on the caller's behalf.
    .use(pageRoutes({ manager, keys, sessions, downloads, api: (request) => (grantInternal(request, 'management'), api(request)) }))
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
  const downloads = deps.downloads ?? new ModelDownloads(deps.manager.config, { registry: deps.manager.metrics.registry })
  const routes = createRoutes({ ...deps, downloads })
  const config = deps.manager.config
  // A Content-Security-Policy is added, never replaced: it may not undo the page's or the proxy's.
  const extra = Object.entries(config.server.response_headers).map(([k, v]) => ({ k, v, append: k.toLowerCase() === 'content-security-policy' }))
  const cors = config.server.allowed_origins.length > 0
  const hosts = new HostPolicy(config.server.allowed_hosts, config.server.host)
  const logger = deps.logger
  const logRequests = !!logger && config.log.requests && logger.enabled('info')
  return {
    routes,
    /** The download jobs: ended (cancelled) by close() before the manager shuts down. */
    downloads,
    async handle(request: Request, server?: Server<unknown>): Promise<Response> {
      const t0 = logRequests ? performance.now() : 0
      if (server) bindServer(request, server)
      // The one reading of the target: authorization, the router and the log all use it.
      const target = readTarget(request, hosts)
      let response: Response
      let path: string
      if (target instanceof Response) {
        response = target
        path = '-'
      } else {
        path = target.path
        pinUrl(request, target)
        const early =
          crossSiteRefusal(request, target.host, config) ??
          ((cors && preflight(request, config)) || authorize(request, path, config, deps.keys, deps.sessions))
        try {
          response = early ? (keyFailed(request) ? await failed(request, deps.keys.failures, early) : early) : await routes.handle(request)
        } catch (e) {
          response = mapError('UNKNOWN', e, request)
        }
      }
      if (cors) decorate(response, request, config)
      for (const { k, v, append } of extra) append ? response.headers.append(k, v) : response.headers.set(k, v)
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
