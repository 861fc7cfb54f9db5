/**
 * GET /api/v1/activity: the last requests forwarded to backends, newest first (the page's
 * Activity view reads the same), filtered by instance and outcome.
 */
import { Type as T } from '@sinclair/typebox'
import { Elysia } from 'elysia'
import { BadRequest } from '../errors'
import type { InstanceManager } from '../instances/manager'
import { CAPACITY, type RequestFilter } from '../metrics/requests'
import { doc } from './openapi'

const RecordSchema = T.Object({
  at: T.Integer({ description: 'unix milliseconds the request ended' }),
  instance: T.String(),
  route: T.String({ description: 'the metrics route label: chat_completions, completions, embeddings, proxy, …' }),
  status: T.Integer({ description: 'the answer\'s status; 499: the client went away; 502: the backend did' }),
  prompt_tokens: T.Union([T.Integer(), T.Null()]),
  completion_tokens: T.Union([T.Integer(), T.Null()]),
  tokens_per_second: T.Union([T.Number(), T.Null()], { description: 'generation speed as the backend measured it (llama.cpp\'s timings); null when it did not say' }),
  duration_ms: T.Number(),
  first_byte_ms: T.Union([T.Number(), T.Null()], { description: 'until the backend\'s answer began' }),
  first_token_ms: T.Union([T.Number(), T.Null()], { description: 'until a stream\'s first generated token; null for a whole answer' }),
})

/** The query, checked: a bad one is a 400 naming the parameter. */
export function activityFilter(query: Record<string, string | undefined>): RequestFilter {
  const f: RequestFilter = {}
  for (const k of Object.keys(query)) if (!['instance', 'outcome', 'limit'].includes(k)) throw new BadRequest(`unknown parameter ${JSON.stringify(k.slice(0, 40))}; known: instance, outcome, limit`)
  if (query.instance) f.instance = query.instance
  if (query.outcome) {
    if (query.outcome !== 'ok' && query.outcome !== 'error') throw new BadRequest('outcome must be ok or error')
    f.outcome = query.outcome
  }
  if (query.limit !== undefined) {
    const n = Number(query.limit)
    if (!/^\d+$/.test(query.limit) || n < 1 || n > CAPACITY) throw new BadRequest(`limit must be a whole number from 1 to ${CAPACITY}`)
    f.limit = n
  }
  return f
}

export function activityRoutes(manager: InstanceManager) {
  return new Elysia({ name: 'activity' }).guard({ parse: 'none' }, (app) =>
    app.get('/api/v1/activity', ({ query }) => Response.json({ requests: manager.metrics.requestLog.list(activityFilter(query)) }), {
      detail: doc({
        summary: 'The last requests forwarded to backends, newest first',
        tag: 'System',
        ok: [200, T.Object({ requests: T.Array(RecordSchema) })],
        errors: [400],
        query: {
          instance: 'only this instance\'s',
          outcome: 'ok (status under 400) or error',
          limit: `how many (default 100, at most ${CAPACITY}; llamactl keeps the last ${CAPACITY})`,
        },
      }),
    }),
  )
}
