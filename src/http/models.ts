/**
 * Model downloads and the cache (src/models): the original llamactl's routes and shapes
 * (its pkg/server/handlers_models.go; webui/src/lib/api.ts llamaCppModelsApi).
 */
import { Type as T } from '@sinclair/typebox'
import { Elysia } from 'elysia'
import { realpathSync } from 'node:fs'
import { sep } from 'node:path'
import { BadRequest, NotFound } from '../errors'
import type { InstanceManager } from '../instances/manager'
import { type CachedModel, parseRepo, RepoCache } from '../models/cache'
import type { ModelDownloads } from '../models/jobs'
import { readJson } from './body'
import { doc } from './openapi'

const ProgressSchema = T.Object({
  bytes_downloaded: T.Integer({ description: 'bytes of the job\'s files on disk so far (with what an earlier, interrupted download left)' }),
  total_bytes: T.Integer({ description: 'bytes of every file the job takes' }),
  current_file: T.String({ description: 'the file being fetched (empty when none)' }),
  files_done: T.Integer(),
  files_total: T.Integer(),
  speed_bytes_per_second: T.Integer({ description: 'over the last 5 seconds' }),
  remaining_seconds: T.Union([T.Integer(), T.Null()], { description: 'at that speed; null while there is none' }),
})

export const JobSchema = T.Object(
  {
    id: T.String(),
    repo: T.String({ description: 'org/name' }),
    tag: T.String({ description: 'the tag asked for (`main` when none)' }),
    format: T.Union([T.Literal('gguf'), T.Literal('safetensors')]),
    status: T.Union(['queued', 'downloading', 'completed', 'failed', 'cancelled'].map((s) => T.Literal(s))),
    progress: ProgressSchema,
    error: T.Union([T.String(), T.Null()], { description: 'why it failed (the hub\'s message where it gave one)' }),
    created_at: T.Integer({ description: 'Unix seconds' }),
    completed_at: T.Union([T.Integer(), T.Null()], { description: 'Unix seconds' }),
    model_path: T.Optional(T.String({ description: 'once completed: the GGUF to give an instance (its first part), or the snapshot folder (safetensors)' })),
  },
  { $id: 'DownloadJob' },
)

const CachedModelSchema = T.Object(
  {
    node: T.String(),
    repo: T.String(),
    tag: T.String({ description: 'the GGUF\'s quantization as llama.cpp reads it from the name (Q4_K_M), or the ref (main) for other files' }),
    files: T.Array(
      T.Object({
        name: T.String({ description: 'path in the repo' }),
        path: T.String({ description: 'path on this machine (in the snapshot)' }),
        size_bytes: T.Integer(),
        type: T.Union([T.Literal('gguf'), T.Literal('mmproj'), T.Literal('preset'), T.Literal('other')]),
      }),
    ),
    size_bytes: T.Integer(),
  },
  { $id: 'CachedModel' },
)

const DownloadBody = T.Object({
  repo: T.String({ description: '"org/name" or "org/name:tag": for GGUF the tag picks the quantization (Q4_K_M), for safetensors it is the revision' }),
  format: T.Optional(T.Union([T.Literal('gguf'), T.Literal('safetensors')], { description: 'default gguf' })),
})

const NODE_QUERY = { node: 'this llamactl\'s own node name (local_node) or nothing; models on other nodes are not served here' }

/** The instances that use any of `models`: by a file's path, `hf_repo` (llama.cpp's `-hf`), or a vLLM/MLX `model` naming the repo. */
export function instancesUsing(manager: InstanceManager, root: string, models: CachedModel[], wholeRepo: boolean): string[] {
  if (!models.length) return []
  const repo = models[0]!.repo
  const dir = new RepoCache(root, repo).dir
  const real = (p: string) => {
    try {
      return realpathSync(p)
    } catch {
      return p
    }
  }
  const files = new Set(models.flatMap((m) => m.files.flatMap((f) => [f.path, real(f.path)])))
  const tags = new Set(models.map((m) => m.tag.toLowerCase()))
  const out: string[] = []
  for (const inst of manager.list()) {
    const o = inst.options.backend_options as Record<string, unknown>
    const uses = (v: unknown): boolean => {
      if (typeof v !== 'string' || v === '') return false
      if (v === repo || v.toLowerCase() === repo.toLowerCase()) return true
      if (files.has(v) || files.has(real(v))) return true
      if (wholeRepo && (v.startsWith(dir + sep) || real(v).startsWith(dir + sep))) return true
      return false
    }
    const hf = o.hf_repo
    let byHf = false
    if (typeof hf === 'string' && hf) {
      const colon = hf.lastIndexOf(':')
      const hfRepo = colon === -1 ? hf : hf.slice(0, colon)
      const hfTag = colon === -1 ? '' : hf.slice(colon + 1).toLowerCase()
      byHf = hfRepo.toLowerCase() === repo.toLowerCase() && (wholeRepo || hfTag === '' || tags.has(hfTag))
    }
    if (byHf || uses(o.model) || uses(o.mmproj) || uses(o.model_draft)) out.push(inst.name)
  }
  return out.sort()
}

export function modelRoutes(manager: InstanceManager, downloads: ModelDownloads) {
  const config = manager.config
  const json = (data: unknown, status = 200) => new Response(JSON.stringify(data), { status, headers: { 'content-type': 'application/json' } })
  const checkNode = (request: Request) => {
    const node = new URL(request.url).searchParams.get('node')
    if (node && node !== config.local_node) throw new NotFound(`no node named ${JSON.stringify(node.slice(0, 60))} serves models here (this is ${JSON.stringify(config.local_node)})`)
  }
  const jobId = (id: string) => {
    if (!/^[0-9a-f]{16}$/.test(id)) throw new BadRequest(`a job id is 16 hexadecimal characters, got ${JSON.stringify(id.slice(0, 40))}`)
    return id
  }

  return new Elysia({ name: 'models' }).guard({ parse: 'none' }, (app) =>
    app
      .post(
        '/api/v1/models/download',
        async ({ request }) => {
          checkNode(request)
          const body = await readJson(request, config.server.max_body_size)
          if (!body || typeof body !== 'object' || Array.isArray(body)) throw new BadRequest('the body must be a JSON object: {"repo": "org/name[:tag]", "format": "gguf" | "safetensors"}')
          const b = body as Record<string, unknown>
          const extra = Object.keys(b).filter((k) => k !== 'repo' && k !== 'format')
          if (extra.length) throw new BadRequest(`unknown field ${JSON.stringify(extra[0]!.slice(0, 40))}: the body has repo and format`)
          const format = b.format ?? 'gguf'
          if (format !== 'gguf' && format !== 'safetensors') throw new BadRequest(`format must be "gguf" or "safetensors", got ${JSON.stringify(String(format).slice(0, 40))}`)
          const { repo, tag } = parseRepo(b.repo)
          const job = downloads.start(repo, tag, format)
          return json({ job_id: job.id, repo, tag }, 202)
        },
        {
          detail: doc({
            summary: 'Download a model from the Hugging Face hub into the cache',
            tag: 'Models',
            body: DownloadBody,
            ok: [202, T.Object({ job_id: T.String(), repo: T.String(), tag: T.String({ description: 'as given ("" when none)' }) })],
            errors: [400, 404, 413],
            query: NODE_QUERY,
            description: 'Starts a job and answers at once; follow it with GET /api/v1/models/jobs/{id}. A repo or tag the hub does not have, a private repo without a token, a full disk or a bad hash end the job as `failed` with the reason.',
          }),
        },
      )
      .get('/api/v1/models/jobs', ({ request }) => (checkNode(request), json({ jobs: downloads.list() })), {
        detail: doc({ summary: 'List download jobs', tag: 'Models', ok: [200, T.Object({ jobs: T.Array(JobSchema) })], errors: [404], query: NODE_QUERY, description: 'Jobs are kept 24 hours after they end (200 ended ones at most), in memory only.' }),
      })
      .get('/api/v1/models/jobs/:id', ({ params, request }) => (checkNode(request), json(downloads.get(jobId(params.id)))), {
        detail: doc({ summary: 'Get a download job', tag: 'Models', ok: [200, JobSchema], errors: [400, 404], query: NODE_QUERY }),
      })
      .delete(
        '/api/v1/models/jobs/:id',
        async ({ params, request }) => {
          checkNode(request)
          await downloads.cancelOrForget(jobId(params.id))
          return new Response(null, { status: 204 })
        },
        {
          detail: doc({
            summary: 'Cancel a download job (or forget an ended one)',
            tag: 'Models',
            ok: [204, null],
            errors: [400, 404],
            query: NODE_QUERY,
            description: 'A queued or downloading job is cancelled (answered once it has stopped; what it fetched of a file is kept and resumed by the next download of it); an ended job is removed from the list.',
          }),
        },
      )
      .get('/api/v1/models', ({ request }) => (checkNode(request), json(downloads.models())), {
        detail: doc({ summary: 'List the models in the cache', tag: 'Models', ok: [200, T.Array(CachedModelSchema)], errors: [404], query: NODE_QUERY, description: 'Every model under backends.llama-cpp.cache_dir (the Hugging Face layout): one entry per GGUF quantization, or per snapshot for other files.' }),
      })
      .delete(
        '/api/v1/models',
        ({ request }) => {
          checkNode(request)
          const q = new URL(request.url).searchParams
          const repo = q.get('repo') ?? ''
          if (!repo) throw new BadRequest('repo is required: DELETE /api/v1/models?repo=org/name[&tag=Q4_K_M]')
          const parsed = parseRepo(repo)
          const tag = q.get('tag') ?? parsed.tag
          if (tag) parseRepo(`${parsed.repo}:${tag}`)
          downloads.delete(parsed.repo, tag, (models) => instancesUsing(manager, downloads.cacheDir, models, tag === ''))
          return new Response(null, { status: 204 })
        },
        {
          detail: doc({
            summary: 'Delete a model from the cache',
            tag: 'Models',
            ok: [204, null],
            errors: [400, 404, 409],
            query: { repo: 'org/name (required)', tag: 'one quantization (or ref) only; without it, every file of the repo', ...NODE_QUERY },
            description: '409 names the instances that use it (their model path, `hf_repo`, or a vLLM/MLX model naming the repo), or the download job under way.',
          }),
        },
      ),
  )
}
