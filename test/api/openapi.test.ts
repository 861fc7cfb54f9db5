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
