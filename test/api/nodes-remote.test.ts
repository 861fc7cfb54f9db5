/**
 * Remote nodes over loopback: real llamactl processes as nodes (each with the fake backend and a
 * management key), a main node in-process in front of them, and small Bun.serve stubs for nodes
 * that answer what llamactl never would (HTML, the wrong shape, nothing at all).
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'bun:test'
import { rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import OpenAI from 'openai'
import { InstanceManager } from '../../src/instances/manager'
import { type Harness, harness, tempDir, waitFor } from '../helpers'
import { type Running, startLlamactl, TEST_KEY } from '../system/process'

const procs: Running[] = []
const mains: Harness[] = []
const dirs: string[] = []

async function node(name: string, env: Record<string, string> = {}, args: string[] = []): Promise<Running> {
  const r = await startLlamactl(tempDir(), { env: { LLAMACTL_LOCAL_NODE: name, FAKE_TOKEN_DELAY_MS: '20', ...env }, args })
  procs.push(r)
  return r
}

/** A main node whose config file lists `nodes` (name → address, key). */
async function main(nodes: Record<string, { address: string; api_key?: string; ca_file?: string }>, env: Record<string, string> = {}): Promise<Harness> {
  const dir = tempDir()
  dirs.push(dir)
  const file = join(dir, 'main.yaml')
  const lines = ['nodes:', ...Object.entries(nodes).flatMap(([n, v]) => [`  ${n}:`, `    address: "${v.address}"`, `    api_key: "${v.api_key ?? TEST_KEY}"`, ...(v.ca_file ? [`    ca_file: "${v.ca_file}"`] : [])])]
  writeFileSync(file, `${lines.join('\n')}\n`)
  const h = await harness({ LLAMACTL_CONFIG_PATH: file, LLAMACTL_NODE_HEALTH_CHECK_INTERVAL: '0.2', LLAMACTL_NODE_REQUEST_TIMEOUT: '2', ...env })
  mains.push(h)
  return h
}

const model = { backend_options: { model: 'x' } }
const names = (list: { name: string }[]) => list.map((i) => i.name).sort()

afterEach(async () => {
  for (const h of mains.splice(0)) await h.close()
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})
afterAll(async () => {
  for (const p of procs.splice(0)) if (p.proc.exitCode === null) await p.stop('SIGTERM')
})

describe('two llamactl nodes behind a main node', () => {
  let w1: Running
  let w2: Running
  beforeAll(async () => {
    // w1 runs one instance at most: placement weighs that.
    ;[w1, w2] = await Promise.all([node('w1', { LLAMACTL_MAX_RUNNING_INSTANCES: '1', LLAMACTL_AUTH_MAX_FAILURES: '0' }), node('w2')])
  })
  afterEach(async () => {
    // Each test leaves the nodes empty for the next.
    for (const w of [w1, w2]) for (const i of (await w.api('GET', '/api/v1/instances')).body) await w.api('DELETE', `/api/v1/instances/${i.name}`)
  })

  test('GET /api/v1/nodes shows each node with its address, reachability, version and instances, never its key', async () => {
    const h = await main({ w1: { address: w1.url }, w2: { address: w2.url } })
    await waitFor(async () => (await h.json('GET', '/api/v1/nodes')).body.w2.reachable === true)
    await w2.api('POST', '/api/v1/instances/own?wait=ready', model)
    const one = await h.json('GET', '/api/v1/nodes/w2')
    expect(one.body).toMatchObject({ address: w2.url, local: false, reachable: true, running: 1, total: 1, max_running_instances: -1, managed: 0, error: null })
    expect(one.body.version).toEqual(expect.any(String))
    const all = await h.json('GET', '/api/v1/nodes')
    expect(Object.keys(all.body).sort()).toEqual(['main', 'w1', 'w2'])
    expect(all.body.w1).toMatchObject({ reachable: true, max_running_instances: 1, total: 0 })
    expect(all.body.main).toMatchObject({ address: '', local: true })
    for (const path of ['/api/v1/nodes', '/api/v1/nodes/w1', '/api/v1/config']) {
      expect(await (await h.request('GET', path)).text()).not.toContain(TEST_KEY)
    }
    expect((await h.json('GET', '/api/v1/nodes/nope')).status).toBe(404)
  })

  test('every operation on a remote instance is carried out by its node', async () => {
    const h = await main({ w1: { address: w1.url }, w2: { address: w2.url } })
    const made = await h.json('POST', '/api/v1/instances/far?wait=ready', { ...model, nodes: ['w2'], aliases: ['far-alias'] })
    expect([made.status, made.body.node, made.body.status, made.body.options.nodes]).toEqual([201, 'w2', 'running', ['w2']])
    // On the node it is an ordinary instance of its own.
    const there = await w2.api('GET', '/api/v1/instances/far')
    expect([there.status, there.body.status, there.body.node]).toEqual([200, 'running', 'w2'])
    expect((await h.json('POST', '/api/v1/instances/near?wait=ready', model)).body.node).toBe('main')

    const list = (await h.json('GET', '/api/v1/instances')).body
    expect(list.map((i: any) => [i.name, i.node, i.status])).toEqual([['near', 'main', 'running'], ['far', 'w2', 'running']])
    expect(list[1].id).not.toBe(list[0].id)
    expect((await h.json('GET', '/api/v1/instances/far')).body).toMatchObject({ name: 'far', node: 'w2', status: 'running', id: made.body.id })

    expect((await h.json('POST', '/api/v1/instances/far/stop')).body.status).toBe('stopped')
    expect((await w2.api('GET', '/api/v1/instances/far')).body.status).toBe('stopped')
    expect((await h.json('POST', '/api/v1/instances/far/start?wait=ready')).body.status).toBe('running')
    expect((await w2.api('GET', '/api/v1/instances/far')).body.status).toBe('running')
    const restarted = await h.json('POST', '/api/v1/instances/far/restart?wait=ready')
    expect([restarted.status, restarted.body.status]).toEqual([200, 'running'])

    const updated = await h.json('PUT', '/api/v1/instances/far?wait=ready', { ...model, aliases: ['far-2'], idle_timeout: 7 })
    expect([updated.status, updated.body.options.idle_timeout, updated.body.options.aliases, updated.body.node]).toEqual([200, 7, ['far-2'], 'w2'])
    expect((await w2.api('GET', '/api/v1/instances/far')).body.options.idle_timeout).toBe(7)
    const move = await h.json('PUT', '/api/v1/instances/far', { ...model, nodes: ['w1'] })
    expect([move.status, move.body.error]).toEqual([400, expect.stringContaining('do not move between nodes')])

    const logs = await h.request('GET', '/api/v1/instances/far/logs?lines=5')
    expect(logs.status).toBe(200)
    expect(logs.headers.get('content-type')).toStartWith('text/plain')
    expect(await logs.text()).toContain('[llamactl]')
    // Followed: server-sent events from the node, through the main node.
    const follow = new AbortController()
    const events = await fetch(`${h.listen()}/api/v1/instances/far/logs?follow=true&lines=2`, { signal: follow.signal })
    expect(events.headers.get('content-type')).toStartWith('text/event-stream')
    const reader = events.body!.getReader()
    let got = ''
    for (let i = 0; i < 20 && !got.includes('data: '); i++) got += new TextDecoder().decode((await reader.read()).value)
    expect(got).toContain('data: ')
    follow.abort()

    const proxied = await h.request('GET', '/api/v1/instances/far/proxy/health')
    expect([proxied.status, (await proxied.json()).status]).toEqual([200, 'ok'])

    expect((await h.request('DELETE', '/api/v1/instances/far')).status).toBe(204)
    expect((await w2.api('GET', '/api/v1/instances/far')).status).toBe(404)
    expect(names((await h.json('GET', '/api/v1/instances')).body)).toEqual(['near'])
    expect(h.store.listRemoteInstances()).toEqual([])
  })

  test('/v1 reaches a remote instance through the main node: plain, streamed, on demand, counted per instance and node', async () => {
    const h = await main({ w2: { address: w2.url } })
    expect((await h.json('POST', '/api/v1/instances/chat?wait=ready', { ...model, nodes: ['w2'], aliases: ['chat-alias'] })).status).toBe(201)
    const client = new OpenAI({ baseURL: `${h.listen()}/v1`, apiKey: 'unused', maxRetries: 0 })
    const models = await client.models.list()
    expect(models.data.map((m) => m.id)).toEqual(['chat'])
    expect((await h.json('GET', '/v1/models/chat-alias')).body.id).toBe('chat')

    const plain = await client.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'one two three' }] })
    expect(plain.model).toBe('chat')
    expect(plain.choices[0]!.message.content).toBeTruthy()
    const byAlias = await client.chat.completions.create({ model: 'chat-alias', messages: [{ role: 'user', content: 'hi' }] })
    expect(byAlias.model).toBe('chat-alias')

    const stream = await client.chat.completions.create({ model: 'chat', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'tell me' }] })
    let chunks = 0
    let usage = 0
    for await (const c of stream) {
      chunks++
      if (c.usage) usage = c.usage.completion_tokens
    }
    expect(chunks).toBeGreaterThan(2)
    expect(usage).toBeGreaterThan(0)

    // Stopped on the node: the node starts it on demand.
    await h.json('POST', '/api/v1/instances/chat/stop')
    const again = await client.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'wake' }] })
    expect(again.choices.length).toBe(1)
    expect((await w2.api('GET', '/api/v1/instances/chat')).body.status).toBe('running')

    const metrics = await (await h.request('GET', '/metrics')).text()
    expect(metrics).toMatch(/llamactl_requests_total\{instance="chat",route="chat_completions",status="200"\} 4/)
    expect(metrics).toMatch(/llamactl_node_requests_total\{node="w2",route="chat_completions",status="200"\} 4/)
    expect(metrics).toMatch(/llamactl_completion_tokens_total\{instance="chat"\} [1-9]/)
    expect(metrics).toContain('llamactl_node_up{node="w2"} 1')
  })

  test('a client that goes away mid-stream aborts the request on the node', async () => {
    const h = await main({ w2: { address: w2.url } })
    await h.json('POST', '/api/v1/instances/slow?wait=ready', { ...model, nodes: ['w2'] })
    const ctrl = new AbortController()
    const res = await fetch(`${h.listen()}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'slow', stream: true, max_tokens: 500, messages: [{ role: 'user', content: 'go on' }] }),
      signal: ctrl.signal,
    })
    const reader = res.body!.getReader()
    expect(new TextDecoder().decode((await reader.read()).value)).toContain('data: ')
    ctrl.abort()
    // The node saw its client (the main node) leave: its request ended as 499.
    await waitFor(async () => /llamactl_requests_total\{instance="slow",route="chat_completions",status="499"\} 1/.test(await (await fetch(`${w2.url}/metrics`, { headers: { authorization: `Bearer ${TEST_KEY}` } })).text()))
  })

  test('several nodes listed: placed on the one with the most free room, and the answer says which', async () => {
    const h = await main({ w1: { address: w1.url }, w2: { address: w2.url } })
    await waitFor(async () => (await h.json('GET', '/api/v1/nodes')).body.w1.max_running_instances === 1)
    // Equal room (none running, w2 unlimited): w2 has more.
    const first = await h.json('POST', '/api/v1/instances/p1?wait=ready', { ...model, nodes: ['w1', 'w2'] })
    expect([first.status, first.body.node]).toEqual([201, 'w2'])
    // Only w1 listed first with room 1, main unlimited but listed second with one running: main has more.
    const second = await h.json('POST', '/api/v1/instances/p2?wait=ready', { ...model, nodes: ['w1', 'main'] })
    expect([second.status, second.body.node]).toEqual([201, 'main'])
    // w1 full once it runs one.
    expect((await h.json('POST', '/api/v1/instances/p3?wait=ready', { ...model, nodes: ['w1'] })).body.node).toBe('w1')
    await waitFor(async () => (await h.json('GET', '/api/v1/nodes')).body.w1.running === 1)
    const fourth = await h.json('POST', '/api/v1/instances/p4?wait=ready', { ...model, nodes: ['w1', 'w2'] })
    expect(fourth.body.node).toBe('w2')
    expect(h.store.listRemoteInstances().map((r) => [r.name, r.node])).toEqual([['p1', 'w2'], ['p3', 'w1'], ['p4', 'w2']])
  })

  test('names are unique across nodes (409), an unknown node is 400, and neither changes anything', async () => {
    const h = await main({ w1: { address: w1.url }, w2: { address: w2.url } })
    await h.json('POST', '/api/v1/instances/taken?wait=ready', { ...model, nodes: ['w2'], aliases: ['taken-too'] })
    await h.json('POST', '/api/v1/instances/local-one?wait=ready', model)
    const tries = [
      ['taken', {}],
      ['taken', { nodes: ['w1'] }],
      ['taken-too', {}],
      ['local-one', { nodes: ['w2'] }],
      ['fresh', { nodes: ['w1'], aliases: ['taken'] }],
    ] as const
    for (const [name, extra] of tries) {
      const res = await h.json('POST', `/api/v1/instances/${name}`, { ...model, ...extra })
      expect([name, res.status]).toEqual([name, 409])
    }
    // Made on the node directly: the main node does not take it over.
    await w1.api('POST', '/api/v1/instances/theirs', model)
    const theirs = await h.json('POST', '/api/v1/instances/theirs', { ...model, nodes: ['w1'] })
    expect([theirs.status, theirs.body.error]).toEqual([409, expect.stringContaining('node "w1"')])

    const unknown = await h.json('POST', '/api/v1/instances/nowhere', { ...model, nodes: ['nope'] })
    expect([unknown.status, unknown.body.error]).toEqual([400, expect.stringContaining('"nope" is not a configured node')])
    expect(names((await h.json('GET', '/api/v1/instances')).body)).toEqual(['local-one', 'taken'])
    expect(names((await w1.api('GET', '/api/v1/instances')).body)).toEqual(['theirs'])
  })

  test('a node that refuses the key is a 502 naming the node, and nothing is made', async () => {
    const h = await main({ wrong: { address: w1.url, api_key: 'not-the-key-0123456789' } })
    const res = await h.json('POST', '/api/v1/instances/k', { ...model, nodes: ['wrong'] })
    expect(res.status).toBe(502)
    expect(res.body.error).toContain('node "wrong" refused llamactl\'s key (401)')
    expect(res.body.error).toContain('nodes.wrong.api_key')
    expect((await w1.api('GET', '/api/v1/instances')).body).toEqual([])
    expect((await h.json('GET', '/api/v1/instances')).body).toEqual([])
    await waitFor(async () => (await h.json('GET', '/api/v1/nodes')).body.wrong.reachable === false)
    expect((await h.json('GET', '/api/v1/nodes')).body.wrong.error).toContain('refused')
  })

  test('the page: a node choice when creating, the node of each instance, and a nodes view with their health', async () => {
    const h = await main({ w2: { address: w2.url } })
    await waitFor(async () => (await h.json('GET', '/api/v1/nodes')).body.w2.reachable === true)
    const form = await (await h.request('GET', '/ui/instances/new')).text()
    expect(form).toContain('<select id="f-node" name="node"')
    expect(form).toContain('<option value="w2">w2</option>')
    const csrf = /<meta name="csrf-token" content="([^"]+)">/.exec(form)![1]!
    const fields = new URLSearchParams({ _mode: 'create', name: 'paged', backend_type: 'llama_cpp', model: 'x', node: 'w2' })
    const made = await h.request('POST', '/ui/instances', fields.toString(), { 'content-type': 'application/x-www-form-urlencoded', 'x-csrf-token': csrf, 'hx-request': 'true' })
    expect(made.headers.get('hx-redirect')).toBe('/ui')
    expect((await w2.api('GET', '/api/v1/instances/paged')).status).toBe(200)
    await h.json('POST', '/api/v1/instances/here?wait=ready', model)
    const list = await (await h.request('GET', '/ui', undefined, { 'hx-request': 'true' })).text()
    expect(list).toContain('<th scope="col">Node</th>')
    expect(list).toMatch(/id="row-paged"[\s\S]*?<td data-label="Node">w2<\/td>/)
    expect(list).toMatch(/id="row-here"[\s\S]*?<td data-label="Node">main<\/td>/)
    const stopped = await h.request('POST', '/ui/instances/paged/stop', '', { 'content-type': 'application/x-www-form-urlencoded', 'x-csrf-token': csrf, 'hx-request': 'true' })
    expect(await stopped.text()).toContain('Stopped paged.')
    expect((await w2.api('GET', '/api/v1/instances/paged')).body.status).toBe('stopped')
    const nodes = await (await h.request('GET', '/ui/nodes')).text()
    expect(nodes).toMatch(/id="node-w2"[\s\S]*?badge s-running">up</)
    expect(nodes).toContain(w2.url)
    expect(nodes).not.toContain(TEST_KEY)
  })

  test('the main node lists its remote instances after a restart, and reads their state back from the node', async () => {
    const h = await main({ w2: { address: w2.url } })
    await h.json('POST', '/api/v1/instances/kept?wait=ready', { ...model, nodes: ['w2'] })
    await w2.api('POST', '/api/v1/instances/kept/stop')
    // A second main node on the same database: what a restarted one reads.
    const again = new InstanceManager(h.config, h.store)
    try {
      await again.init()
      expect(again.remote.list().map((r) => [r.name, r.node])).toEqual([['kept', 'w2']])
      await waitFor(() => again.remote.view(again.remote.find('kept')!).status === 'stopped')
      expect(again.index.exists('kept')).toBe(true)
    } finally {
      await again.shutdown()
    }
  })
})

test('a node that cannot be reached at create is a 502, and nothing is left on either side', async () => {
  const closed = Bun.serve({ hostname: '127.0.0.1', port: 0, fetch: () => new Response('') })
  const address = `http://127.0.0.1:${closed.port}`
  closed.stop(true)
  const h = await main({ gone: { address } })
  const res = await h.json('POST', '/api/v1/instances/x', { ...model, nodes: ['gone'] })
  expect(res.status).toBe(502)
  expect(res.body.error).toContain('node "gone"')
  expect((await h.json('GET', '/api/v1/instances')).body).toEqual([])
  expect(h.store.listRemoteInstances()).toEqual([])
  expect(h.store.countInstances()).toBe(0)
})

/** A stand-in node: a valid empty node, except for what `mode` changes. */
function stubNode(tls?: { cert: string; key: string }) {
  const seen: string[] = []
  const state = { mode: 'ok' as 'ok' | 'html' | 'shape' | 'hang' | 'deny-v1', made: null as Record<string, unknown> | null }
  const hang = new Set<() => void>()
  const server = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    ...(tls && { tls }),
    async fetch(req) {
      const { pathname } = new URL(req.url)
      seen.push(`${req.method} ${pathname}`)
      if (state.mode === 'deny-v1' && pathname.startsWith('/v1/')) return Response.json({ error: 'invalid or expired API key' }, { status: 401 })
      if (state.mode === 'hang' || pathname.startsWith('/v1/')) {
        await new Promise<void>((resolve) => hang.add(resolve))
        return new Response(null, { status: 504 })
      }
      if (state.mode === 'html') return new Response('<html><body>Welcome to nginx</body></html>', { headers: { 'content-type': 'text/html' } })
      if (pathname === '/api/v1/version') return new Response('Version: stub\n')
      if (pathname === '/api/v1/config') return Response.json({ instances: { max_running_instances: -1, max_instances: -1 } })
      if (pathname === '/api/v1/instances') return Response.json(state.made ? [state.made] : [])
      if (req.method === 'GET') return state.made ? Response.json(state.made) : Response.json({ error: 'not found' }, { status: 404 })
      if (req.method === 'DELETE') return (state.made = null), new Response(null, { status: 204 })
      if (state.mode === 'shape') return Response.json({ hello: 'world' }, { status: 201 })
      const name = pathname.split('/')[4]!
      state.made = { id: 1, name, status: 'running', state: 'running', created: 1, options: { backend_type: 'llama_cpp' }, port: 1, restarts: 0, error: null }
      return Response.json(state.made, { status: 201 })
    },
  })
  return {
    state,
    seen,
    address: `${tls ? 'https' : 'http'}://127.0.0.1:${server.port}`,
    close() {
      for (const r of hang) r()
      server.stop(true)
    },
  }
}

test('an https:// node is trusted by the CA bundle its ca_file names, and refused without it', async () => {
  const dir = tempDir()
  const [cert, key] = [join(dir, 'node.pem'), join(dir, 'node.key')]
  const made = Bun.spawnSync(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert], { stderr: 'pipe' })
  expect(made.exitCode).toBe(0)
  const stub = stubNode({ cert: await Bun.file(cert).text(), key: await Bun.file(key).text() })
  try {
    const h = await main({ sec: { address: stub.address, ca_file: cert }, plain: { address: stub.address } })
    const ok = await h.json('POST', '/api/v1/instances/tls-one', { ...model, nodes: ['sec'] })
    expect([ok.status, ok.body.node]).toEqual([201, 'sec'])
    const refused = await h.json('POST', '/api/v1/instances/tls-two', { ...model, nodes: ['plain'] })
    expect([refused.status, refused.body.error]).toEqual([502, expect.stringContaining('node "plain"')])
    expect(h.store.listRemoteInstances().map((r) => r.name)).toEqual(['tls-one'])
  } finally {
    stub.close()
  }
})

describe('a node that answers what the API does not promise', () => {
  let stub: ReturnType<typeof stubNode>
  afterEach(() => stub.close())

  test('HTML is a 502 naming the node, and nothing is recorded', async () => {
    stub = stubNode()
    stub.state.mode = 'html'
    const h = await main({ odd: { address: stub.address } })
    const res = await h.json('POST', '/api/v1/instances/x', { ...model, nodes: ['odd'] })
    expect([res.status, res.body.error]).toEqual([502, expect.stringContaining('node "odd" answered GET /api/v1/instances/x with text/html (42 bytes), not JSON')])
    expect((await h.json('GET', '/api/v1/instances')).body).toEqual([])
    expect(h.store.countInstances()).toBe(0)
    await waitFor(async () => (await h.json('GET', '/api/v1/nodes')).body.odd.reachable === false)
  })

  test('the wrong shape is a 502 naming the node; what it may have made is deleted there', async () => {
    stub = stubNode()
    stub.state.mode = 'shape'
    const h = await main({ odd: { address: stub.address } })
    const res = await h.json('POST', '/api/v1/instances/x', { ...model, nodes: ['odd'] })
    expect([res.status, res.body.error]).toEqual([502, expect.stringContaining('node "odd" answered POST /api/v1/instances/x with something that is not an instance')])
    expect(h.store.countInstances()).toBe(0)
    await waitFor(() => stub.seen.includes('DELETE /api/v1/instances/x'))
  })

  test('a hang is a 502 naming the node within node_request_timeout; nothing is recorded', async () => {
    stub = stubNode()
    stub.state.mode = 'hang'
    const h = await main({ odd: { address: stub.address } }, { LLAMACTL_NODE_REQUEST_TIMEOUT: '0.5' })
    const res = await h.json('POST', '/api/v1/instances/x', { ...model, nodes: ['odd'] })
    expect([res.status, res.body.error]).toEqual([502, expect.stringContaining('node "odd" did not answer GET /api/v1/instances/x within 0.5 s')])
    expect(h.store.countInstances()).toBe(0)
  })

  test('a node that refuses the key on /v1 is a 502 naming the node, not its 401', async () => {
    stub = stubNode()
    const h = await main({ odd: { address: stub.address } })
    expect((await h.json('POST', '/api/v1/instances/s2', { ...model, nodes: ['odd'] })).status).toBe(201)
    stub.state.mode = 'deny-v1'
    const res = await h.request('POST', '/v1/chat/completions', { model: 's2', messages: [] })
    expect(res.status).toBe(502)
    expect((await res.json()).error).toContain('node "odd" refused llamactl\'s key (401) for instance "s2"')
  })

  test('a node that stops answering: its instances go unknown, its requests end 502, the list and local instances do not wait', async () => {
    stub = stubNode()
    const h = await main({ odd: { address: stub.address } }, { LLAMACTL_NODE_REQUEST_TIMEOUT: '1' })
    expect((await h.json('POST', '/api/v1/instances/s1', { ...model, nodes: ['odd'] })).status).toBe(201)
    expect((await h.json('POST', '/api/v1/instances/mine?wait=ready', model)).status).toBe(201)
    await waitFor(async () => (await h.json('GET', '/api/v1/instances/s1')).body.status === 'running')
    const base = h.listen()
    // The stub holds /v1 forever: the request ends when the node is found down, with a 502 naming it.
    const held = fetch(`${base}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 's1', messages: [] }) })
    await waitFor(() => stub.seen.includes('POST /v1/chat/completions'))
    stub.state.mode = 'hang'
    const ended = await held
    expect(ended.status).toBe(502)
    expect((await ended.json()).error).toContain('node "odd" stopped answering')
    const list = (await h.json('GET', '/api/v1/instances')).body
    expect(list.map((i: any) => [i.name, i.status])).toEqual([['mine', 'running'], ['s1', 'unknown']])
    expect(list[1].error).toContain('node "odd" is not answering')
    const op = await h.json('POST', '/api/v1/instances/s1/stop')
    expect([op.status, op.body.error]).toEqual([503, expect.stringContaining('node "odd", which is not answering')])
    const chat = await fetch(`${base}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 's1', messages: [] }) })
    expect(chat.status).toBe(503)
    const local = await fetch(`${base}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'mine', messages: [{ role: 'user', content: 'hi' }] }) })
    expect(local.status).toBe(200)
    expect((await h.json('GET', '/api/v1/nodes')).body.odd.reachable).toBe(false)
    // Back: its real state is read again.
    stub.state.made = { ...stub.state.made!, status: 'stopped', state: 'stopped' }
    stub.state.mode = 'ok'
    await waitFor(async () => (await h.json('GET', '/api/v1/instances')).body[1].status === 'stopped', 15000)
  })
})

test('a node killed and started again: unknown meanwhile, 503 for its instances, local ones unaffected, then its real state', async () => {
  const dir = tempDir()
  const probe = Bun.serve({ hostname: '127.0.0.1', port: 0, fetch: () => new Response('') })
  const port = probe.port
  probe.stop(true)
  let w3 = await startLlamactl(dir, { env: { LLAMACTL_LOCAL_NODE: 'w3', FAKE_TOKEN_DELAY_MS: '20' }, args: ['--port', String(port)] })
  procs.push(w3)
  const h = await main({ w3: { address: w3.url } })
  expect((await h.json('POST', '/api/v1/instances/r1?wait=ready', { ...model, nodes: ['w3'] })).status).toBe(201)
  expect((await h.json('POST', '/api/v1/instances/l1?wait=ready', model)).status).toBe(201)
  // Killed mid-stream: the client's stream is cut, and the main node counts it as a 502.
  const streaming = await fetch(`${h.listen()}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'r1', stream: true, max_tokens: 1000, messages: [{ role: 'user', content: 'go on' }] }),
  })
  const reader = streaming.body!.getReader()
  expect(new TextDecoder().decode((await reader.read()).value)).toContain('data: ')
  await w3.stop('SIGKILL')
  let cut = false
  let rest = ''
  try {
    for (let i = 0; i < 2000; i++) {
      const { done, value } = await reader.read()
      if (done) break
      rest += new TextDecoder().decode(value)
    }
  } catch {
    cut = true
  }
  expect(cut || !rest.includes('[DONE]')).toBe(true)
  await waitFor(async () => /llamactl_requests_total\{instance="r1",route="chat_completions",status="502"\} 1/.test(await (await h.request('GET', '/metrics')).text()))
  await waitFor(async () => (await h.json('GET', '/api/v1/instances/r1')).body.status === 'unknown')
  const list = (await h.json('GET', '/api/v1/instances')).body
  expect(list.map((i: any) => [i.name, i.node, i.status])).toEqual([['l1', 'main', 'running'], ['r1', 'w3', 'unknown']])
  const base = h.listen()
  const post = (m: string) => fetch(`${base}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: m, messages: [{ role: 'user', content: 'hi' }] }) })
  const remote = await post('r1')
  expect(remote.status).toBe(503)
  expect((await remote.json()).error).toContain('node "w3"')
  expect((await post('l1')).status).toBe(200)
  expect((await h.json('POST', '/api/v1/instances/r1/restart')).status).toBe(503)

  // Started again on its port with its data: it ends the backend the kill left and resumes r1.
  w3 = await startLlamactl(dir, { env: { LLAMACTL_LOCAL_NODE: 'w3' }, args: ['--port', String(port)] })
  procs.push(w3)
  await waitFor(async () => (await h.json('GET', '/api/v1/instances/r1')).body.status === 'running', 20000)
  expect((await post('r1')).status).toBe(200)
})

test('llamactl as a main node names its nodes at start-up, never their keys', async () => {
  const dir = tempDir()
  const file = join(dir, 'main.yaml')
  writeFileSync(file, 'nodes:\n  far:\n    address: "http://127.0.0.1:9"\n    api_key: "far-key-0123456789"\n')
  const m = await startLlamactl(dir, { env: { LLAMACTL_CONFIG_PATH: file } })
  procs.push(m)
  expect(m.output()).toContain('nodes: far (http://127.0.0.1:9)')
  expect(m.output()).not.toContain('far-key-0123456789')
  const nodes = await m.api('GET', '/api/v1/nodes')
  expect(Object.keys(nodes.body)).toEqual(['main', 'far'])
  expect(JSON.stringify(nodes.body)).not.toContain('far-key-0123456789')
})
