import { afterEach, describe, expect, test } from 'bun:test'
import { type Harness, harness } from '../helpers'

let h: Harness
afterEach(async () => {
  await h?.close()
})

const openapiPath = (p: string) => p.split('/').map((s) => (s.startsWith(':') ? `{${s.slice(1)}}` : s === '*' ? '{path}' : s)).join('/')

describe('API documentation', () => {
  test('every registered route is in the OpenAPI document, documented', async () => {
    h = await harness({ LLAMACTL_ENABLE_SWAGGER: 'true' })
    const res = await h.request('GET', '/swagger/json')
    expect(res.status).toBe(200)
    const spec = (await res.json()) as { paths: Record<string, Record<string, { summary: string; tags: string[] }>> }
    const missing: string[] = []
    for (const r of h.app.routes.routes) {
      if (r.path.startsWith('/swagger')) continue
      const ops = spec.paths[openapiPath(r.path)]
      const methods = r.method === 'ALL' ? ['get', 'post', 'put', 'delete'] : [r.method.toLowerCase()]
      for (const m of methods) {
        const op = ops?.[m]
        if (!op || !op.summary || op.summary === 'undocumented') missing.push(`${r.method} ${r.path}`)
      }
    }
    expect(missing).toEqual([])
  })

  // Every route ../shared/seed/api-reference.md names, as it writes it (`*`: the rest of the path).
  const SEED_ROUTES = [
    'GET /api/v1/version',
    'GET /api/v1/server/help',
    'GET /api/v1/server/version',
    'GET /api/v1/server/devices',
    'GET /api/v1/instances',
    'GET /api/v1/instances/{name}',
    'POST /api/v1/instances/{name}',
    'PUT /api/v1/instances/{name}',
    'DELETE /api/v1/instances/{name}',
    'POST /api/v1/instances/{name}/start',
    'POST /api/v1/instances/{name}/stop',
    'POST /api/v1/instances/{name}/restart',
    'GET /api/v1/instances/{name}/logs',
    'GET /api/v1/instances/{name}/proxy/*',
    'POST /api/v1/instances/{name}/proxy/*',
    'GET /v1/models',
    'POST /v1/chat/completions',
    'POST /v1/completions',
    'POST /v1/embeddings',
    'POST /v1/rerank',
    'POST /v1/reranking',
    'POST /api/v1/backends/llama-cpp/parse-command',
    'POST /api/v1/backends/mlx/parse-command',
    'POST /api/v1/backends/vllm/parse-command',
  ]

  test('every route the seed names is in the document under its own path, documented', async () => {
    h = await harness({ LLAMACTL_ENABLE_SWAGGER: 'true' })
    const spec = (await (await h.request('GET', '/swagger/json')).json()) as { paths: Record<string, Record<string, { summary?: string }>> }
    const missing = SEED_ROUTES.filter((r) => {
      const [method, path] = r.split(' ') as [string, string]
      const op = spec.paths[path.replace(/\*$/, '{path}')]?.[method.toLowerCase()]
      return !op?.summary || op.summary === 'undocumented'
    })
    expect(missing).toEqual([])
    // The seed's inference routes are told apart from the catch-all that serves the rest.
    expect(spec.paths['/v1/chat/completions']!.post!.summary).not.toBe(spec.paths['/v1/{path}']!.post!.summary)
  })

  test('request and response schemas come from the TypeBox schemas the handlers use', async () => {
    h = await harness({ LLAMACTL_ENABLE_SWAGGER: 'true' })
    const spec = (await (await h.request('GET', '/swagger/json')).json()) as any
    const create = spec.paths['/api/v1/instances/{name}'].post
    expect(Object.keys(create.requestBody.content['application/json'].schema.properties)).toEqual(
      expect.arrayContaining(['backend_type', 'backend_options', 'auto_restart', 'max_restarts', 'restart_delay', 'on_demand_start', 'idle_timeout', 'environment']),
    )
    expect(create.requestBody.content['application/json'].schema.additionalProperties).toBe(false)
    expect(create.responses['201'].content['application/json'].schema.properties.status.anyOf.map((s: any) => s.const)).toContain('running')
    expect(create.responses['409'].content['application/json'].schema.$ref).toBe('#/components/schemas/Error')
    expect(spec.components.schemas.Error.properties.error.type).toBe('string')
    expect(create.parameters[0]).toMatchObject({ name: 'name', in: 'path', required: true })
    expect(spec.paths['/v1/{path}'].post.security).toEqual([{ inferenceKey: [] }])
  })

  test('the docs page loads nothing from another host', async () => {
    h = await harness({ LLAMACTL_ENABLE_SWAGGER: 'true' })
    const page = await (await h.request('GET', '/swagger')).text()
    const refs = [...page.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!)
    expect(refs.length).toBeGreaterThan(1)
    for (const r of refs) {
      expect(r.startsWith('/swagger/')).toBe(true)
      const asset = await h.request('GET', r)
      expect([r, asset.status]).toEqual([r, 200])
    }
    const init = await (await h.request('GET', '/swagger/assets/init.js')).text()
    expect(init).toContain('validatorUrl: null')
  })

  test('off by default', async () => {
    h = await harness()
    expect((await h.request('GET', '/swagger')).status).toBe(404)
    expect((await h.request('GET', '/swagger/json')).status).toBe(404)
  })
})
