import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import OpenAI from 'openai'
import { type Harness, harness } from '../helpers'
import { realEnv, realLlama } from './real'

// The official openai client, as a real user's client, against real llama-server instances.
let h: Harness
let client: OpenAI
let base: string
const { model } = realLlama()
const small = { model, ctx_size: 512, threads: 1, parallel: 1 }

beforeAll(async () => {
  h = await harness(realEnv())
  base = h.listen()
  client = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'not-needed-yet', maxRetries: 0 })
  const made = await Promise.all([
    h.json('POST', '/api/v1/instances/chat', { backend_options: small, on_demand_start: true }),
    h.json('POST', '/api/v1/instances/emb', { backend_options: { ...small, embeddings: true, pooling: 'mean' } }),
    h.json('POST', '/api/v1/instances/rank', { backend_options: { ...small, reranking: true } }),
  ])
  for (const m of made) if (m.status !== 201) throw new Error(`set-up failed: ${JSON.stringify(m.body)}`)
}, 120000)
afterAll(async () => {
  await h.close()
})

describe('OpenAI client through llamactl to a real llama-server', () => {
  test('models.list shows every instance', async () => {
    const ids = []
    for await (const m of client.models.list()) ids.push(m.id)
    expect(ids.sort()).toEqual(['chat', 'emb', 'rank'])
  })

  test('chat completion', async () => {
    const r = await client.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'Hello' }], max_tokens: 8 })
    expect(r.object).toBe('chat.completion')
    expect(r.choices[0]!.message.role).toBe('assistant')
    expect(r.usage!.completion_tokens).toBeGreaterThan(0)
  })

  test('streamed chat completion arrives as several chunks', async () => {
    const stream = await client.chat.completions.create({
      model: 'chat',
      messages: [{ role: 'user', content: 'Count' }],
      max_tokens: 12,
      stream: true,
    })
    let chunks = 0
    let finish: string | null = null
    for await (const c of stream) {
      chunks++
      finish = c.choices[0]?.finish_reason ?? finish
    }
    expect(chunks).toBeGreaterThan(2)
    expect(finish).not.toBeNull()
  })

  test('completion', async () => {
    const r = await client.completions.create({ model: 'chat', prompt: 'Once upon a time', max_tokens: 8 })
    expect(r.choices[0]!.text.length).toBeGreaterThanOrEqual(0)
    expect(r.usage!.completion_tokens).toBeGreaterThan(0)
  })

  test('embeddings (embeddings: true)', async () => {
    const r = await client.embeddings.create({ model: 'emb', input: ['hello world', 'goodbye'] })
    expect(r.data).toHaveLength(2)
    expect(r.data[0]!.embedding.length).toBeGreaterThan(0)
  })

  test('rerank (reranking: true)', async () => {
    const res = await fetch(`${base}/v1/rerank`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'rank', query: 'llama', documents: ['a llama', 'a cat', 'a car'] }),
    })
    expect(res.status).toBe(200)
    const body = (await res.json()) as { results: { index: number; relevance_score: number }[] }
    expect(body.results.map((r) => r.index).sort()).toEqual([0, 1, 2])
  })

  test('a stopped instance with on_demand_start is started by the request', async () => {
    expect((await h.json('POST', '/api/v1/instances/chat/stop')).body.status).toBe('stopped')
    const r = await client.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 4 })
    expect(r.choices).toHaveLength(1)
    expect(h.manager.get('chat').status).toBe('running')
  })

  test('an unknown model is a 404 the client reports', async () => {
    let err: unknown
    try {
      await client.chat.completions.create({ model: 'ghost', messages: [{ role: 'user', content: 'x' }] })
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(OpenAI.NotFoundError)
    expect((err as InstanceType<typeof OpenAI.NotFoundError>).message).toContain('ghost')
  })
})
