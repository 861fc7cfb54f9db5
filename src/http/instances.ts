/** The seed's Instances and Instance Operations routes (proxy: see proxy.ts). */
import { Elysia } from 'elysia'
import { BadRequest } from '../errors'
import type { Wait } from '../instances/lifecycle'
import type { InstanceManager } from '../instances/manager'
import { Type as T } from '@sinclair/typebox'
import { InstanceOptionsSchema, InstanceViewSchema } from '../instances/options'
import { FOLLOWER_QUEUE_LIMIT, type LogSink } from '../supervisor/log-sink'
import { readJson } from './body'
import { doc } from './openapi'
import { unlimited } from './timeouts'

/** `?wait=ready`: hold the answer until the backend is ready; without it, at most instances.start_wait. */
function waitOf(request: Request): Wait {
  const raw = new URL(request.url).searchParams.get('wait')
  if (raw === null || raw === '') return 'bounded'
  if (raw === 'ready') return 'ready'
  throw new BadRequest(`wait must be "ready" (hold the answer until the backend is ready), got ${JSON.stringify(raw.slice(0, 20))}`)
}

/** A create or update body: the options, and `force`, which is of the request and never stored. */
const WriteBodySchema = T.Object(
  {
    ...InstanceOptionsSchema.properties,
    force: T.Optional(T.Boolean({ description: 'make it even when its memory estimate is over what it can have (docs/models.md); the answer then has warnings. Not stored' })),
  },
  { additionalProperties: false },
)
const WrittenSchema = T.Composite([
  InstanceViewSchema,
  T.Object({ warnings: T.Optional(T.Array(T.String(), { description: 'with force: what the memory check found (absent otherwise)' })) }),
])

const WAIT_QUERY = { wait: 'ready: answer once the backend is ready (else after at most instances.start_wait seconds, with the status it has then)' }

export function instanceRoutes(manager: InstanceManager) {
  const bodyLimit = manager.config.server.max_body_size
  const json = (data: unknown, status = 200) =>
    new Response(JSON.stringify(data), { status, headers: { 'content-type': 'application/json' } })
  const remote = manager.remote
  // An instance on a remote node is the node's to operate (src/nodes/); the rest are this llamactl's.
  const on = (name: string) => (remote.has(name) ? remote : manager)
  // A create that names nodes is placed (src/nodes/placement.ts), possibly here.
  const placed = (body: unknown) => !!body && typeof body === 'object' && 'nodes' in body

  return new Elysia({ name: 'instances' }).guard({ parse: 'none' }, (app) => app
    // Remote instances as last known: a list never waits on a node.
    .get('/api/v1/instances', () => json([...manager.list().map((i) => i.view()), ...remote.list().map((r) => remote.view(r))]), {
      detail: doc({ summary: 'List all instances, on every node', tag: 'Instances', ok: [200, T.Array(InstanceViewSchema)] }),
    })
    .get('/api/v1/instances/:name', async ({ params }) => json(remote.has(params.name) ? await remote.get(params.name) : manager.get(params.name).view()), {
      detail: doc({ summary: 'Get an instance', tag: 'Instances', ok: [200, InstanceViewSchema], errors: [400, 404, 502] }),
    })
    // Operations that wait for a backend (loading a model can take minutes) are exempt from the idle timeout.
    .post('/api/v1/instances/:name', async ({ params, request }) => {
      const wait = waitOf(request)
      const body = await readJson(request, bodyLimit)
      unlimited(request)
      return json(await (placed(body) ? remote : manager).create(params.name, body, wait), 201)
    }, {
      detail: doc({
        summary: 'Create and start an instance',
        tag: 'Instances',
        body: WriteBodySchema,
        ok: [201, WrittenSchema],
        errors: [400, 409, 413, 500, 502, 507],
        query: WAIT_QUERY,
        description: 'Answers once the backend is ready, or after `instances.start_wait` seconds with the status it has then (the start goes on), whichever is first. The instance is kept even when its start fails (500); it is then `failed`. With `nodes`, it is made on the listed node with the most free room (`node` in the answer says which), by that node\'s llamactl; a node that cannot be reached or answers what the API does not promise is a 502 naming it, and nothing is left behind. A llama_cpp instance made here whose GGUF model\'s memory estimate is over the available memory is 400 unless `force` is true (docs/models.md).',
      }),
    })
    .put('/api/v1/instances/:name', async ({ params, request }) => {
      const wait = waitOf(request)
      const body = await readJson(request, bodyLimit)
      unlimited(request)
      return json(await on(params.name).update(params.name, body, wait))
    }, {
      detail: doc({
        summary: 'Replace an instance\'s options (a running instance restarts)',
        tag: 'Instances',
        body: WriteBodySchema,
        ok: [200, WrittenSchema],
        errors: [400, 404, 409, 413, 500, 502, 503, 507],
        query: WAIT_QUERY,
      }),
    })
    .delete('/api/v1/instances/:name', async ({ params, request }) => {
      unlimited(request)
      await on(params.name).remove(params.name)
      return new Response(null, { status: 204 })
    }, { detail: doc({ summary: 'Stop and delete an instance', tag: 'Instances', ok: [204, null], errors: [400, 404, 500, 502, 503, 507] }) })
    .post('/api/v1/instances/:name/start', async ({ params, request }) => (unlimited(request), json(await on(params.name).start(params.name, waitOf(request)))), {
      detail: doc({ summary: 'Start an instance', tag: 'Instance operations', ok: [200, InstanceViewSchema], errors: [400, 404, 409, 500, 502, 503, 507], query: WAIT_QUERY }),
    })
    .post('/api/v1/instances/:name/stop', async ({ params, request }) => (unlimited(request), json(await on(params.name).stop(params.name))), {
      detail: doc({ summary: 'Stop an instance (in-flight requests may finish first)', tag: 'Instance operations', ok: [200, InstanceViewSchema], errors: [400, 404, 500, 502, 503, 507] }),
    })
    .post('/api/v1/instances/:name/restart', async ({ params, request }) => (unlimited(request), json(await on(params.name).restart(params.name, waitOf(request)))), {
      detail: doc({ summary: 'Restart an instance', tag: 'Instance operations', ok: [200, InstanceViewSchema], errors: [400, 404, 409, 500, 502, 503, 507], query: WAIT_QUERY }),
    })
    .get('/api/v1/instances/:name/logs', ({ params, query, request }) => {
      const follow = query.follow === 'true' || query.follow === '1'
      if (!follow && query.follow !== undefined && query.follow !== 'false' && query.follow !== '0') {
        throw new BadRequest(`follow must be true or false, got ${JSON.stringify(query.follow.slice(0, 20))}`)
      }
      if (remote.has(params.name)) {
        const lines = parseLines(query.lines)
        if (!follow) return remote.logs(params.name, lines === undefined ? undefined : String(lines))
        unlimited(request)
        const path = `/api/v1/instances/${encodeURIComponent(params.name)}/logs?follow=true&lines=${lines ?? 100}`
        return remote.forwarder.pass(params.name, request, { pathAndQuery: path, method: 'GET', body: null, route: null, startedAt: performance.now() })
      }
      const inst = manager.get(params.name)
      if (follow) {
        unlimited(request)
        return followLog(inst.log, parseLines(query.lines) ?? 100, request.signal)
      }
      const tail = inst.log.tail(parseLines(query.lines))
      return new Response(tail.length ? `${tail.join('\n')}\n` : '', {
        headers: { 'content-type': 'text/plain; charset=utf-8' },
      })
    }, {
      detail: doc({
        summary: 'The last lines of an instance\'s log',
        tag: 'Instance operations',
        ok: [200, 'text'],
        errors: [400, 404, 502, 503],
        query: {
          lines: 'how many lines (default and -1: all kept in memory; with follow, default 100)',
          follow: 'true: stream the lines, then every new line, as server-sent events until the client leaves',
        },
      }),
    }))
}

/** Server-sent events: the last `lines` lines, then each new line as the backend writes it. */
function followLog(log: LogSink, lines: number, signal: AbortSignal): Response {
  const enc = new TextEncoder()
  let stop = () => {}
  const stream = new ReadableStream<Uint8Array>(
    {
      start(ctrl) {
        // A carriage return inside a line (progress bars) would end an SSE line: send each part as
        // its own data line, which the client joins again.
        const send = (line: string) => ctrl.enqueue(enc.encode(`data: ${line.split(/\r\n|\r|\n/).join('\ndata: ')}\n\n`))
        // A comment first, so the headers go out at once even when there is no line yet.
        ctrl.enqueue(enc.encode(': following\n\n'))
        for (const line of log.tail(lines)) send(line)
        const end = () => {
          stop()
          try {
            ctrl.close()
          } catch {
            // already closed
          }
        }
        const unsubscribe = log.subscribe((line) => {
          // A follower that stopped reading is dropped rather than queued without bound.
          if ((ctrl.desiredSize ?? 0) < -FOLLOWER_QUEUE_LIMIT) return end()
          send(line)
        }, end)
        stop = () => {
          unsubscribe()
          signal.removeEventListener('abort', end)
        }
        signal.addEventListener('abort', end, { once: true })
      },
      cancel() {
        stop()
      },
    },
    { highWaterMark: 0, size: (chunk) => chunk?.byteLength ?? 0 },
  )
  return new Response(stream, {
    headers: { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' },
  })
}

function parseLines(raw: string | undefined): number | undefined {
  if (raw === undefined || raw === '') return undefined
  if (!/^-?\d+$/.test(raw)) throw new BadRequest(`lines must be a whole number (-1 for all), got ${JSON.stringify(raw.slice(0, 40))}`)
  const n = Number(raw)
  return n < 0 ? undefined : n
}
