import { afterEach, describe, expect, test } from 'bun:test'
import { processStartTime } from '../../src/supervisor/os-process'
import { type Harness, harness, waitFor, fixtureModel } from '../helpers'

const Q_MODEL = fixtureModel('q')

let h: Harness
afterEach(async () => {
  await h?.close()
})

async function create(name: string, body: Record<string, unknown> = {}) {
  const res = await h.json('POST', `/api/v1/instances/${name}?wait=ready`, { backend_options: { model: 'x' }, ...body })
  expect(res.status).toBe(201)
  return res.body
}

function chat(base: string, model: string, extra: Record<string, unknown> = {}, init: RequestInit = {}) {
  return fetch(`${base}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }], ...extra }),
    ...init,
  })
}

const startsIn = (h: Harness, name: string) => h.manager.get(name).log.tail().filter((l) => l.includes('[llamactl]') && l.includes('starting:')).length

describe('OpenAI-compatible routes', () => {
  test('GET /v1/models lists every instance in OpenAI list format', async () => {
    h = await harness()
    const a = await create('alpha')
    await create('beta', { on_demand_start: true })
    await h.json('POST', '/api/v1/instances/beta/stop')
    const res = await h.json('GET', '/v1/models')
    expect(res.status).toBe(200)
    expect(res.body).toEqual({
      object: 'list',
      data: [
        { id: 'alpha', object: 'model', created: a.created, owned_by: 'llamactl' },
        { id: 'beta', object: 'model', created: expect.any(Number), owned_by: 'llamactl' },
      ],
    })
    expect((await h.json('GET', '/v1/models/alpha')).body.id).toBe('alpha')
    expect((await h.json('GET', '/v1/models/nope')).status).toBe(404)
  })

  test('chat, completions, embeddings and rerank reach the instance named by model', async () => {
    h = await harness()
    // Two instances, so a request sent to the wrong one shows: each fake says its port.
    const ports = {
      m: (await create('m', { backend_options: { model: 'x', alias: 'backend-m' } })).port,
      n: (await create('n', { backend_options: { model: 'x', alias: 'backend-n' } })).port,
    }
    expect(ports.m).not.toBe(ports.n)
    const base = h.listen()
    const post = async (path: string, body: Record<string, unknown>) => {
      const res = await fetch(base + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
      expect([path, body.model, res.status]).toEqual([path, body.model, 200])
      return { port: Number(res.headers.get('x-fake-port')), body: await res.json() }
    }
    for (const model of ['n', 'm', 'n'] as const) {
      const want = ports[model]
      const c = await post('/v1/chat/completions', { model, messages: [{ role: 'user', content: 'hi' }] })
      // the fake answers with its alias, as llama-server does; the client sees the name it asked for
      expect([c.port, c.body.model, c.body.object, c.body.choices[0].message.content]).toEqual([want, model, 'chat.completion', 'tok0 tok1 tok2 tok3 tok4'])
      const t = await post('/v1/completions', { model, prompt: 'x' })
      expect([t.port, t.body.model, t.body.object]).toEqual([want, model, 'text_completion'])
      const e = await post('/v1/embeddings', { model, input: ['a', 'b'] })
      expect([e.port, e.body.data.length, e.body.model]).toEqual([want, 2, model])
      const r = await post('/v1/rerank', { model, query: 'q', documents: ['a', 'b'] })
      expect([r.port, r.body.results.length, r.body.model]).toEqual([want, 2, model])
      const r2 = await post('/v1/reranking', { model, query: 'q', documents: ['a'] })
      expect([r2.port, r2.body.results.length]).toEqual([want, 1])
      // "instance/model": the instance picks the backend
      const sub = await post('/v1/chat/completions', { model: `${model}/inner`, messages: [] })
      expect([sub.port, sub.body.model]).toEqual([want, `${model}/inner`])
    }
  })

  test('the backend is sent the name it serves its model under: its alias, else its model path', async () => {
    h = await harness()
    await create('plain', { backend_options: { model: Q_MODEL } })
    await create('named', { backend_options: { model: Q_MODEL, alias: 'qwen-small' } })
    const base = h.listen()
    const sent = async (model: string) => {
      const res = await fetch(`${base}/v1/echo`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: `{"model":${JSON.stringify(model)},"x":[{"model":"nested"}]}` })
      return JSON.parse((await res.json()).body)
    }
    expect(await sent('plain')).toEqual({ model: Q_MODEL, x: [{ model: 'nested' }] })
    expect(await sent('named')).toEqual({ model: 'qwen-small', x: [{ model: 'nested' }] })
    expect(await sent('named/inner')).toEqual({ model: 'inner', x: [{ model: 'nested' }] })
  })

  test('a streamed reply says the asked name in every event, and nothing else of it changes', async () => {
    h = await harness()
    await create('s', { backend_options: { model: Q_MODEL, alias: 'qwen-small' } })
    const base = h.listen()
    for (const asked of ['s', 's/inner']) {
      const res = await chat(base, asked, { stream: true, max_tokens: 4, stream_options: { include_usage: true } })
      expect(res.headers.get('content-length')).toBeNull()
      const text = await res.text()
      const data = text.split('\n\n').filter((e) => e.startsWith('data: {'))
      // four tokens, the finish, and the usage chunk
      expect(data).toHaveLength(6)
      for (const e of data) expect(JSON.parse(e.slice(6)).model).toBe(asked)
      expect(text).not.toContain('qwen-small')
      expect(text.endsWith('data: [DONE]\n\n')).toBe(true)
      expect(JSON.parse(data.at(-1)!.slice(6)).usage.completion_tokens).toBe(4)
    }
    // Plain replies: the length the client is told is the rewritten body's.
    const res = await chat(base, 's')
    const raw = await res.text()
    expect([Number(res.headers.get('content-length')), JSON.parse(raw).model]).toEqual([new TextEncoder().encode(raw).length, 's'])
  })

  test('the body reaches the backend byte for byte; "instance/model" rewrites only the model value', async () => {
    h = await harness()
    await create('m')
    const base = h.listen()
    const raw = '{ "z": 1,\n "big": 123456789012345678901234567890, "model":"m", "img":"' + 'A'.repeat(300000) + '", "a": [1.50, 2e10] }'
    const echo = await (await fetch(`${base}/v1/echo`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: raw })).json()
    const sub = raw.replace('"model":"m"', '"model":"m/inner\\u002dname"')
    const echo2 = await (await fetch(`${base}/v1/echo`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: sub })).json()
    expect(echo2.body).toBe(raw.replace('"model":"m"', '"model":"inner-name"'))
    // A bare instance name: only the value, now the backend's name for its model, differs.
    expect(echo.body).toBe(raw.replace('"model":"m"', '"model":"x"'))
  })

  test('streaming: each event reaches the client as the backend writes it', async () => {
    h = await harness()
    await create('s', { environment: { FAKE_TOKEN_DELAY_MS: '120' } })
    const base = h.listen()
    const res = await chat(base, 's', { stream: true, max_tokens: 5 })
    expect(res.headers.get('content-type')).toContain('text/event-stream')
    expect(res.headers.get('x-accel-buffering')).toBe('no')
    const reader = res.body!.getReader()
    const arrivals: { at: number; events: string[] }[] = []
    let text = ''
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      const chunk = new TextDecoder().decode(value)
      text += chunk
      arrivals.push({ at: Date.now(), events: chunk.split('\n\n').filter(Boolean) })
    }
    const tokenChunks = arrivals.filter((a) => a.events.some((e) => e.includes('"delta":{"content"')))
    // five tokens written 120 ms apart arrive as five separate reads, not merged
    expect(tokenChunks).toHaveLength(5)
    for (const c of tokenChunks) expect(c.events).toHaveLength(1)
    for (let i = 1; i < tokenChunks.length; i++) expect(tokenChunks[i]!.at - tokenChunks[i - 1]!.at).toBeGreaterThan(60)
    // and each arrives soon after the backend stamped it
    for (const c of tokenChunks) {
      const t = JSON.parse(c.events[0]!.slice(6)).t as number
      expect(c.at - t).toBeLessThan(60)
    }
    expect(text.trim().endsWith('data: [DONE]')).toBe(true)
  })

  test('a client that disconnects mid-stream aborts the backend request at once', async () => {
    h = await harness()
    await create('d', { environment: { FAKE_TOKEN_DELAY_MS: '100' } })
    const base = h.listen()
    const ctrl = new AbortController()
    const res = await chat(base, 'd', { stream: true, max_tokens: 100 }, { signal: ctrl.signal })
    const reader = res.body!.getReader()
    await reader.read()
    expect(h.manager.get('d').inflight).toBe(1)
    ctrl.abort()
    await waitFor(() => h.manager.get('d').log.tail().some((l) => l.includes('aborted by client') || l.includes('cancelled by client')), 2000)
    await waitFor(() => h.manager.get('d').inflight === 0, 2000)
    // counted as the client closing the request (499), not as the 200 the stream began with
    await waitFor(() => h.manager.metrics.requests.get(['d', 'chat_completions', '499']) === 1, 2000)
    expect(h.manager.metrics.requests.get(['d', 'chat_completions', '200'])).toBe(0)
  })

  test('bad requests: no model, invalid JSON, unknown model, too large', async () => {
    h = await harness({ LLAMACTL_MAX_INFERENCE_BODY_SIZE: '100000' })
    await create('m')
    const post = (body: string) => h.request('POST', '/v1/chat/completions', body)
    const noModel = await post('{"messages":[]}')
    expect(noModel.status).toBe(400)
    expect((await noModel.json()).error).toContain('"model"')
    const invalid = await post('{"model": "m", ')
    expect(invalid.status).toBe(400)
    expect((await invalid.json()).error).toContain('invalid request body')
    const unknown = await post('{"model":"ghost"}')
    expect(unknown.status).toBe(400)
    expect((await unknown.json()).error).toContain('ghost')
    const big = await post(JSON.stringify({ model: 'm', x: 'y'.repeat(200000) }))
    expect(big.status).toBe(413)
  })
})

describe('on-demand start', () => {
  test('50 concurrent requests for a stopped instance cause exactly one start, and all succeed', async () => {
    h = await harness()
    await create('od', { on_demand_start: true, backend_options: { model: 'load-300' } })
    await h.json('POST', '/api/v1/instances/od/stop')
    const before = startsIn(h, 'od')
    const base = h.listen()
    const results = await Promise.all(Array.from({ length: 50 }, () => chat(base, 'od')))
    expect(results.map((r) => r.status)).toEqual(Array(50).fill(200))
    expect(startsIn(h, 'od') - before).toBe(1)
    expect(h.manager.get('od').status).toBe('running')
  })

  test('without on_demand_start a stopped instance is 503', async () => {
    h = await harness()
    await create('off', { on_demand_start: false })
    await h.json('POST', '/api/v1/instances/off/stop')
    const res = await h.request('POST', '/v1/chat/completions', '{"model":"off"}')
    expect(res.status).toBe(503)
    expect((await res.json()).error).toContain('on_demand_start is off')
    expect(h.manager.get('off').status).toBe('stopped')
  })

  test('a start slower than on_demand_start_timeout is 503', async () => {
    h = await harness({ LLAMACTL_ON_DEMAND_START_TIMEOUT: '1' })
    await create('slow', { on_demand_start: true })
    await h.json('POST', '/api/v1/instances/slow/stop')
    // stopped first, so the PUT does not wait out a 4 s start of its own
    expect((await h.json('PUT', '/api/v1/instances/slow?wait=ready', { on_demand_start: true, backend_options: { model: 'load-4000' } })).body.status).toBe('stopped')
    const res = await h.request('POST', '/v1/chat/completions', '{"model":"slow"}')
    expect(res.status).toBe(503)
    expect((await res.json()).error).toContain('on_demand_start_timeout (1 s)')
  })

  test('a waiting client that disconnects leaves the others unharmed', async () => {
    h = await harness()
    await create('w', { on_demand_start: true, backend_options: { model: 'load-500' } })
    await h.json('POST', '/api/v1/instances/w/stop')
    const base = h.listen()
    const quitter = new AbortController()
    const q = chat(base, 'w', {}, { signal: quitter.signal }).catch((e) => e)
    const others = [chat(base, 'w'), chat(base, 'w')]
    await waitFor(() => h.manager.get('w').waiting === 3)
    quitter.abort()
    expect(await q).toBeInstanceOf(Error)
    expect((await Promise.all(others)).map((r) => r.status)).toEqual([200, 200])
    await waitFor(() => h.manager.get('w').waiting === 0 && h.manager.get('w').inflight === 0)
  })
})

describe('idle stop, capacity and drain', () => {
  test('idle_timeout stops an instance after its last request, not while a stream is in flight', async () => {
    h = await harness()
    await create('idle', { idle_timeout: 0.01, environment: { FAKE_TOKEN_DELAY_MS: '100' } }) // 600 ms
    const base = h.listen()
    // a 1.5 s stream keeps it alive past the timeout
    const res = await chat(base, 'idle', { stream: true, max_tokens: 15 })
    const text = await res.text()
    expect(text).toContain('[DONE]')
    expect(h.manager.get('idle').status).toBe('running')
    const ended = Date.now()
    await waitFor(() => h.manager.get('idle').status === 'stopped', 5000)
    const stoppedAfter = Date.now() - ended
    expect(stoppedAfter).toBeGreaterThanOrEqual(550)
    expect(h.manager.get('idle').log.tail().join('\n')).toContain('idle for 0.01 min')
  })

  test('health checks through the proxy are not activity', async () => {
    h = await harness()
    await create('hc', { idle_timeout: 0.01 }) // 600 ms
    const base = h.listen()
    const inst = h.manager.get('hc')
    // Health checks all along: the instance still stops for being idle.
    const answers: number[] = []
    for (const deadline = Date.now() + 10000; inst.status === 'running'; ) {
      if (Date.now() > deadline) throw new Error('health checks kept the instance running')
      const res = await fetch(`${base}/api/v1/instances/hc/proxy/health`)
      await res.text()
      answers.push(res.status)
      await Bun.sleep(50)
    }
    expect(answers.filter((s) => s === 200).length).toBeGreaterThan(0)
    expect(answers.filter((s) => s !== 200 && s !== 503)).toEqual([])
    expect(inst.status).toBe('stopped')
    expect(inst.log.tail().join('\n')).toContain('idle for 0.01 min')
    expect(inst.lastRequest).toBe(0)
  })

  test('at max_running_instances the least recently used idle instance is evicted, by API start or on demand', async () => {
    h = await harness({ LLAMACTL_MAX_RUNNING_INSTANCES: '2' })
    await create('a', { on_demand_start: true })
    await create('b')
    const base = h.listen()
    expect((await chat(base, 'b')).status).toBe(200) // b is now more recently used than a
    await create('c') // an API start: evicts a
    expect(h.manager.get('a').status).toBe('stopped')
    expect(h.manager.get('a').log.tail().join('\n')).toContain('to make room for c')
    expect(h.manager.list().filter((i) => i.status === 'running').map((i) => i.name).sort()).toEqual(['b', 'c'])
    const res = await chat(base, 'a') // on demand: evicts b, used before c started
    expect(res.status).toBe(200)
    expect(h.manager.get('b').status).toBe('stopped')
    expect(h.manager.list().filter((i) => i.status === 'running').map((i) => i.name).sort()).toEqual(['a', 'c'])
  })

  test('a group at its limit stops its own least recently used member, not an older one of another group; a group not in group_limits has no limit', async () => {
    h = await harness({ LLAMACTL_GROUP_LIMITS: 'large=1', LLAMACTL_MAX_RUNNING_INSTANCES: '3' })
    await create('small-old', { group: 'small' })
    await create('large-a', { group: 'large', on_demand_start: true })
    await create('large-b', { group: 'large' }) // the group is at 1: large-a goes, small-old (older) stays
    const running = () => h.manager.list().filter((i) => i.status === 'running').map((i) => i.name).sort()
    expect(running()).toEqual(['large-b', 'small-old'])
    expect(h.manager.get('large-a').log.tail().join('\n')).toContain('group "large" limit 1')
    await create('small-new', { group: 'small' }) // "small" has no limit; the global 3 is reached, nothing goes
    expect(running()).toEqual(['large-b', 'small-new', 'small-old'])
    const base = h.listen()
    expect((await chat(base, 'large-a')).status).toBe(200) // on demand: the group's member goes again
    expect(running()).toEqual(['large-a', 'small-new', 'small-old'])
  })

  test('an instance with a request in flight is not evicted: an on-demand request waits for it to go idle, then takes its place', async () => {
    h = await harness({ LLAMACTL_MAX_RUNNING_INSTANCES: '1' })
    await create('next', { on_demand_start: true })
    await h.json('POST', '/api/v1/instances/next/stop')
    await create('busy', { environment: { FAKE_TOKEN_DELAY_MS: '50' } })
    const base = h.listen()
    const stream = await chat(base, 'busy', { stream: true, max_tokens: 10 })
    const waiting = chat(base, 'next')
    await waitFor(() => h.manager.get('next').waiting === 1)
    expect(h.manager.get('busy').status).toBe('running') // not evicted while its stream runs
    expect(await stream.text()).toContain('[DONE]')
    expect((await waiting).status).toBe(200)
    expect(h.manager.get('busy').status).toBe('stopped')
    expect(h.manager.get('next').status).toBe('running')
  })

  test('a wait for room that runs out (on_demand_start_timeout) is the 409, naming the busy instances', async () => {
    h = await harness({ LLAMACTL_MAX_RUNNING_INSTANCES: '1', LLAMACTL_ON_DEMAND_START_TIMEOUT: '1' })
    await create('next', { on_demand_start: true })
    await h.json('POST', '/api/v1/instances/next/stop')
    await create('busy', { environment: { FAKE_TOKEN_DELAY_MS: '100' } })
    const base = h.listen()
    const stream = await chat(base, 'busy', { stream: true, max_tokens: 40 }) // 4 s: longer than the wait
    const res = await chat(base, 'next')
    expect(res.status).toBe(409)
    expect((await res.json()).error).toContain('every running instance is busy')
    expect(h.manager.get('busy').status).toBe('running')
    expect(h.manager.get('next').status).toBe('stopped')
    await stream.body?.cancel()
  })

  test('eviction off: 409 at the limit', async () => {
    h = await harness({ LLAMACTL_MAX_RUNNING_INSTANCES: '1', LLAMACTL_ENABLE_LRU_EVICTION: 'false' })
    await create('two', { on_demand_start: true })
    await h.json('POST', '/api/v1/instances/two/stop')
    await create('one')
    const res = await h.request('POST', '/v1/chat/completions', '{"model":"two"}')
    expect(res.status).toBe(409)
    expect((await res.json()).error).toContain('enable_lru_eviction is off')
  })

  test('stop lets an in-flight stream finish, and a request during the drain waits for the next start', async () => {
    h = await harness()
    await create('dr', { on_demand_start: true, environment: { FAKE_TOKEN_DELAY_MS: '80' } })
    const base = h.listen()
    const stream = await chat(base, 'dr', { stream: true, max_tokens: 10 })
    const stopping = h.json('POST', '/api/v1/instances/dr/stop')
    await waitFor(() => h.manager.get('dr').status === 'stopping')
    const during = chat(base, 'dr')
    const text = await stream.text()
    expect(text).toContain('tok9')
    expect(text).toContain('[DONE]')
    expect((await stopping).body.status).toBe('stopped')
    const later = await during
    expect(later.status).toBe(200)
    expect(h.manager.get('dr').status).toBe('running')
  })
})

describe('instance proxy', () => {
  test('forwards method, path, query, headers and body; strips hop-by-hop and llamactl credentials', async () => {
    h = await harness()
    await create('p')
    const base = h.listen()
    const res = await fetch(`${base}/api/v1/instances/p/proxy/echo/a%20b?x=1&y=%2F`, {
      method: 'PUT',
      headers: { 'x-custom': 'yes', authorization: 'Bearer llamactl-key', connection: 'keep-alive, x-drop', 'x-drop': '1', cookie: 'session=1' },
      body: 'payload',
    })
    expect(res.status).toBe(200)
    const echo = await res.json()
    expect(echo.method).toBe('PUT')
    expect(echo.path).toBe('/echo/a%20b')
    expect(echo.query).toBe('?x=1&y=%2F')
    expect(echo.body).toBe('payload')
    expect(echo.headers['x-custom']).toBe('yes')
    expect(echo.headers.authorization).toBeUndefined()
    expect(echo.headers.cookie).toBeUndefined()
    expect(echo.headers['x-drop']).toBeUndefined()
    const health = await fetch(`${base}/api/v1/instances/p/proxy/health`)
    expect(await health.json()).toEqual({ status: 'ok' })
  })

  test('the backend api_key replaces the client credentials', async () => {
    h = await harness()
    await create('k', { backend_options: { model: 'x', api_key: 'backend-secret' } })
    const echo = await (await h.request('GET', '/api/v1/instances/k/proxy/echo', undefined, { authorization: 'Bearer mine' })).json()
    expect(echo.headers.authorization).toBe('Bearer backend-secret')
  })

  test('503 when the instance is not running; 404 when it does not exist', async () => {
    h = await harness()
    await create('q')
    await h.json('POST', '/api/v1/instances/q/stop')
    const res = await h.json('GET', '/api/v1/instances/q/proxy/health')
    expect(res.status).toBe(503)
    expect(res.body.error).toContain('not running')
    expect((await h.json('GET', '/api/v1/instances/none/proxy/health')).status).toBe(404)
  })

  test('no path, encoding or header reaches any address but the instance', async () => {
    h = await harness()
    await create('safe')
    let evilHits = 0
    const evil = Bun.serve({ hostname: '127.0.0.1', port: 0, fetch: () => (evilHits++, new Response('evil')) })
    try {
      const e = `127.0.0.1:${evil.port}`
      const base = h.listen()
      const paths = [
        `/@${e}/`,
        `//${e}/`,
        `/http://${e}/`,
        `/%2F%2F${e}/`,
        `/..%2F..%2F${e}`,
        `/%40${e}`,
        `/\\\\${e}/`,
        `/%5C%5C${e}/`,
      ]
      for (const p of paths) {
        const res = await fetch(`${base}/api/v1/instances/safe/proxy${p}`, { headers: { host: e, 'x-forwarded-host': e } })
        expect([p, await res.text()]).not.toEqual([p, 'evil'])
      }
      // raw request line with an absolute URI
      let answer = ''
      const sock = await Bun.connect({
        hostname: '127.0.0.1',
        port: Number(new URL(base).port),
        socket: {
          data(_s, d) {
            answer += d.toString('latin1')
          },
          open(s) {
            s.write(`GET /api/v1/instances/safe/proxy@${e}/ HTTP/1.1\r\nHost: ${e}\r\n\r\n`)
          },
        },
      })
      await waitFor(() => /^HTTP\/1\.1 \d{3} [^]*\r\n\r\n/.test(answer), 5000)
      sock.end()
      expect(answer).not.toContain('evil')
      expect(evilHits).toBe(0)
    } finally {
      evil.stop(true)
    }
  })
})

describe('capacity under concurrency', () => {
  test('concurrent on-demand requests for different stopped instances never exceed max_running_instances', async () => {
    h = await harness({ LLAMACTL_MAX_RUNNING_INSTANCES: '1' })
    for (const n of ['x1', 'x2', 'x3']) {
      await h.json('POST', `/api/v1/instances/${n}?wait=ready`, { backend_options: { model: 'load-200' }, on_demand_start: true })
      await h.json('POST', `/api/v1/instances/${n}/stop`)
    }
    let maxRunning = 0
    const off = h.manager.onStatusChange(() => {
      const alive = h.manager.list().filter((i) => i.status === 'running' || i.status === 'starting').length
      maxRunning = Math.max(maxRunning, alive)
    })
    const base = h.listen()
    const results = await Promise.all(['x1', 'x2', 'x3', 'x1', 'x2', 'x3'].map((n) => chat(base, n)))
    off()
    // every request either got its answer or a clear 409; never two backends at once
    for (const r of results) expect([200, 409]).toContain(r.status)
    expect(results.some((r) => r.status === 200)).toBe(true)
    expect(maxRunning).toBe(1)
  })
})

describe('deleting under load', () => {
  test('a request waiting for a deleted instance gets 404, and nothing starts it again', async () => {
    h = await harness()
    await create('gone', { on_demand_start: true, backend_options: { model: 'load-400' } })
    await h.json('POST', '/api/v1/instances/gone/stop')
    const base = h.listen()
    const waiting = chat(base, 'gone')
    await waitFor(() => h.manager.get('gone').waiting === 1)
    // Its on-demand start is under way: the backend is loading.
    await waitFor(() => h.store.backendProcesses().some((r) => r.instance === 'gone'))
    const loading = h.store.backendProcesses().find((r) => r.instance === 'gone')!.pid
    const inst = h.manager.get('gone')
    expect((await h.request('DELETE', '/api/v1/instances/gone')).status).toBe(204)
    const res = await waiting
    expect(res.status).toBe(404)
    expect((await res.json()).error).toContain('the instance was deleted')
    // The loading backend was ended and none took its place.
    expect(processStartTime(loading)).toBeNull()
    expect(h.store.backendProcesses()).toEqual([])
    expect(inst.status).toBe('stopped')
    expect(inst.port).toBeNull()
    expect(h.manager.find('gone')).toBeUndefined()
  })

  test('the name stays taken until the deleted backend has stopped', async () => {
    h = await harness({ LLAMACTL_STOP_GRACE_PERIOD: '1' })
    await create('busy', { backend_options: { model: 'ignore-sigterm' } })
    const deleting = h.request('DELETE', '/api/v1/instances/busy')
    await waitFor(() => h.manager.find('busy')?.disposed === true)
    const again = await h.json('POST', '/api/v1/instances/busy?wait=ready', { backend_options: { model: 'x' } })
    expect(again.status).toBe(409)
    expect(again.body.error).toContain('is being deleted')
    expect((await deleting).status).toBe(204)
    expect((await h.json('POST', '/api/v1/instances/busy?wait=ready', { backend_options: { model: 'x' } })).status).toBe(201)
    expect(h.manager.get('busy').log.tail().join('\n')).not.toContain('ignoring SIGTERM')
  })

  test('requests that end after a delete leave no metric series for the deleted name', async () => {
    h = await harness()
    await create('brief', { environment: { FAKE_TOKEN_DELAY_MS: '50' } })
    const base = h.listen()
    const stream = await chat(base, 'brief', { stream: true, max_tokens: 20 })
    const inst = h.manager.get('brief')
    const reading = stream.text().catch(() => '')
    expect((await h.request('DELETE', '/api/v1/instances/brief')).status).toBe(204)
    await reading
    // The request has ended on llamactl's side, and the turn after it (when a request's metrics are recorded) has passed.
    await waitFor(() => inst.inflight === 0)
    await new Promise((resolve) => setImmediate(resolve))
    expect(h.manager.metrics.render()).not.toContain('instance="brief"')
  })
})
