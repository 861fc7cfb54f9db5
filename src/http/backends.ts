/**
 * The seed's Backend-Specific Endpoints: POST /api/v1/backends/{llama-cpp|mlx|vllm}/parse-command
 * with {"command": "..."} answers the options that command line means, as the original llamactl
 * does: {"backend_type", "backend_options"}, one options object, so the answer is a create body
 * as it is and its web UI, which edits backend_options and sends the whole object back, never
 * sends two versions of the options.
 */
import { Type as T } from '@sinclair/typebox'
import { Elysia } from 'elysia'
import { doc } from './openapi'
import { type Backend, BACKENDS } from '../backends'
import { BadRequest } from '../errors'
import { readJson } from './body'

const ParseCommandSchema = T.Object({ command: T.String({ description: 'the command line, as you would type it' }) }, { additionalProperties: false })
const parseDoc = (program: string) =>
  doc({
    summary: `Read a ${program} command line into instance options`,
    tag: 'Backends',
    body: ParseCommandSchema,
    ok: [200, T.Object({ backend_type: T.String(), backend_options: T.Record(T.String(), T.Unknown()), environment: T.Optional(T.Record(T.String(), T.String())) }, { additionalProperties: true })],
    errors: [400, 413],
    description: 'The answer is a create body: `backend_type` and `backend_options` (and `environment` for leading `NAME=value` words). Names are the original llamactl\'s (`no_mmap: true` for `--no-mmap`); unknown flags go to `extra_args` as a map `{"flag": "value"}`.',
  })

export function backendRoutes(bodyLimit: number) {
  const parseCommand = (backend: Backend) => async ({ request }: { request: Request }) => {
    const body = await readJson(request, bodyLimit)
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw new BadRequest('the request body must be a JSON object: {"command": "llama-server -m /models/m.gguf ..."}')
    }
    const extra = Object.keys(body).find((k) => k !== 'command')
    if (extra !== undefined) throw new BadRequest(`unknown field ${JSON.stringify(extra)}; the body is {"command": "..."}`)
    const { command } = body as { command?: unknown }
    if (typeof command !== 'string') throw new BadRequest('command: must be a string, the command line to read')
    const { options, environment } = backend.parseCommand(command)
    const answer: Record<string, unknown> = { backend_type: backend.type, backend_options: options }
    if (Object.keys(environment).length) answer.environment = environment
    return new Response(JSON.stringify(answer), { headers: { 'content-type': 'application/json' } })
  }
  // One route per backend of the registry (Elysia's route methods add to the app they are called on).
  return new Elysia({ name: 'backends' }).guard({ parse: 'none' }, (app) => {
    for (const backend of BACKENDS) app.post(`/api/v1/backends/${backend.routeName}/parse-command`, parseCommand(backend), { detail: parseDoc(backend.label) })
    return app
  })
}
