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
import { versionText } from '../version'
import { authorize } from './auth'
import { decorate, preflight } from './cors'
import { mapError } from './errors'
import { instanceRoutes } from './instances'
import { keyRoutes } from './keys'
import { openaiRoutes } from './openai'
import { pageRoutes } from './page'
import { proxyRoutes } from './proxy'
import { sessionRoutes } from './session'
import { bindServer } from './timeouts'

export interface AppDeps {
  manager: InstanceManager
  keys: KeyRing
  sessions: Sessions
}

export function createRoutes({ manager, keys, sessions }: AppDeps) {
  // The page calls some API routes in-process (they belong to other modules); set once built.
  let api: (request: Request) => Promise<Response> = () => Promise.reject(new Error('routes are not built yet'))
  const routes = new Elysia()
    .onError(({ code, error, request }) => mapError(code, error, request))
    .get('/api/v1/version', () => new Response(versionText(), { headers: { 'content-type': 'text/plain; charset=utf-8' } }))
    .use(instanceRoutes(manager))
    .use(proxyRoutes(manager))
    .use(openaiRoutes(manager))
    .use(keyRoutes(keys, manager))
    .use(sessionRoutes(keys, sessions))
    .use(pageRoutes({ manager, keys, sessions, api: (request) => api(request) }))
  api = (request) => routes.handle(request)
  return routes
}

export function createApp(deps: AppDeps) {
  const routes = createRoutes(deps)
  const config = deps.manager.config
  const extra = Object.entries(config.server.response_headers)
  const cors = config.server.allowed_origins.length > 0
  return {
    routes,
    async handle(request: Request, server?: Server<unknown>): Promise<Response> {
      if (server) bindServer(request, server)
      const url = request.url
      const pathStart = url.indexOf('/', url.indexOf('//') + 2)
      const q = url.indexOf('?', pathStart)
      const path = url.slice(pathStart, q === -1 ? undefined : q)
      const early = (cors && preflight(request, config)) || authorize(request, path, config, deps.keys, deps.sessions)
      const response = early ?? (await routes.handle(request))
      if (cors) decorate(response, request, config)
      for (const [k, v] of extra) response.headers.set(k, v)
      return response
    },
  }
}

export type App = ReturnType<typeof createApp>
