/**
 * The OpenAI-compatible API: GET /v1/models lists instances; every POST /v1/* goes to the
 * instance named by the body's "model" ("instance/model" addresses a model inside an
 * instance), started on demand when allowed. The body is forwarded as the same bytes, with
 * only the model value rewritten: to the backend's name for its model, and back to the
 * client's in the reply (see model-rewrite.ts).
 */
import { Type as T } from '@sinclair/typebox'
import { Elysia } from 'elysia'
import { noteInstance } from '../log'
import { routeLabel } from '../metrics/llamactl'
import { doc } from './openapi'
import { BadRequest, Forbidden, NotFound } from '../errors'
import { clientOf, mayUse } from './auth'
import { unlimited } from './timeouts'
import { splitUrl } from './url'
import type { InstanceManager } from '../instances/manager'
import { BodyBudget, holdBody, requireJsonType } from './body'
import { forwardLeased } from './leased'
import { findModel } from './json-model'
import { backendRequest, replyRewrite } from './model-rewrite'
import { isRouter, routerModels } from '../models/router'
import type { Instance } from '../instances/instance'

const ModelSchema = T.Object({
  id: T.String({ description: 'the instance name; for a model of a running router-mode llama_cpp instance, instance/model' }),
  object: T.Literal('model'),
  created: T.Integer(),
  owned_by: T.Literal('llamactl'),
  aliases: T.Optional(T.Array(T.String(), { description: 'the other names "model" may use for it (as llama-swap lists them); absent when it has none' })),
})
const ModelListSchema = T.Object({ object: T.Literal('list'), data: T.Array(ModelSchema) })
/** Only `model` is read; everything else goes to the backend untouched. */
const InferenceBodySchema = T.Object({ model: T.String({ description: 'instance name, or instance/model' }) }, { additionalProperties: true })

export function openaiRoutes(manager: InstanceManager) {
  const limit = manager.config.server.max_inference_body_size
  // One budget for every /v1 request: the bytes of bodies read and not yet handed to a backend.
  const budget = new BodyBudget(manager.config.server.max_buffered_body_size)
  manager.metrics.bufferedBodyBytes.collect = () => [[[], budget.used]]
  // A local name or alias, else a remote instance's (src/nodes/).
  const resolve = (model: string) => manager.remote.resolve(manager.names.resolve(model))
  const model = (i: { name: string; created: number; options: { aliases?: string[] } }) => ({
    id: i.name,
    object: 'model',
    created: i.created,
    owned_by: 'llamactl',
    ...(i.options.aliases?.length && { aliases: [...i.options.aliases] }),
  })

  /**
   * A running router instance's models as `instance/model` entries, from llama-server's GET
   * /models (2 s at most; none when it does not answer). A stopped one is listed by its name only.
   */
  async function routerEntries(inst: Instance) {
    let lease
    try {
      lease = manager.hold(inst.name, { route: 'proxy', activity: false, startedAt: performance.now() })
    } catch {
      return []
    }
    let status = 502
    try {
      const r = await fetch(`${lease.upstream}/models`, {
        headers: lease.backendKey ? { authorization: `Bearer ${lease.backendKey}` } : {},
        signal: AbortSignal.timeout(2000),
      })
      status = r.status
      if (!r.ok) return []
      return routerModels(await r.json()).map((m) => ({ id: `${inst.name}/${m.id}`, object: 'model', created: inst.created, owned_by: 'llamactl' }))
    } catch {
      return []
    } finally {
      lease.release(status, performance.now(), null)
    }
  }

  async function toInstance(request: Request, bytes: Uint8Array): Promise<Response> {
    let field
    try {
      field = findModel(bytes)
    } catch (e) {
      throw new BadRequest(`invalid request body: ${(e as Error).message}`)
    }
    if (!field || !field.value) throw new BadRequest('the request body needs a "model" field naming an instance')
    const slash = field.value.indexOf('/')
    // An alias stands for its instance everywhere after this, the key's permission included.
    const name = resolve(slash === -1 ? field.value : field.value.slice(0, slash))
    noteInstance(request, name)
    if (!mayUse(request, name)) throw new Forbidden(`this key may not use instance ${JSON.stringify(name)}`)
    unlimited(request)
    const startedAt = performance.now()
    const { path, query } = splitUrl(request.url)
    // On a remote node: the node resolves the model and starts the instance on demand itself.
    if (manager.remote.has(name)) {
      return manager.remote.forwarder.pass(name, request, { pathAndQuery: path + query, method: 'POST', body: bytes, route: routeLabel(path), startedAt })
    }
    const lease = await manager.acquire(name, request.signal, { route: routeLabel(path), activity: true, startedAt, client: clientOf(request) })
    // The backend gets its own name for the model; the client gets back the name it asked for.
    return forwardLeased(lease, request, path + query, 'POST', backendRequest(bytes, field, lease.instance.options), replyRewrite(field.value))
  }

  const inference = async ({ request }: { request: Request }) => {
    requireJsonType(request)
    const held = await holdBody(request, limit, budget)
    // Given back once the backend has the body (forward resolves with the response's head),
    // or when anything on the way fails.
    try {
      return await toInstance(request, held.bytes)
    } finally {
      held.release()
    }
  }

  // The seed's inference routes get their own entries (in the OpenAPI document too); the
  // wildcard after them takes every other POST /v1/* the backend may serve.
  const seedRoutes: [string, string][] = [
    ['/v1/chat/completions', 'Chat completions'],
    ['/v1/completions', 'Text completions'],
    ['/v1/embeddings', 'Embeddings'],
    ['/v1/rerank', 'Rerank documents'],
    ['/v1/reranking', 'Rerank documents (llama-server\'s other name)'],
  ]
  const inferenceDoc = (summary: string) =>
    doc({
      summary,
      tag: 'OpenAI-compatible',
      auth: 'inference',
      body: InferenceBodySchema,
      ok: [200, 'stream'],
      errors: [400, 404, 409, 413, 415, 502, 503],
      description: 'The body\'s `model` names the instance or one of its aliases (`instance/model` for a model inside it); started on demand when allowed. The body is forwarded byte for byte but for its `model`: the backend is sent its own name for its model, and the `model` of the reply (JSON, every stream event) is the name asked for.',
    })

  return new Elysia({ name: 'openai' }).guard({ parse: 'none' }, (app) => {
    app
      .get('/v1/models', async ({ request }) => {
        const local = manager.list().filter((i) => mayUse(request, i.name))
        const remote = manager.remote.list().map((r) => ({ name: r.name, created: r.created, options: manager.remote.view(r).options })).filter((i) => mayUse(request, i.name))
        // A running router instance here is followed by its models, as instance/model.
        const routers = local.filter((i) => isRouter(i.options) && i.status === 'running')
        const inner = new Map(await Promise.all(routers.map(async (i) => [i.name, await routerEntries(i)] as const)))
        return Response.json({ object: 'list', data: [...local.flatMap((i) => [model(i), ...(inner.get(i.name) ?? [])]), ...remote.map(model)] })
      },
        { detail: doc({ summary: 'List instances as OpenAI models', tag: 'OpenAI-compatible', auth: 'inference', ok: [200, ModelListSchema] }) },
      )
      .get('/v1/models/:id', ({ params, request }) => {
        const name = resolve(params.id)
        const r = manager.remote.find(name)
        const inst = r ? { name: r.name, created: r.created, options: manager.remote.view(r).options } : manager.get(name)
        if (!mayUse(request, inst.name)) throw new NotFound(`instance ${JSON.stringify(params.id)} not found`)
        return Response.json(model(inst))
      }, { detail: doc({ summary: 'One instance as an OpenAI model', tag: 'OpenAI-compatible', auth: 'inference', ok: [200, ModelSchema], errors: [404] }) })
    for (const [path, summary] of seedRoutes) app.post(path, inference, { detail: inferenceDoc(summary) })
    return app.post('/v1/*', inference, { detail: inferenceDoc('Any other POST /v1/* route of the backend (responses, messages, …)') })
  })
}
