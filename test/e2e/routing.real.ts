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
    // Each is sent its alias as the model; the client is answered with the name it asked for.
    h.json('POST', '/api/v1/instances/chat?wait=ready', { backend_options: { ...small, alias: 'chat-backend' }, on_demand_start: true }),
    h.json('POST', '/api/v1/instances/emb?wait=ready', { backend_options: { ...small, alias: 'emb-backend', embeddings: true, pooling: 'mean' } }),
    h.json('POST', '/api/v1/instances/rank?wait=ready', { backend_options: { ...small, alias: 'rank-backend', reranking: true } }),
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
    expect(r.model).toBe('chat')
    expect(r.choices[0]!.message.role).toBe('assistant')
    expect(r.choices[0]!.message.content!.length).toBeGreaterThan(0)
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
    const models = new Set<string>()
    for await (const c of stream) {
      chunks++
      models.add(c.model)
      finish = c.choices[0]?.finish_reason ?? finish
    }
    expect(chunks).toBeGreaterThan(2)
    expect(finish).not.toBeNull()
    expect([...models]).toEqual(['chat'])
  })

  test('back-to-back requests after streams all succeed (llama-server closes reused connections now and then)', async () => {
    const post = (body: Record<string, unknown>) =>
      fetch(`${base}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'chat', messages: [{ role: 'user', content: 'Count' }], max_tokens: 4, ...body }) })
    const statuses: number[] = []
    for (let i = 0; i < 60; i++) {
      for (const stream of [true, false]) {
        const res = await post({ stream })
        const text = await res.text()
        statuses.push(res.status)
        if (res.status !== 200) throw new Error(`request ${statuses.length} (stream ${stream}): ${res.status} ${text.slice(0, 200)}`)
      }
    }
    expect(statuses).toEqual(statuses.map(() => 200))
  })

  test('completion', async () => {
    const body = { prompt: 'Once upon a time', max_tokens: 8, temperature: 0 }
    const r = await client.completions.create({ model: 'chat', ...body })
    expect(r.model).toBe('chat')
    expect(r.choices[0]!.text.length).toBeGreaterThan(0)
    expect([r.choices[0]!.finish_reason, r.usage!.completion_tokens]).toEqual(['length', 8])
    // greedy: the same text the backend gives when asked directly
    const direct = await fetch(`http://127.0.0.1:${h.manager.get('chat').port}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    })
    expect(((await direct.json()) as { choices: { text: string }[] }).choices[0]!.text).toBe(r.choices[0]!.text)
  })

  test('embeddings (embeddings: true)', async () => {
    const r = await client.embeddings.create({ model: 'emb', input: ['hello world', 'goodbye'], encoding_format: 'float' })
    expect(r.data).toHaveLength(2)
    // llama-server echoes the request's model here: the vectors are the emb instance's own (its mean pooling)
    const direct = await fetch(`http://127.0.0.1:${h.manager.get('emb').port}/v1/embeddings`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ input: ['hello world', 'goodbye'], encoding_format: 'float' }),
    })
    expect(r.data.map((d) => d.embedding)).toEqual(((await direct.json()) as { data: { embedding: number[] }[] }).data.map((d) => d.embedding))
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
    // the rank instance's own scores (llama-server echoes the request's model here)
    const direct = await fetch(`http://127.0.0.1:${h.manager.get('rank').port}/v1/rerank`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: 'llama', documents: ['a llama', 'a cat', 'a car'] }),
    })
    expect(body.results).toEqual(((await direct.json()) as typeof body).results)
  })

  test('a stopped instance with on_demand_start is started by the request', async () => {
    expect((await h.json('POST', '/api/v1/instances/chat/stop')).body.status).toBe('stopped')
    const r = await client.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 4 })
    expect(r.model).toBe('chat')
    expect(r.choices).toHaveLength(1)
    expect(h.manager.get('chat').status).toBe('running')
  })

  test('an unknown model is a 400 the client reports (as the seed and the original say)', async () => {
    let err: unknown
    try {
      await client.chat.completions.create({ model: 'ghost', messages: [{ role: 'user', content: 'x' }] })
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(OpenAI.BadRequestError)
    expect((err as InstanceType<typeof OpenAI.BadRequestError>).message).toContain('ghost')
  })
})
