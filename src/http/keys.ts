/** Key management (management key only): /api/v1/auth/keys. */
import { Elysia } from 'elysia'
import { Type as T } from '@sinclair/typebox'
import { CreateKeySchema, type KeyRing, KeyViewSchema } from '../auth/keys'
import { doc } from './openapi'
import { BadRequest } from '../errors'
import type { InstanceManager } from '../instances/manager'
import { readJson } from './body'

export function keyRoutes(keys: KeyRing, manager: InstanceManager) {
  const limit = manager.config.server.max_body_size
  const id = (raw: string) => {
    if (!/^\d{1,15}$/.test(raw)) throw new BadRequest(`key id must be a number, got ${JSON.stringify(raw.slice(0, 40))}`)
    return Number(raw)
  }
  return new Elysia({ name: 'keys' }).guard({ parse: 'none' }, (app) =>
    app
      .get('/api/v1/auth/keys', () => Response.json(keys.list()), { detail: doc({ summary: 'List inference keys (no secrets)', tag: 'Keys', ok: [200, T.Array(KeyViewSchema)] }) })
      .post('/api/v1/auth/keys', async ({ request }) => {
        const body = await readJson(request, limit)
        const names = (body as { instances?: unknown })?.instances
        if (Array.isArray(names)) {
          const missing = names.find((n) => typeof n === 'string' && !manager.find(n))
          if (missing !== undefined) throw new BadRequest(`instances: no instance named ${JSON.stringify(missing)}`)
        }
        return Response.json(keys.create(body), { status: 201 })
      }, {
        detail: doc({
          summary: 'Create an inference key; the secret is in this answer only',
          tag: 'Keys',
          body: CreateKeySchema,
          ok: [201, T.Composite([KeyViewSchema, T.Object({ key: T.String() })])],
          errors: [400, 413, 500, 507],
        }),
      })
      .get('/api/v1/auth/keys/:id', ({ params }) => Response.json(keys.get(id(params.id))), {
        detail: doc({ summary: 'Get an inference key (no secret)', tag: 'Keys', ok: [200, KeyViewSchema], errors: [400, 404] }),
      })
      .delete('/api/v1/auth/keys/:id', ({ params }) => {
        keys.remove(id(params.id))
        return new Response(null, { status: 204 })
      }, { detail: doc({ summary: 'Revoke an inference key', tag: 'Keys', ok: [204, null], errors: [400, 404, 500, 507] }) }),
  )
}
