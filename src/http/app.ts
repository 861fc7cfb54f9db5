/**
 * The Elysia app: route groups, the error mapper and body handling. Tests call
 * `app.handle(new Request(...))`; main.ts gives it a socket.
 */
import { Elysia } from 'elysia'
import type { InstanceManager } from '../instances/manager'
import { versionText } from '../version'
import { backendRoutes } from './backends'
import { mapError } from './errors'
import { instanceRoutes } from './instances'
import { openaiRoutes } from './openai'
import { proxyRoutes } from './proxy'
import { systemRoutes } from './system'

export interface AppDeps {
  manager: InstanceManager
  /** How long GET /api/v1/server/{help,version,devices} wait for llama-server. */
  serverInfoTimeoutMs?: number
}

export function createApp({ manager, serverInfoTimeoutMs }: AppDeps) {
  return (
    new Elysia()
      .onError(({ code, error, request }) => mapError(code, error, request))
      .get('/api/v1/version', () => new Response(versionText(), { headers: { 'content-type': 'text/plain; charset=utf-8' } }))
      .use(instanceRoutes(manager))
      .use(backendRoutes(manager.config.server.max_body_size))
      .use(systemRoutes(manager.config, serverInfoTimeoutMs))
      .use(proxyRoutes(manager))
      .use(openaiRoutes(manager))
  )
}

export type App = ReturnType<typeof createApp>
