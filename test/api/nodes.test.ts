import { afterEach, describe, expect, test } from 'bun:test'
import { type Harness, harness } from '../helpers'

let h: Harness | undefined
afterEach(async () => {
  await h?.close()
  h = undefined
})

describe('GET /api/v1/nodes', () => {
  test('lists this llamactl as the one node, in the original\'s shape (name → {address})', async () => {
    h = await harness()
    const list = await h.json('GET', '/api/v1/nodes')
    expect(list).toEqual({ status: 200, body: { main: { address: '' } } })
    expect(await h.json('GET', '/api/v1/nodes/main')).toEqual({ status: 200, body: { address: '' } })
    const other = await h.json('GET', '/api/v1/nodes/worker1')
    expect(other.status).toBe(404)
    expect(other.body.error).toContain('main')
  })

  test('the local node is named local_node', async () => {
    h = await harness({ LLAMACTL_LOCAL_NODE: 'gpu-box' })
    expect((await h.json('GET', '/api/v1/nodes')).body).toEqual({ 'gpu-box': { address: '' } })
    expect((await h.json('GET', '/api/v1/nodes/main')).status).toBe(404)
  })

  test('needs a management key like every /api/v1 route', async () => {
    h = await harness({ LLAMACTL_REQUIRE_MANAGEMENT_AUTH: 'true', LLAMACTL_MANAGEMENT_KEYS: 'mgmt-key-0123456789' })
    expect((await h.request('GET', '/api/v1/nodes')).status).toBe(401)
    expect((await h.request('GET', '/api/v1/nodes', undefined, { authorization: 'Bearer mgmt-key-0123456789' })).status).toBe(200)
  })
})
