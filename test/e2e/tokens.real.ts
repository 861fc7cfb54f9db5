import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { type Harness, harness } from '../helpers'
import { realEnv, realLlama } from './real'

// Token metrics against a real llama-server: whatever shape a response comes in (plain or
// streamed, with or without stream_options.include_usage, its prompt cold or mostly served from
// the server's prompt cache), /metrics must move by exactly what the server's own non-stream
// `usage` says for the same request. Greedy sampling with ignore_eos makes the same request
// generate the same tokens each time.
let h: Harness
let base: string
const { model } = realLlama()

beforeAll(async () => {
  h = await harness(realEnv())
  base = h.listen()
  // one slot, so consecutive requests share its prompt cache
  const made = await h.json('POST', '/api/v1/instances/tok', { backend_options: { model, ctx_size: 512, threads: 1, parallel: 1 } })
  if (made.status !== 201 || made.body.status !== 'running') throw new Error(`set-up failed: ${JSON.stringify(made.body)}`)
}, 120000)
afterAll(async () => {
  await h.close()
})

interface Usage {
  prompt_tokens: number
  completion_tokens: number
  prompt_tokens_details?: { cached_tokens?: number }
}

/** A counter's value for instance "tok", 0 when absent. */
function counter(text: string, name: string, labels = 'instance="tok"'): number {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name}{`) && line.slice(0, line.lastIndexOf(' ')).includes(labels)) return Number(line.slice(line.lastIndexOf(' ') + 1))
  }
  return 0
}

async function snapshot() {
  const res = await h.request('GET', '/metrics')
  expect(res.status).toBe(200)
  const text = await res.text()
  let requests = 0
  for (const line of text.split('\n')) if (line.startsWith('llamactl_requests_total{') && line.includes('instance="tok"')) requests += Number(line.slice(line.lastIndexOf(' ') + 1))
  return { requests, prompt: counter(text, 'llamactl_prompt_tokens_total'), completion: counter(text, 'llamactl_completion_tokens_total') }
}

/** How far the token counters moved over one request (metrics are recorded just after it ends). */
async function moved(send: () => Promise<void>): Promise<{ prompt: number; completion: number }> {
  const before = await snapshot()
  await send()
  let after = await snapshot()
  for (let i = 0; i < 200 && after.requests === before.requests; i++) {
    await Bun.sleep(10)
    after = await snapshot()
  }
  expect(after.requests).toBe(before.requests + 1)
  return { prompt: after.prompt - before.prompt, completion: after.completion - before.completion }
}

const post = (path: string, body: Record<string, unknown>) =>
  fetch(base + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })

const chatBody = (content: string, extra: Record<string, unknown> = {}) => ({
  model: 'tok',
  messages: [{ role: 'user', content }],
  max_tokens: 6,
  temperature: 0,
  ignore_eos: true,
  ...extra,
})

async function plain(path: string, body: Record<string, unknown>): Promise<{ usage: Usage; model: string; moved: { prompt: number; completion: number } }> {
  let r: { usage: Usage; model: string } | undefined
  const m = await moved(async () => {
    const res = await post(path, body)
    expect(res.status).toBe(200)
    r = (await res.json()) as { usage: Usage; model: string }
  })
  return { usage: r!.usage, model: r!.model, moved: m }
}

// biome-ignore lint: the events are llama-server's JSON, read field by field below
type Event = Record<string, any>
async function streamed(path: string, body: Record<string, unknown>): Promise<{ events: Event[]; moved: { prompt: number; completion: number } }> {
  let events: Event[] = []
  const m = await moved(async () => {
    const res = await post(path, { ...body, stream: true })
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toContain('text/event-stream')
    const text = await res.text()
    expect(text.trimEnd().endsWith('data: [DONE]')).toBe(true)
    events = text.split('\n\n').filter((e) => e.startsWith('data: {')).map((e) => JSON.parse(e.slice(6)))
  })
  return { events, moved: m }
}

const asCounted = (u: Usage) => ({ prompt: u.prompt_tokens, completion: u.completion_tokens })

describe('token metrics through llamactl to a real llama-server', () => {
  test('plain: counted as its usage, cold and with the prompt repeated (served from the cache)', async () => {
    const body = chatBody('a prompt about counting tokens, sent twice')
    const cold = await plain('/v1/chat/completions', body)
    const warm = await plain('/v1/chat/completions', body)
    expect(cold.usage.prompt_tokens).toBeGreaterThan(1)
    expect(warm.usage.prompt_tokens_details?.cached_tokens).toBe(warm.usage.prompt_tokens - 1)
    expect(cold.moved).toEqual(asCounted(cold.usage))
    expect(warm.moved).toEqual(asCounted(warm.usage))
  })

  test('streamed without include_usage: no usage reaches the client, and the cached prompt still counts whole', async () => {
    const body = chatBody('another prompt, first plain then streamed')
    const { usage } = await plain('/v1/chat/completions', body)
    const { events, moved: m } = await streamed('/v1/chat/completions', body)
    expect(events.filter((e) => 'usage' in e)).toEqual([])
    // what the server sends instead: timings on the finish chunk, most of the prompt from its cache
    const last = events.at(-1)!
    expect(last.choices[0].finish_reason).not.toBeNull()
    expect(last.timings.cache_n).toBe(usage.prompt_tokens - 1)
    expect(last.timings.prompt_n).toBe(1)
    expect(last.timings.predicted_n).toBe(usage.completion_tokens)
    expect(m).toEqual(asCounted(usage))
  })

  test('streamed with include_usage: one usage chunk, as the server sent it, counted once', async () => {
    const body = chatBody('a third prompt, streamed asking for usage')
    const { usage } = await plain('/v1/chat/completions', body)
    const { events, moved: m } = await streamed('/v1/chat/completions', { ...body, stream_options: { include_usage: true } })
    const withUsage = events.filter((e) => 'usage' in e)
    expect(withUsage).toHaveLength(1)
    expect(withUsage[0]).toBe(events.at(-1))
    expect(withUsage[0]!.choices).toEqual([])
    expect(withUsage[0]!.usage.prompt_tokens).toBe(usage.prompt_tokens)
    expect(withUsage[0]!.usage.prompt_tokens_details.cached_tokens).toBe(usage.prompt_tokens - 1)
    expect(m).toEqual(asCounted(usage))
  })

  test('streamed cold (nothing of the prompt cached but the chat template): counted as its usage', async () => {
    // the cache now holds the last prompt; this one shares only the template's first tokens
    const body = chatBody('zebra quantum lantern orchestra, a different prompt entirely')
    const { events, moved: m } = await streamed('/v1/chat/completions', body)
    const { usage } = await plain('/v1/chat/completions', body) // afterwards: it is the same request
    const t = events.at(-1)!.timings
    expect(t.prompt_n).toBeGreaterThan(1)
    expect(t.prompt_n + t.cache_n).toBe(usage.prompt_tokens)
    expect(m).toEqual(asCounted(usage))
  })

  test('/v1/completions streamed, with and without include_usage, and repeated', async () => {
    const body = { model: 'tok', prompt: 'Once upon a time there was a llama', max_tokens: 5, temperature: 0, ignore_eos: true }
    const { usage } = await plain('/v1/completions', body)
    for (const extra of [{}, { stream_options: { include_usage: true } }, {}]) {
      const { moved: m } = await streamed('/v1/completions', { ...body, ...extra })
      expect(m).toEqual(asCounted(usage))
    }
  })

  test('the response names the model as the server does (its model path), plain and streamed', async () => {
    // llamactl routes by its instance name and forwards the server's answer untouched
    const body = chatBody('which model answers?')
    expect((await plain('/v1/chat/completions', body)).model).toBe(model)
    const { events } = await streamed('/v1/chat/completions', body)
    expect(new Set(events.map((e) => e.model))).toEqual(new Set([model]))
  })
})
