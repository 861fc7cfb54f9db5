import { afterEach, describe, expect, test } from 'bun:test'
import { Logger } from '../../src/log'
import { type Harness, harness, waitFor } from '../helpers'

let h: Harness
afterEach(async () => {
  await h?.close()
})

/** The value of one series in the Prometheus text, or 0 when it is absent. */
function sample(text: string, name: string, labels: Record<string, string>): number {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`)
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue
    const labelPart = line.slice(name.length, line.lastIndexOf(' '))
    if (want.every((w) => labelPart.includes(w))) return Number(line.slice(line.lastIndexOf(' ') + 1))
  }
  return 0
}

async function metrics() {
  const res = await h.request('GET', '/metrics')
  expect(res.status).toBe(200)
  expect(res.headers.get('content-type')).toContain('text/plain')
  return res.text()
}

const post = (base: string, path: string, body: unknown) =>
  fetch(base + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })

describe('/metrics', () => {
  test('requests and tokens move by exactly what was sent, plain and streamed', async () => {
    h = await harness()
    await h.json('POST', '/api/v1/instances/m?wait=ready', { backend_options: { model: 'x' } })
    const base = h.listen()
    // The backend's own count for a request is its non-stream usage. The fake, like llama-server,
    // streams usage only when asked and otherwise timings, where a repeated prompt is mostly
    // served from its cache (prompt_n small, cache_n the rest).
    const messages = [{ role: 'user', content: 'the same prompt of several words each time' }]
    const plain = async (max_tokens: number) => {
      const r = (await (await post(base, '/v1/chat/completions', { model: 'm', messages, max_tokens })).json()) as { usage: { prompt_tokens: number; completion_tokens: number } }
      return r.usage
    }
    const events = async (extra: Record<string, unknown>) => {
      const text = await (await post(base, '/v1/chat/completions', { model: 'm', messages, max_tokens: 6, stream: true, ...extra })).text()
      return text.split('\n\n').filter((e) => e.startsWith('data: {')).map((e) => JSON.parse(e.slice(6)))
    }
    const usages = [await plain(4), await plain(4), await plain(4)]
    const uncounted = await events({})
    const asked = await events({ stream_options: { include_usage: true } })
    await (await post(base, '/v1/embeddings', { model: 'm', input: ['a', 'b'] })).json()
    await (await post(base, '/v1/some/unknown/route', { model: 'm' })).text()
    // what the streams carried: no usage unless asked, and a cached prompt in the timings
    expect(uncounted.filter((e) => 'usage' in e)).toEqual([])
    const timings = uncounted.at(-1).timings
    expect(timings.prompt_n).toBeGreaterThan(0)
    expect(timings.cache_n).toBeGreaterThan(0)
    expect(timings.prompt_n + timings.cache_n).toBe(usages[0]!.prompt_tokens)
    expect(asked.at(-1).usage.prompt_tokens).toBe(usages[0]!.prompt_tokens)
    expect(usages.map((u) => u.prompt_tokens)).toEqual([usages[0]!.prompt_tokens, usages[0]!.prompt_tokens, usages[0]!.prompt_tokens])
    await waitFor(() => h.manager.metrics.requests.get(['m', 'other', '404']) === 1) // metrics are recorded just after the response
    const text = await metrics()
    expect(sample(text, 'llamactl_requests_total', { instance: 'm', route: 'chat_completions', status: '200' })).toBe(5)
    expect(sample(text, 'llamactl_requests_total', { instance: 'm', route: 'embeddings', status: '200' })).toBe(1)
    expect(sample(text, 'llamactl_requests_total', { instance: 'm', route: 'other', status: '404' })).toBe(1)
    // every chat request counts the prompt the backend's usage gives for it, streamed or not,
    // cached or not; the embeddings count one token per word
    expect(sample(text, 'llamactl_completion_tokens_total', { instance: 'm' })).toBe(3 * 4 + 2 * 6)
    expect(sample(text, 'llamactl_prompt_tokens_total', { instance: 'm' })).toBe(5 * usages[0]!.prompt_tokens + 2)
    expect(sample(text, 'llamactl_request_duration_seconds_count', { instance: 'm', route: 'chat_completions' })).toBe(5)
    expect(sample(text, 'llamactl_time_to_first_byte_seconds_count', { instance: 'm', route: 'chat_completions' })).toBe(5)
    expect(sample(text, 'llamactl_requests_in_flight', { instance: 'm' })).toBe(0)
    expect(sample(text, 'llamactl_instance_status', { instance: 'm', status: 'running' })).toBe(1)
    expect(sample(text, 'llamactl_instance_status', { instance: 'm', status: 'stopped' })).toBe(0)
    expect(sample(text, 'llamactl_instance_events_total', { instance: 'm', event: 'start' })).toBe(1)
    expect(text).toMatch(/^llamactl_instance_seconds_since_last_request\{instance="m"\} [\d.]+$/m)
    expect(text).toMatch(/^llamactl_process_resident_memory_bytes \d+$/m)
    expect(text).toMatch(/^llamactl_process_open_fds \d+$/m)
    expect(text).toMatch(/^llamactl_process_uptime_seconds [\d.]+$/m)
    expect(text).toMatch(/^llamactl_build_info\{version="[^"]+",commit="[^"]+"\} 1$/m)
  })

  test('counting never delays a streamed chunk', async () => {
    h = await harness()
    await h.json('POST', '/api/v1/instances/s?wait=ready', { backend_options: { model: 'x' }, environment: { FAKE_TOKEN_DELAY_MS: '100' } })
    const base = h.listen()
    const res = await post(base, '/v1/chat/completions', { model: 's', max_tokens: 4, stream: true })
    const reader = res.body!.getReader()
    const lags: number[] = []
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      for (const ev of new TextDecoder().decode(value).split('\n\n')) {
        if (ev.includes('"t":')) lags.push(Date.now() - JSON.parse(ev.slice(6)).t)
      }
    }
    expect(lags).toHaveLength(4)
    for (const lag of lags) expect(lag).toBeLessThan(50)
  })

  test('restarts, crashes, evictions and on-demand waits are counted; a deleted instance\'s series go', async () => {
    h = await harness({ LLAMACTL_MAX_RUNNING_INSTANCES: '1' })
    await h.json('POST', '/api/v1/instances/c?wait=ready', { backend_options: { model: 'crash-after-100' }, max_restarts: 1, restart_delay: 0 })
    await waitFor(() => h.manager.get('c').status === 'failed', 5000)
    let text = await metrics()
    expect(sample(text, 'llamactl_instance_events_total', { instance: 'c', event: 'crash' })).toBe(2)
    expect(sample(text, 'llamactl_instance_events_total', { instance: 'c', event: 'restart' })).toBe(1)
    await h.json('POST', '/api/v1/instances/a?wait=ready', { backend_options: { model: 'x' }, on_demand_start: true })
    await h.json('POST', '/api/v1/instances/b?wait=ready', { backend_options: { model: 'x' } }) // evicts a
    const base = h.listen()
    expect((await post(base, '/v1/chat/completions', { model: 'a' })).status).toBe(200) // waits for a, evicts b
    text = await metrics()
    expect(sample(text, 'llamactl_instance_events_total', { instance: 'a', event: 'eviction' })).toBe(1)
    expect(sample(text, 'llamactl_instance_events_total', { instance: 'b', event: 'eviction' })).toBe(1)
    expect(sample(text, 'llamactl_on_demand_start_wait_seconds_count', { instance: 'a' })).toBe(1)
    await h.request('DELETE', '/api/v1/instances/c')
    text = await metrics()
    expect(text).not.toContain('instance="c"')
  })

  test('label values are bounded: any path maps to a fixed route set', async () => {
    h = await harness()
    await h.json('POST', '/api/v1/instances/m?wait=ready', { backend_options: { model: 'x' } })
    for (let i = 0; i < 20; i++) await h.request('POST', `/v1/random-${i}`, '{"model":"m"}')
    await waitFor(() => h.manager.metrics.requests.get(['m', 'other', '404']) === 20) // metrics are recorded just after the response
    const text = await metrics()
    expect(text).not.toContain('random-')
    expect(sample(text, 'llamactl_requests_total', { instance: 'm', route: 'other', status: '404' })).toBe(20)
  })

  test('/metrics needs a management key or the metrics key; or none when public', async () => {
    const on = { LLAMACTL_REQUIRE_MANAGEMENT_AUTH: 'true', LLAMACTL_REQUIRE_INFERENCE_AUTH: 'true', LLAMACTL_MANAGEMENT_KEYS: 'mgmt-0123456789', LLAMACTL_INFERENCE_KEYS: 'infer-0123456789', LLAMACTL_METRICS_KEY: 'metrics-0123456789', LLAMACTL_METRICS_PUBLIC: 'false' }
    h = await harness(on)
    const get = (key?: string) => h.request('GET', '/metrics', undefined, key ? { authorization: `Bearer ${key}` } : {})
    expect((await get()).status).toBe(401)
    expect((await get('nope')).status).toBe(401)
    expect((await get('infer-0123456789')).status).toBe(403)
    expect((await get('mgmt-0123456789')).status).toBe(200)
    expect((await get('metrics-0123456789')).status).toBe(200)
    // the metrics key opens nothing else
    expect((await h.request('GET', '/api/v1/instances', undefined, { authorization: 'Bearer metrics-0123456789' })).status).toBe(403)
    expect((await h.request('GET', '/v1/models', undefined, { authorization: 'Bearer metrics-0123456789' })).status).toBe(403)
    await h.close()
    h = await harness({ ...on, LLAMACTL_METRICS_PUBLIC: 'true' })
    expect((await get()).status).toBe(200)
  })
})

describe('log streaming', () => {
  test('follow streams the last lines, then a new line within 100 ms of the backend writing it', async () => {
    h = await harness()
    await h.json('POST', '/api/v1/instances/f?wait=ready', { backend_options: { model: 'x' } })
    const base = h.listen()
    const ctrl = new AbortController()
    const res = await fetch(`${base}/api/v1/instances/f/logs?follow=true&lines=2`, { signal: ctrl.signal })
    expect(res.headers.get('content-type')).toContain('text/event-stream')
    const reader = res.body!.getReader()
    let first = ''
    while (first.split('\n\n').filter((e) => e.startsWith('data: ')).length < 2) first += new TextDecoder().decode((await reader.read()).value)
    const tail = h.manager.get('f').log.tail(2)
    expect(first.split('\n\n').filter((e) => e.startsWith('data: '))).toEqual(tail.map((l) => `data: ${l}`))
    await fetch(`${base}/api/v1/instances/f/proxy/print?text=hello-follower`)
    let got = ''
    while (!got.includes('hello-follower')) got += new TextDecoder().decode((await reader.read()).value)
    const arrived = Date.now()
    const printedAt = Number(/printed hello-follower at (\d+)/.exec(got)![1])
    expect(arrived - printedAt).toBeLessThan(100)
    ctrl.abort()
  })

  test('many followers, and each ends cleanly when its client leaves or the instance is deleted', async () => {
    h = await harness()
    await h.json('POST', '/api/v1/instances/g?wait=ready', { backend_options: { model: 'x' } })
    const base = h.listen()
    const clients = Array.from({ length: 50 }, () => new AbortController())
    const followers = await Promise.all(clients.map((c) => fetch(`${base}/api/v1/instances/g/logs?follow=1&lines=0`, { signal: c.signal })))
    const readers = followers.map((r) => r.body!.getReader())
    const listeners = (h.manager.get('g').log as unknown as { listeners: Set<unknown> }).listeners
    expect(listeners.size).toBe(50)
    expect((await fetch(`${base}/api/v1/instances/g/proxy/print?text=to-all`)).status).toBe(200)
    const seen = await Promise.all(
      readers.map(async (r) => {
        let t = ''
        for (let i = 0; i < 100 && !t.includes('to-all'); i++) t += new TextDecoder().decode((await r.read()).value)
        return t
      }),
    )
    expect(seen.filter((t) => /^data: printed to-all at \d+$/m.test(t))).toHaveLength(50)
    // Half the clients leave: their followers end, the others stay.
    for (const c of clients.slice(0, 25)) c.abort()
    await waitFor(() => listeners.size === 25, 5000)
    // The instance is deleted: the other half's streams end.
    expect((await h.request('DELETE', '/api/v1/instances/g')).status).toBe(204)
    for (const r of readers.slice(25)) {
      let done = false
      for (let i = 0; i < 100 && !done; i++) done = (await r.read()).done
      expect(done).toBe(true)
    }
    expect(listeners.size).toBe(0)
  })

  test('a carriage return inside a line cannot break an event: each part is its own data line', async () => {
    h = await harness()
    await h.json('POST', '/api/v1/instances/cr?wait=ready', { backend_options: { model: 'x' } })
    const base = h.listen()
    const ctrl = new AbortController()
    const res = await fetch(`${base}/api/v1/instances/cr/logs?follow=true&lines=0`, { signal: ctrl.signal })
    const reader = res.body!.getReader()
    await fetch(`${base}/api/v1/instances/cr/proxy/print?text=${encodeURIComponent('50%\revent: injected')}`)
    let got = ''
    while (!got.includes('injected')) got += new TextDecoder().decode((await reader.read()).value)
    ctrl.abort()
    expect(got).toContain('data: printed 50%\ndata: event: injected')
    expect(got).not.toContain('\r')
    expect(got.split('\n').some((l) => l.startsWith('event:'))).toBe(false)
  })

  test('bad follow values are 400', async () => {
    h = await harness()
    await h.json('POST', '/api/v1/instances/b?wait=ready', { backend_options: { model: 'x' } })
    expect((await h.request('GET', '/api/v1/instances/b/logs?follow=maybe')).status).toBe(400)
  })
})

describe('request log', () => {
  test('one JSON line per request with method, path, instance, status and duration', async () => {
    const lines: string[] = []
    const logger = new Logger({ format: 'json', level: 'info' }, (t) => lines.push(...t.trim().split('\n')))
    h = await harness({ LLAMACTL_LOG_FORMAT: 'json' }, logger)
    await h.json('POST', '/api/v1/instances/r?wait=ready', { backend_options: { model: 'x' } })
    await h.request('POST', '/v1/chat/completions', '{"model":"r"}')
    await h.request('GET', '/api/v1/instances/nope')
    logger.flush()
    const entries = lines.map((l) => JSON.parse(l))
    expect(entries).toHaveLength(3)
    expect(entries[1]).toMatchObject({ level: 'info', msg: 'request', method: 'POST', path: '/v1/chat/completions', instance: 'r', status: 200 })
    expect(typeof entries[1].ms).toBe('number')
    expect(entries[2]).toMatchObject({ path: '/api/v1/instances/nope', status: 404 })
  })

  test('text format and levels', () => {
    const out: string[] = []
    const logger = new Logger({ format: 'text', level: 'warn' }, (t) => out.push(t))
    logger.info('hidden')
    logger.warn('shown', { a: 1, b: 'two words' })
    logger.flush()
    expect(out.join('')).toMatch(/^\S+Z warn shown a=1 b="two words"\n$/)
  })
})
