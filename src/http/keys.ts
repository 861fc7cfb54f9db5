/**
 * Key management (management key only): /api/v1/auth/keys. Keys are made from our body
 * (`instances` by name) or the original llamactl's (`permission_mode`, `instance_ids`), and
 * answered with both sets of fields.
 */
import { Elysia } from 'elysia'
import { Type as T } from '@sinclair/typebox'
import { CreateKeySchema, type KeyRing, KeyViewSchema } from '../auth/keys'
import { doc } from './openapi'
import { BadRequest } from '../errors'
import type { InstanceManager } from '../instances/manager'
import { readJson } from './body'

const PermissionSchema = T.Object({ instance_id: T.Integer(), instance_name: T.String() })

export function keyRoutes(keys: KeyRing, manager: InstanceManager) {
  const limit = manager.config.server.max_body_size
  const id = (raw: string) => {
    if (!/^\d{1,15}$/.test(raw)) throw new BadRequest(`key id must be a number, got ${JSON.stringify(raw.slice(0, 40))}`)
    return Number(raw)
  }
  return new Elysia({ name: 'keys' }).guard({ parse: 'none' }, (app) =>
    app
      .get('/api/v1/auth/keys', () => Response.json(keys.list()), { detail: doc({ summary: 'List inference keys (no secrets)', tag: 'Keys', ok: [200, T.Array(KeyViewSchema)] }) })
      .post('/api/v1/auth/keys', async ({ request }) => Response.json(keys.create(await readJson(request, limit), manager.index), { status: 201 }), {
        detail: doc({
          summary: 'Create an inference key; the secret is in this answer only',
          tag: 'Keys',
          body: CreateKeySchema,
          ok: [201, T.Composite([KeyViewSchema, T.Object({ key: T.String() })])],
          errors: [400, 413, 500, 507],
          description: 'Limit it with `instances` (names) or, as the original llamactl does, `permission_mode: "per_instance"` with `instance_ids`.',
        }),
      })
      .get('/api/v1/auth/keys/:id', ({ params }) => Response.json(keys.get(id(params.id))), {
        detail: doc({ summary: 'Get an inference key (no secret)', tag: 'Keys', ok: [200, KeyViewSchema], errors: [400, 404] }),
      })
      .get('/api/v1/auth/keys/:id/permissions', ({ params }) => {
        const key = keys.get(id(params.id))
        // Instances the key names that exist now; a deleted one has no number to show.
        const permissions = (key.instances ?? []).flatMap((name) => {
          const inst = manager.find(name)
          return inst ? [{ instance_id: inst.id, instance_name: name }] : []
        })
        return Response.json(permissions)
      }, {
        detail: doc({
          summary: 'The instances a per_instance key may use (empty for allow_all)',
          tag: 'Keys',
          ok: [200, T.Array(PermissionSchema)],
          errors: [400, 404],
        }),
      })
      .delete('/api/v1/auth/keys/:id', ({ params }) => {
        keys.remove(id(params.id))
        return new Response(null, { status: 204 })
      }, { detail: doc({ summary: 'Revoke an inference key', tag: 'Keys', ok: [204, null], errors: [400, 404, 500, 507] }) }),
  )
}
