/**
 * The model library (GET /api/v1/models/library, one model with its memory estimate) and the
 * original llamactl's router-mode routes: GET /api/v1/llama-cpp/{name}/models and
 * POST …/models/{model}/load|unload, forwarded to llama-server's /models, /models/load and
 * /models/unload, starting the instance on demand as the original does.
 *
 * /api/v1/models itself (the download cache) is the downloads' route; the library has its own
 * path so the two do not clash.
 */
import { Type as T } from '@sinclair/typebox'
import { Elysia } from 'elysia'
import { BadRequest } from '../errors'
import type { InstanceManager } from '../instances/manager'
import { noteInstance } from '../log'
import { estimate, type EstimateParams } from '../models/estimate'
import { available, overLimit } from '../models/memory'
import { forwardLeased } from './leased'
import { doc } from './openapi'
import { unlimited } from './timeouts'
import { splitUrl } from './url'

const Sides = T.Object({ cpu: T.Integer(), gpu: T.Integer() })
const HeaderSchema = T.Object({
  architecture: T.String(),
  name: T.Union([T.String(), T.Null()]),
  parameters: T.Integer(),
  quantization: T.String({ description: 'general.file_type, else the type most weights have (F32, Q4_K_M, …)' }),
  context_length: T.Union([T.Integer(), T.Null()], { description: 'the context it was trained for' }),
  layers: T.Integer(),
  embedding_length: T.Integer(),
  head_count: T.Integer(),
  head_count_kv: T.Union([T.Integer(), T.Array(T.Integer())]),
  key_length: T.Integer(),
  value_length: T.Integer(),
  sliding_window: T.Integer(),
  expert_count: T.Integer(),
  vocab_size: T.Integer(),
  chat_template: T.Boolean(),
  file_size: T.Integer({ description: 'bytes, all split files together' }),
})
const LibraryModelSchema = T.Object({
  id: T.String({ description: 'stable while the file stays where it is' }),
  path: T.String({ description: 'the (first) file: what an instance\'s backend_options.model names' }),
  file: T.String(),
  root: T.String({ description: 'the folder it was found under: the cache or one of models_dirs' }),
  mmproj: T.Boolean({ description: 'a multimodal projector, not a model to run on its own' }),
  split: T.Union([T.Object({ files: T.Array(T.String()), complete: T.Boolean() }), T.Null()]),
  header: T.Union([HeaderSchema, T.Null()]),
  error: T.Union([T.String(), T.Null()], { description: 'why the header could not be read' }),
})
const EstimateSchema = T.Object({
  ctx_size: T.Integer({ description: 'KV cells llama-server allocates (ctx_size rounded as it rounds)' }),
  gpu_layers: T.Integer(),
  parallel: T.Integer(),
  kv_unified: T.Boolean(),
  cache_type_k: T.String(),
  cache_type_v: T.String(),
  weights: Sides,
  kv_cache: Sides,
  compute: Sides,
  output: T.Integer(),
  cpu: T.Integer({ description: 'bytes of RAM' }),
  gpu: T.Integer({ description: 'bytes of GPU memory' }),
  total: T.Integer(),
})
const AvailableSchema = T.Object({
  ram: T.Union([T.Integer(), T.Null()], { description: 'MemAvailable, bytes' }),
  gpu: T.Union([T.Integer(), T.Null()], { description: 'free GPU memory (nvidia-smi), bytes; null without a GPU' }),
  gpus: T.Integer(),
  limit: T.Union([T.Integer(), T.Null()], { description: 'instances.memory_limit, bytes; null when 0' }),
})
const DetailSchema = T.Object({
  model: LibraryModelSchema,
  estimate: T.Union([EstimateSchema, T.Null()]),
  available: AvailableSchema,
  fits: T.Boolean(),
  over: T.Union([T.String(), T.Null()], { description: 'why it would not fit' }),
})

const ESTIMATE_QUERY = {
  ctx_size: 'context size, tokens (default: the model\'s context length)',
  gpu_layers: 'layers on the GPU (default: all when there is a GPU, else 0)',
  parallel: 'slots (default: llama-server\'s auto, 4 with a unified cache)',
  kv_unified: 'true or false (default: true only when parallel is not given, as llama-server)',
  cache_type_k: 'KV cache type of K: f32, f16 (default), bf16, q8_0, q4_0, q4_1, iq4_nl, q5_0, q5_1',
  cache_type_v: 'the same for V',
  ubatch_size: 'micro-batch, tokens (default 512)',
  flash_attn: 'on, off or auto (default auto: on where the device has it, as on CPUs and CUDA)',
}

function intParam(q: Record<string, string | undefined>, key: string, min: number): number | undefined {
  const raw = q[key]
  if (raw === undefined || raw === '') return undefined
  if (!/^-?\d{1,9}$/.test(raw) || Number(raw) < min) throw new BadRequest(`${key} must be a whole number of at least ${min}, got ${JSON.stringify(raw.slice(0, 20))}`)
  return Number(raw)
}

const CACHE_TYPES = ['f32', 'f16', 'bf16', 'q8_0', 'q4_0', 'q4_1', 'iq4_nl', 'q5_0', 'q5_1']

function estimateParams(q: Record<string, string | undefined>): EstimateParams {
  const known = new Set(Object.keys(ESTIMATE_QUERY))
  const unknown = Object.keys(q).find((k) => !known.has(k))
  if (unknown !== undefined) throw new BadRequest(`unknown query parameter ${JSON.stringify(unknown.slice(0, 40))}; known: ${[...known].join(', ')}`)
  const type = (key: string) => {
    const v = q[key]
    if (v === undefined || v === '') return undefined
    if (!CACHE_TYPES.includes(v.toLowerCase())) throw new BadRequest(`${key} must be one of ${CACHE_TYPES.join(', ')}, got ${JSON.stringify(v.slice(0, 20))}`)
    return v.toLowerCase()
  }
  const u = q.kv_unified
  if (u !== undefined && u !== '' && u !== 'true' && u !== 'false') throw new BadRequest(`kv_unified must be true or false, got ${JSON.stringify(u.slice(0, 20))}`)
  const fa = q.flash_attn
  if (fa !== undefined && fa !== '' && !['on', 'off', 'auto'].includes(fa)) throw new BadRequest(`flash_attn must be on, off or auto, got ${JSON.stringify(fa.slice(0, 20))}`)
  return {
    ubatch_size: intParam(q, 'ubatch_size', 1),
    flash_attn: fa || undefined,
    ctx_size: intParam(q, 'ctx_size', 0),
    gpu_layers: intParam(q, 'gpu_layers', 0),
    parallel: intParam(q, 'parallel', 1),
    kv_unified: u === 'true' ? true : u === 'false' ? false : undefined,
    cache_type_k: type('cache_type_k'),
    cache_type_v: type('cache_type_v'),
  }
}

export function libraryRoutes(manager: InstanceManager) {
  const library = manager.models.library
  const json = (data: unknown) => Response.json(data)

  /** A router instance's request: started on demand, forwarded to llama-server's own route. */
  async function toRouter(request: Request, name: string, path: string, body: unknown) {
    noteInstance(request, name)
    const inst = manager.get(name)
    if (inst.options.backend_type !== 'llama_cpp') throw new BadRequest(`instance ${JSON.stringify(name)} is a ${inst.options.backend_type} instance; these routes are for llama_cpp instances`)
    unlimited(request)
    const lease = await manager.acquire(name, request.signal, { route: 'proxy', activity: body !== null, startedAt: performance.now() })
    // Only what llama-server needs: the client's own headers (its key, a body length) are not its business.
    const headers = new Headers({ accept: 'application/json', ...(body !== null && { 'content-type': 'application/json' }) })
    const forwarded = new Request(request.url, { method: body === null ? 'GET' : 'POST', headers, signal: request.signal })
    return forwardLeased(lease, forwarded, path, forwarded.method, body === null ? null : JSON.stringify(body))
  }

  const loadUnload = ({ params, request }: { params: { name: string; '*': string }; request: Request }) => {
    // The model may hold '/' (a cached hub model: org/name:tag): it is the path up to /load or /unload.
    const { path } = splitUrl(request.url)
    const rest = path.split('/').slice(6).join('/')
    const m = /^(.+)\/(load|unload)$/.exec(rest)
    if (!m) throw new BadRequest('use POST /api/v1/llama-cpp/{name}/models/{model}/load or …/unload')
    let model: string
    try {
      model = decodeURIComponent(m[1]!)
    } catch {
      throw new BadRequest('the model name has a malformed percent-encoding')
    }
    return toRouter(request, params.name, `/models/${m[2]}`, { model })
  }

  return new Elysia({ name: 'library' }).guard({ parse: 'none' }, (app) =>
    app
      .get('/api/v1/models/library', async () => json({ roots: library.roots(), models: await library.list() }), {
        detail: doc({
          summary: 'The model library: every GGUF file under the cache and models_dirs, with its header',
          tag: 'Models',
          ok: [200, T.Object({ roots: T.Array(T.String()), models: T.Array(LibraryModelSchema) })],
          description: 'Split models are one entry (their first file). A file whose header cannot be read is listed with `error`.',
        }),
      })
      .get('/api/v1/models/library/:id', async ({ params, query }) => {
        const p = estimateParams(query)
        const { model, info } = await library.get(params.id)
        const a = available(manager.config, manager.models.readers)
        if (p.gpu_layers === undefined) p.gpu_layers = a.gpus > 0 && info ? info.layers + 1 : 0
        const e = info ? estimate(info, p) : null
        const over = e ? overLimit(e, a) : null
        return json({ model, estimate: e, available: a, fits: e !== null && over === null, over })
      }, {
        detail: doc({
          summary: 'One model of the library with its memory estimate for the given settings',
          tag: 'Models',
          ok: [200, DetailSchema],
          errors: [400, 404],
          query: ESTIMATE_QUERY,
          description: 'The estimate\'s formula and its measured error are in docs/models.md.',
        }),
      })
      .get('/api/v1/llama-cpp/:name/models', ({ params, request }) => toRouter(request, params.name, '/models', null), {
        detail: doc({
          summary: 'The models a router-mode llama_cpp instance serves, as llama-server lists them (started on demand)',
          tag: 'Llama.cpp',
          ok: [200, 'any'],
          errors: [400, 404, 502, 503],
          description: 'llama-server\'s GET /models: `{"data": [{"id", "status": {"value": "loaded" | "loading" | "unloaded"}, …}], "object": "list"}`.',
        }),
      })
      .post('/api/v1/llama-cpp/:name/models/*', loadUnload, {
        detail: doc({
          summary: 'POST …/models/{model}/load or …/models/{model}/unload: load or unload a model of a router-mode instance',
          tag: 'Llama.cpp',
          ok: [200, 'any'],
          errors: [400, 404, 502, 503],
          description: 'Forwarded to llama-server\'s POST /models/load or /models/unload with `{"model": "{model}"}` (a body sent is ignored, as the model is in the path). A model id that holds `/` is written with its slashes as they are (`%2F` is refused before routing). llama-server answers `{"success": true}`, or 400/404 with its error.',
        }),
      }),
  )
}
