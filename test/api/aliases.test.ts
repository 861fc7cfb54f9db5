import { afterEach, describe, expect, test } from 'bun:test'
import { type Harness, harness } from '../helpers'

let h: Harness
afterEach(async () => {
  await h?.close()
})

async function create(name: string, body: Record<string, unknown> = {}) {
  const res = await h.json('POST', `/api/v1/instances/${name}?wait=ready`, { backend_options: { model: 'x' }, ...body })
  expect([name, res.status]).toEqual([name, 201])
  return res.body
}

function chat(base: string, model: string, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}) {
  return fetch(`${base}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }], ...extra }),
  })
}

/** What every instance answers to, as stored: the check that a refused request changed nothing. */
async function snapshot() {
  const list = (await h.json('GET', '/api/v1/instances')).body as { name: string; options: { aliases?: string[] } }[]
  return list.map((i) => [i.name, i.options.aliases ?? []])
}

describe('aliases', () => {
  test('are stored with the instance, read back and replaced by an update', async () => {
    h = await harness()
    const a = await create('a', { aliases: ['qwen', 'qwen-7b'] })
    expect(a.options.aliases).toEqual(['qwen', 'qwen-7b'])
    expect((await h.json('GET', '/api/v1/instances/a')).body.options.aliases).toEqual(['qwen', 'qwen-7b'])
    const up = await h.json('PUT', '/api/v1/instances/a', { backend_options: { model: 'x' }, aliases: ['other'] })
    expect(up.status).toBe(200)
    expect(up.body.options.aliases).toEqual(['other'])
  })

  test('a bad alias is 400 and creates nothing', async () => {
    h = await harness()
    for (const aliases of [['..'], ['a..b'], ['/x'], [''], ['dup', 'dup'], 'one']) {
      const res = await h.json('POST', '/api/v1/instances/x', { backend_options: { model: 'x' }, aliases })
      expect([aliases, res.status]).toEqual([aliases, 400])
      expect(res.body.error).toContain('aliases')
    }
    expect(await snapshot()).toEqual([])
  })

  test('every collision is 409 and changes nothing', async () => {
    h = await harness()
    await create('a', { aliases: ['qwen'] })
    await create('b', { aliases: ['llama'] })
    const before = await snapshot()
    const refused = async (method: string, path: string, aliases: string[] | undefined, says: string) => {
      const res = await h.json(method, path, { backend_options: { model: 'x' }, ...(aliases && { aliases }) })
      expect([path, aliases, res.status]).toEqual([path, aliases, 409])
      expect(res.body.error).toContain(says)
      expect(await snapshot()).toEqual(before)
    }
    // a create: its alias is an instance's name, another's alias, or its own name; its name is an alias
    await refused('POST', '/api/v1/instances/c', ['a'], 'is the name of instance "a"')
    await refused('POST', '/api/v1/instances/c', ['ok', 'llama'], 'already an alias of instance "b"')
    await refused('POST', '/api/v1/instances/c', ['c'], 'own name')
    await refused('POST', '/api/v1/instances/qwen', undefined, 'already an alias of instance "a"')
    // an update: its alias is another instance's name, another's alias, or its own name
    await refused('PUT', '/api/v1/instances/a', ['b'], 'is the name of instance "b"')
    await refused('PUT', '/api/v1/instances/a', ['llama'], 'already an alias of instance "b"')
    await refused('PUT', '/api/v1/instances/a', ['a'], 'is the name of instance "a"')
    // The refused update left the instance's own aliases in place: it is still reached by them.
    const base = h.listen()
    expect(Number((await chat(base, 'qwen')).headers.get('x-fake-port'))).toBe(h.manager.get('a').port!)
    // An alias given up is free for another instance.
    expect((await h.json('PUT', '/api/v1/instances/b', { backend_options: { model: 'x' }, aliases: [] })).status).toBe(200)
    await create('llama')
  })

  test('a request by alias reaches the instance, plain, streamed and alias/inner; the reply names the alias', async () => {
    h = await harness()
    const a = await create('a', { aliases: ['qwen'] })
    const b = await create('b', { aliases: ['llama'] })
    const base = h.listen()
    for (const [model, port] of [['qwen', a.port], ['llama', b.port], ['qwen', a.port]] as const) {
      const res = await chat(base, model)
      expect([model, res.status, Number(res.headers.get('x-fake-port'))]).toEqual([model, 200, port])
      expect((await res.json()).model).toBe(model)
    }
    const res = await chat(base, 'qwen', { stream: true, max_tokens: 3 })
    expect(res.status).toBe(200)
    const data = (await res.text()).split('\n\n').filter((e) => e.startsWith('data: {'))
    expect(data.length).toBeGreaterThan(3)
    for (const e of data) expect(JSON.parse(e.slice(6)).model).toBe('qwen')
    const echo = await (await fetch(`${base}/v1/echo`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model":"llama/inner"}' })).json()
    expect(echo.body).toBe('{"model":"inner"}')
    expect((await chat(base, 'nobody')).status).toBeGreaterThanOrEqual(400)
  })

  test('a request by alias starts a stopped instance on demand', async () => {
    h = await harness()
    await create('od', { on_demand_start: true, aliases: ['lazy'] })
    await h.json('POST', '/api/v1/instances/od/stop')
    expect(h.manager.get('od').status).toBe('stopped')
    const res = await chat(h.listen(), 'lazy')
    expect(res.status).toBe(200)
    expect((await res.json()).model).toBe('lazy')
    expect(h.manager.get('od').status).toBe('running')
  })

  test('/v1/models lists each instance once with its aliases; /v1/models/{alias} answers the instance', async () => {
    h = await harness()
    const a = await create('a', { aliases: ['qwen', 'qwen-7b'] })
    const b = await create('b')
    expect((await h.json('GET', '/v1/models')).body).toEqual({
      object: 'list',
      data: [
        { id: 'a', object: 'model', created: a.created, owned_by: 'llamactl', aliases: ['qwen', 'qwen-7b'] },
        { id: 'b', object: 'model', created: b.created, owned_by: 'llamactl' },
      ],
    })
    const one = await h.json('GET', '/v1/models/qwen-7b')
    expect([one.status, one.body.id, one.body.aliases]).toEqual([200, 'a', ['qwen', 'qwen-7b']])
  })
})

describe('aliases and keys limited to instances', () => {
  const MGMT = 'mgmt-key-for-tests-0123456789'
  const on = { LLAMACTL_REQUIRE_MANAGEMENT_AUTH: 'true', LLAMACTL_REQUIRE_INFERENCE_AUTH: 'true', LLAMACTL_MANAGEMENT_KEYS: MGMT }
  const mgmt = { authorization: `Bearer ${MGMT}` }

  test('a key for instance A may use A\'s aliases and never B\'s', async () => {
    h = await harness(on)
    for (const [name, alias] of [['mine', 'mine-alias'], ['theirs', 'theirs-alias']]) {
      const res = await h.request('POST', `/api/v1/instances/${name}?wait=ready`, { backend_options: { model: 'x' }, aliases: [alias] }, mgmt)
      expect(res.status).toBe(201)
    }
    const k = await (await h.request('POST', '/api/v1/auth/keys', { name: 'limited', instances: ['mine'] }, mgmt)).json()
    const key = { authorization: `Bearer ${k.key}` }
    const base = h.listen()
    expect((await chat(base, 'mine-alias', {}, key)).status).toBe(200)
    expect((await chat(base, 'mine-alias/inner', {}, key)).status).toBe(200)
    for (const model of ['theirs-alias', 'theirs-alias/inner', 'theirs']) {
      const res = await chat(base, model, {}, key)
      expect([model, res.status]).toEqual([model, 403])
      expect((await res.json()).error).toContain('"theirs"')
    }
    expect((await h.request('GET', '/v1/models/theirs-alias', undefined, key)).status).toBe(404)
    expect((await h.request('GET', '/v1/models/mine-alias', undefined, key)).status).toBe(200)
    const models = await (await h.request('GET', '/v1/models', undefined, key)).json()
    expect(models.data.map((m: { id: string }) => m.id)).toEqual(['mine'])
  })
})
