/**
 * GET /api/v1/config: the effective configuration, secrets masked, in the shape the original
 * llamactl's web UI reads (its instance form takes defaults and backend commands from it).
 */
import { Type as T } from '@sinclair/typebox'
import { Elysia } from 'elysia'
import type { Config } from '../config/load'
import { configView } from '../config/view'
import { doc } from './openapi'

export function configRoutes(config: Config) {
  // Computed once: the configuration does not change while llamactl runs.
  const body = JSON.stringify(configView(config))
  return new Elysia({ name: 'config' }).get(
    '/api/v1/config',
    () => new Response(body, { headers: { 'content-type': 'application/json; charset=utf-8' } }),
    {
      detail: doc({
        summary: 'The effective configuration, secrets masked',
        tag: 'System',
        ok: [200, T.Object({}, { additionalProperties: true })],
        description:
          'Every key of docs/configuration.md, nested as in the YAML file. Management and inference keys are empty lists, `metrics.key` and each node\'s `api_key` empty strings, secret-named variables and secret flags `***`; durations are nanoseconds, as the original llamactl answers.',
      }),
    },
  )
}
