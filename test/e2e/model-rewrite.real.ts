import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import OpenAI from 'openai'
import { type Harness, harness } from '../helpers'
import { realEnv, realLlama } from './real'

// The model name both ways with a real llama-server: it knows its model by the file path (no
// alias here); clients ask for the instance by its name and must read that name back.
let h: Harness
let client: OpenAI
let base: string
const { model } = realLlama()

beforeAll(async () => {
  h = await harness(realEnv())
  base = h.listen()
  client = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'not-needed-yet', maxRetries: 0 })
  const made = await h.json('POST', '/api/v1/instances/plain?wait=ready', { backend_options: { model, ctx_size: 512, threads: 1, parallel: 1 } })
  if (made.status !== 201) throw new Error(`set-up failed: ${JSON.stringify(made.body)}`)
}, 120000)
afterAll(async () => {
  await h.close()
})

describe('the model name through llamactl and a real llama-server', () => {
  test('asked directly, llama-server names its model by its file path', async () => {
    const direct = await fetch(`http://127.0.0.1:${h.manager.get('plain').port}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'Hi' }], max_tokens: 2 }),
    })
    expect(((await direct.json()) as { model: string }).model).toBe(model)
  })

  test('a chat completion says the name the client asked for', async () => {
    for (const asked of ['plain', 'plain/anything']) {
      const r = await client.chat.completions.create({ model: asked, messages: [{ role: 'user', content: 'Hello' }], max_tokens: 4 })
      expect([r.model, r.object]).toEqual([asked, 'chat.completion'])
      expect(r.usage!.completion_tokens).toBeGreaterThan(0)
    }
  })

  test('every event of a stream says it, the usage chunk included', async () => {
    const stream = await client.chat.completions.create({
      model: 'plain',
      messages: [{ role: 'user', content: 'Count to ten' }],
      max_tokens: 16,
      stream: true,
      stream_options: { include_usage: true },
    })
    const models: string[] = []
    let usage = 0
    for await (const c of stream) {
      models.push(c.model)
      usage = c.usage?.completion_tokens ?? usage
    }
    expect(models.length).toBeGreaterThan(3)
    expect(new Set(models)).toEqual(new Set(['plain']))
    expect(usage).toBeGreaterThan(0)
  })

  test('the raw stream carries no trace of the backend\'s name, and its length header is gone', async () => {
    const res = await fetch(`${base}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'plain', prompt: 'Once upon a time', max_tokens: 8, stream: true }),
    })
    expect(res.headers.get('content-length')).toBeNull()
    const text = await res.text()
    expect(text).not.toContain(model)
    expect(text).toContain('"model":"plain"')
    expect(text.trim().endsWith('data: [DONE]')).toBe(true)
  })
})
