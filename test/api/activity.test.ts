/**
 * GET /api/v1/activity and the page's Activity view: the last requests, newest first, with
 * their tokens, the backend's generation speed, duration and a stream's first token.
 */
import { afterEach, describe, expect, test } from 'bun:test'
import { CAPACITY, RecentRequests } from '../../src/metrics/requests'
import { type Harness, harness, waitFor } from '../helpers'

let h: Harness
afterEach(async () => {
  await h?.close()
})

const chat = (base: string, model: string, extra: Record<string, unknown> = {}) =>
  fetch(`${base}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hello there' }], max_tokens: 3, ...extra }) })

describe('activity', () => {
  test('each request is listed newest first with its tokens, speed, duration and (streams) first token; filters by instance and outcome', async () => {
    h = await harness()
    await h.json('POST', '/api/v1/instances/a?wait=ready', { backend_options: { model: 'x' } })
    await h.json('POST', '/api/v1/instances/b?wait=ready', { backend_options: { model: 'x' } })
    const base = h.listen()
    expect((await h.json('GET', '/api/v1/activity')).body).toEqual({ requests: [] })
    await (await chat(base, 'a')).text()
    await (await chat(base, 'b', { stream: true })).text()
    await (await fetch(`${base}/api/v1/instances/a/proxy/nothing-here`)).text()
    await waitFor(async () => (await h.json('GET', '/api/v1/activity')).body.requests.length === 3)
    const all = (await h.json('GET', '/api/v1/activity')).body.requests
    expect(all.map((r: { instance: string; route: string }) => `${r.instance} ${r.route}`)).toEqual(['a proxy', 'b chat_completions', 'a chat_completions'])
    const [proxied, streamed, plain] = all
    // The fake's usage: 4 prompt tokens (<user>, two words, <assistant>), 3 completion tokens; its timings say 0.5 ms for them.
    expect(plain).toMatchObject({ status: 200, prompt_tokens: 4, completion_tokens: 3, tokens_per_second: 6000, first_token_ms: null })
    expect(plain.duration_ms).toBeGreaterThan(0)
    expect(plain.first_byte_ms).toBeGreaterThan(0)
    expect(streamed).toMatchObject({ status: 200, completion_tokens: 3 })
    expect(streamed.first_token_ms).toBeGreaterThan(0)
    expect(streamed.first_token_ms).toBeLessThanOrEqual(streamed.duration_ms)
    expect(proxied).toMatchObject({ status: 404, prompt_tokens: null, tokens_per_second: null })
    expect(Math.abs(plain.at - Date.now())).toBeLessThan(60_000)

    const only = async (q: string) => (await h.json('GET', `/api/v1/activity?${q}`)).body.requests.map((r: { instance: string; status: number }) => `${r.instance} ${r.status}`)
    expect(await only('instance=a')).toEqual(['a 404', 'a 200'])
    expect(await only('outcome=error')).toEqual(['a 404'])
    expect(await only('outcome=ok&limit=1')).toEqual(['b 200'])
  })

  test('a bad query is a 400 naming the parameter', async () => {
    h = await harness()
    for (const [q, says] of [['limit=0', 'limit'], ['limit=abc', 'limit'], [`limit=${CAPACITY + 1}`, 'limit'], ['outcome=maybe', 'outcome'], ['frobnicate=1', 'frobnicate']] as const) {
      const res = await h.json('GET', `/api/v1/activity?${q}`)
      expect(res.status).toBe(400)
      expect(res.body.error).toContain(says)
    }
  })

  test('needs a management key like the rest of /api/v1', async () => {
    h = await harness({ LLAMACTL_REQUIRE_MANAGEMENT_AUTH: 'true', LLAMACTL_MANAGEMENT_KEYS: 'activity-management-key-0123456789' })
    const res = await h.request('GET', '/api/v1/activity', undefined, { authorization: '' })
    expect(res.status).toBe(401)
  })

  test('the ring keeps the last CAPACITY requests, and forgets a deleted instance\'s', () => {
    const r = new RecentRequests()
    for (let i = 0; i < CAPACITY + 5; i++) r.record(i % 2 ? 'odd' : 'even', 'chat_completions', 200 + (i % 3), 0, 0, 0, null, i)
    const all = r.list({ limit: CAPACITY })
    expect(all.length).toBe(CAPACITY)
    expect(all[0]!.duration_ms).toBe(CAPACITY + 4) // newest first
    expect(all.at(-1)!.duration_ms).toBe(5) // the five oldest are gone
    r.forget('odd')
    const left = r.list({ limit: CAPACITY })
    expect(left.every((x) => x.instance === 'even')).toBe(true)
    expect(left.length).toBe(CAPACITY / 2)
    r.record('new', 'proxy', 200, 0, 0, 0, null, 1)
    expect(r.list({ limit: 1 })[0]!.instance).toBe('new')
  })
})
