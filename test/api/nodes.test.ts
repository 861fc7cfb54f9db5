import { afterEach, describe, expect, test } from 'bun:test'
import { type Harness, harness } from '../helpers'

let h: Harness | undefined
afterEach(async () => {
  await h?.close()
  h = undefined
})

describe('GET /api/v1/nodes', () => {
  test('lists this llamactl as a node, in the original\'s shape (name → {address}) with what is known of it', async () => {
    h = await harness()
    await h.json('POST', '/api/v1/instances/one?wait=ready', { backend_options: { model: 'x' } })
    const list = await h.json('GET', '/api/v1/nodes')
    expect(list.status).toBe(200)
    expect(Object.keys(list.body)).toEqual(['main'])
    expect(list.body.main).toMatchObject({ address: '', local: true, reachable: true, running: 1, total: 1, max_running_instances: -1, error: null })
    expect(list.body.main.version).toEqual(expect.any(String))
    expect((await h.json('GET', '/api/v1/nodes/main')).body).toMatchObject({ address: '', local: true, total: 1 })
    const other = await h.json('GET', '/api/v1/nodes/worker1')
    expect(other.status).toBe(404)
    expect(other.body.error).toContain('main')
  })

  test('the local node is named local_node, and instances may name it', async () => {
    h = await harness({ LLAMACTL_LOCAL_NODE: 'gpu-box' })
    expect(Object.keys((await h.json('GET', '/api/v1/nodes')).body)).toEqual(['gpu-box'])
    expect((await h.json('GET', '/api/v1/nodes/main')).status).toBe(404)
    const made = await h.json('POST', '/api/v1/instances/here', { backend_options: { model: 'x' }, nodes: ['gpu-box'] })
    expect([made.status, made.body.node, made.body.options.nodes]).toEqual([201, 'gpu-box', ['gpu-box']])
    const wrong = await h.json('POST', '/api/v1/instances/there', { backend_options: { model: 'x' }, nodes: ['main'] })
    expect(wrong.status).toBe(400)
    expect(wrong.body.error).toContain('"main" is not a configured node')
    expect((await h.json('GET', '/api/v1/instances')).body.map((i: { name: string }) => i.name)).toEqual(['here'])
  })

  test('needs a management key like every /api/v1 route', async () => {
    h = await harness({ LLAMACTL_REQUIRE_MANAGEMENT_AUTH: 'true', LLAMACTL_MANAGEMENT_KEYS: 'mgmt-key-0123456789' })
    expect((await h.request('GET', '/api/v1/nodes')).status).toBe(401)
    expect((await h.request('GET', '/api/v1/nodes', undefined, { authorization: 'Bearer mgmt-key-0123456789' })).status).toBe(200)
  })
})
