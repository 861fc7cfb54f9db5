/** The seed's Instances and Instance Operations routes (proxy: see proxy.ts). */
import { Elysia } from 'elysia'
import { BadRequest } from '../errors'
import type { InstanceManager } from '../instances/manager'
import { readJson } from './body'
import { unlimited } from './timeouts'

export function instanceRoutes(manager: InstanceManager) {
  const bodyLimit = manager.config.server.max_body_size
  const json = (data: unknown, status = 200) =>
    new Response(JSON.stringify(data), { status, headers: { 'content-type': 'application/json' } })

  return new Elysia({ name: 'instances' }).guard({ parse: 'none' }, (app) => app
    .get('/api/v1/instances', () => json(manager.list().map((i) => i.view())))
    .get('/api/v1/instances/:name', ({ params }) => json(manager.get(params.name).view()))
    // Operations that wait for a backend (loading a model can take minutes) are exempt from the idle timeout.
    .post('/api/v1/instances/:name', async ({ params, request }) => {
      const body = await readJson(request, bodyLimit)
      unlimited(request)
      return json(await manager.create(params.name, body), 201)
    })
    .put('/api/v1/instances/:name', async ({ params, request }) => {
      const body = await readJson(request, bodyLimit)
      unlimited(request)
      return json(await manager.update(params.name, body))
    })
    .delete('/api/v1/instances/:name', async ({ params, request }) => {
      unlimited(request)
      await manager.remove(params.name)
      return new Response(null, { status: 204 })
    })
    .post('/api/v1/instances/:name/start', async ({ params, request }) => (unlimited(request), json(await manager.start(params.name))))
    .post('/api/v1/instances/:name/stop', async ({ params, request }) => (unlimited(request), json(await manager.stop(params.name))))
    .post('/api/v1/instances/:name/restart', async ({ params, request }) => (unlimited(request), json(await manager.restart(params.name))))
    .get('/api/v1/instances/:name/logs', ({ params, query }) => {
      const inst = manager.get(params.name)
      const lines = parseLines(query.lines)
      const tail = inst.log.tail(lines)
      return new Response(tail.length ? `${tail.join('\n')}\n` : '', {
        headers: { 'content-type': 'text/plain; charset=utf-8' },
      })
    }))
}

function parseLines(raw: string | undefined): number | undefined {
  if (raw === undefined || raw === '') return undefined
  if (!/^-?\d+$/.test(raw)) throw new BadRequest(`lines must be a whole number (-1 for all), got ${JSON.stringify(raw.slice(0, 40))}`)
  const n = Number(raw)
  return n < 0 ? undefined : n
}
