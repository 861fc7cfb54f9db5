import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import OpenAI from 'openai'
import { type Harness, harness, tempDir, waitFor } from '../helpers'
import { realEnv, realLlama } from './real'

// A main llamactl in front of a node llamactl running a real llama-server, through the official client.
const KEY = 'node-management-key-0123456789'
let node: Harness
let main: Harness
let client: OpenAI
const configDir = tempDir()
const { model } = realLlama()

beforeAll(async () => {
  node = await harness({ ...realEnv(), LLAMACTL_LOCAL_NODE: 'w1', LLAMACTL_REQUIRE_MANAGEMENT_AUTH: 'true', LLAMACTL_REQUIRE_INFERENCE_AUTH: 'true', LLAMACTL_MANAGEMENT_KEYS: KEY })
  const address = node.listen()
  const file = join(configDir, 'main.yaml')
  writeFileSync(file, `nodes:\n  w1:\n    address: "${address}"\n    api_key: "${KEY}"\n`)
  main = await harness({ LLAMACTL_CONFIG_PATH: file, LLAMACTL_NODE_HEALTH_CHECK_INTERVAL: '0.5' })
  client = new OpenAI({ baseURL: `${main.listen()}/v1`, apiKey: 'unused', maxRetries: 0 })
  const made = await main.json('POST', '/api/v1/instances/far?wait=ready', { backend_options: { model, ctx_size: 512, threads: 1, parallel: 1 }, nodes: ['w1'] })
  if (made.status !== 201) throw new Error(`set-up failed: ${JSON.stringify(made.body)}`)
}, 120000)
afterAll(async () => {
  await main?.close()
  await node?.close()
  rmSync(configDir, { recursive: true, force: true })
})

describe('a real llama-server on a remote node, through the main node', () => {
  test('the instance runs on the node, and the main node lists it there', async () => {
    expect(node.manager.get('far').status).toBe('running')
    await waitFor(async () => (await main.json('GET', '/api/v1/nodes')).body.w1.running === 1)
    const list = (await main.json('GET', '/api/v1/instances')).body
    expect(list.map((i: { name: string; node: string; status: string }) => [i.name, i.node, i.status])).toEqual([['far', 'w1', 'running']])
  })

  test('chat completion, plain and streamed, with the name asked for', async () => {
    const r = await client.chat.completions.create({ model: 'far', messages: [{ role: 'user', content: 'Hello' }], max_tokens: 8 })
    expect([r.object, r.model]).toEqual(['chat.completion', 'far'])
    expect(r.usage!.completion_tokens).toBeGreaterThan(0)
    const stream = await client.chat.completions.create({ model: 'far', messages: [{ role: 'user', content: 'Count' }], max_tokens: 12, stream: true })
    let chunks = 0
    for await (const c of stream) {
      chunks++
      expect(c.model).toBe('far')
    }
    expect(chunks).toBeGreaterThan(2)
  })

  test('logs and the proxy come from the node', async () => {
    const logs = await (await main.request('GET', '/api/v1/instances/far/logs?lines=50')).text()
    expect(logs).toContain('llama')
    const health = await main.request('GET', '/api/v1/instances/far/proxy/health')
    expect(health.status).toBe(200)
  })
})
