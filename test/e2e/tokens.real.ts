import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { BUN, FAKE_SERVER, type Harness, harness } from '../helpers'
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
  const made = await h.json('POST', '/api/v1/instances/tok?wait=ready', { backend_options: { model, ctx_size: 512, threads: 1, parallel: 1 } })
  if (made.status !== 201 || made.body.status !== 'running') throw new Error(`set-up failed: ${JSON.stringify(made.body)}`)
  // the fast suite's fake, given the same model path, to hold it to what the real one does
  const wrapper = join(h.dir, 'fake-llama-server.sh')
  writeFileSync(wrapper, `#!/bin/sh\nexec ${BUN} ${FAKE_SERVER} "$@"\n`, { mode: 0o755 })
  const fake = await h.json('POST', '/api/v1/instances/fake?wait=ready', { backend_options: { model }, command_override: wrapper, environment: { FAKE_TOKEN_DELAY_MS: '0' } })
  if (fake.status !== 201 || fake.body.status !== 'running') throw new Error(`set-up failed: ${JSON.stringify(fake.body)}`)
}, 120000)
afterAll(async () => {
  await h.close()
})

interface Usage {
  prompt_tokens: number
  completion_tokens: number
  prompt_tokens_details?: { cached_tokens?: number }
}

/** The sum of a metric's series for one instance, 0 when it has none. */
function total(text: string, name: string, instance: string): number {
  let sum = 0
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name}{`) && line.slice(0, line.lastIndexOf(' ')).includes(`instance="${instance}"`)) sum += Number(line.slice(line.lastIndexOf(' ') + 1))
  }
  return sum
}

async function snapshot(instance: string) {
  const res = await h.request('GET', '/metrics')
  expect(res.status).toBe(200)
  const text = await res.text()
  const of = (name: string) => total(text, name, instance)
  return { requests: of('llamactl_requests_total'), prompt: of('llamactl_prompt_tokens_total'), completion: of('llamactl_completion_tokens_total') }
}

/** How far an instance's token counters moved over one request (metrics are recorded just after it ends). */
async function moved(instance: string, send: () => Promise<void>): Promise<{ prompt: number; completion: number }> {
  const before = await snapshot(instance)
  await send()
  let after = await snapshot(instance)
  for (let i = 0; i < 200 && after.requests === before.requests; i++) {
    await Bun.sleep(10)
    after = await snapshot(instance)
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
  const m = await moved(String(body.model), async () => {
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
  const m = await moved(String(body.model), async () => {
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

  test('the response names the model as the client asked for it, plain and streamed; the server itself names its model path', async () => {
    // llamactl routes by its instance name and puts that name back in the server's answer
    const body = chatBody('which model answers?')
    expect((await plain('/v1/chat/completions', body)).model).toBe('tok')
    const { events } = await streamed('/v1/chat/completions', body)
    expect(new Set(events.map((e) => e.model))).toEqual(new Set(['tok']))
    const direct = await fetch(`http://127.0.0.1:${h.manager.get('tok').port}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
    expect(((await direct.json()) as Event).model).toBe(model)
  })
})

/** Where a stream carries its counts: each of its last two events, and whether any earlier one has them. */
function shape(events: Event[], asked: string) {
  return {
    earlier: events.slice(0, -2).some((e) => 'usage' in e || 'timings' in e),
    last: events.slice(-2).map((e) => ({ usage: 'usage' in e, timings: 'timings' in e, choices: e.choices.length, finished: e.choices[0]?.finish_reason != null })),
    // Through llamactl every event names the instance asked for (see the test above).
    namesAsked: events.every((e) => e.model === asked),
  }
}

describe('the fake llama-server answers as the real one does', () => {
  // Each request goes to both, the real one first; what must agree is where the counts are,
  // what they mean and what the model is called, not the text or the tokenizer.
  const both = async <T>(ask: (instance: string) => Promise<T>): Promise<[T, T]> => [await ask('tok'), await ask('fake')]

  test('plain, then the same again: usage and timings, the repeat served from the cache but its last token', async () => {
    const ask = async (instance: string) => {
      const body = { ...chatBody('the same question to both servers'), model: instance }
      const first = (await (await post('/v1/chat/completions', body)).json()) as Event
      const again = (await (await post('/v1/chat/completions', body)).json()) as Event
      return [first, again].map((r) => ({
        namesAsked: r.model === instance,
        object: r.object,
        cached: r.usage.prompt_tokens_details.cached_tokens === r.timings.cache_n,
        whole: r.timings.prompt_n + r.timings.cache_n === r.usage.prompt_tokens,
        fromCache: r.timings.cache_n === r.usage.prompt_tokens - 1,
        completion: r.usage.completion_tokens === r.timings.predicted_n,
      }))
    }
    const [real, fake] = await both(ask)
    expect(real[1]!.fromCache).toBe(true)
    expect(real[0]!.namesAsked).toBe(true)
    expect(fake).toEqual(real)
  })

  test('chat streams: timings on the finish chunk unless usage is asked for, then usage and timings on an extra last chunk', async () => {
    for (const extra of [{}, { stream_options: { include_usage: true } }, { stream_options: { include_usage: false } }]) {
      const [real, fake] = await both(async (instance) => shape((await streamed('/v1/chat/completions', { ...chatBody('stream me a few tokens'), ...extra, model: instance })).events, instance))
      expect(real.namesAsked).toBe(true)
      expect(fake).toEqual(real)
    }
  })

  test('completion streams: usage and timings on the last chunk either way', async () => {
    for (const extra of [{}, { stream_options: { include_usage: true } }]) {
      const body = { prompt: 'Once upon a time', max_tokens: 4, temperature: 0, ignore_eos: true, ...extra }
      const [real, fake] = await both(async (instance) => shape((await streamed('/v1/completions', { ...body, model: instance })).events, instance))
      expect(real.last.at(-1)).toEqual({ usage: true, timings: true, choices: 1, finished: true })
      expect(fake).toEqual(real)
    }
  })

  test('/health once ready, and /v1/models naming the model path', async () => {
    const [real, fake] = await both(async (instance) => {
      const port = h.manager.get(instance).port
      const health = await fetch(`http://127.0.0.1:${port}/health`)
      const models = (await (await fetch(`http://127.0.0.1:${port}/v1/models`)).json()) as { data: Event[] }
      return { health: [health.status, await health.json()], models: models.data.map((m) => [m.id, m.object, m.owned_by]) }
    })
    expect(real.models).toEqual([[model, 'model', 'llamacpp']])
    expect(fake).toEqual(real)
  })
})
