/**
 * Remote nodes across hosts (issue 17): three hosts on this machine (test/nodes/netns.ts), a
 * llamactl node with the real llama-server on each of two, the main llamactl on the third, and
 * the test process as the client of the main. The main reaches each node through a delaying
 * relay on the node's own host, so what crosses the link is still crossing it when a fault
 * comes: w1's relay trickles (128-byte pieces, one every 5 ms), w2's is a slow node (every chunk
 * held 50 ms). Faults: w1's link cut mid-stream and restored, w2 SIGKILLed mid-stream and
 * started again, a node configured with the wrong key.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import OpenAI from 'openai'
import { realLlama } from '../e2e/real'
import { BUN, makeNet, ourNamespaces, processRunning, type Host, type Net, type Relay, type Spawned } from './netns'

const MAIN = resolve(import.meta.dir, '../../src/main.ts')
const MGMT = 'main-management-key-0123456789'
const NODE_KEY = 'node-management-key-0123456789'
const { server, model } = realLlama()
const small = { model, ctx_size: 512, threads: 1, parallel: 2 }

let net: Net
let hostW1: Host
let hostW2: Host
let hostMain: Host
interface Ll {
  proc: Spawned
  base: string
  dir: string
  config: string
}
let w1: Ll
let w2: Ll
let main: Ll
let r1: Relay
let r2: Relay

function writeConfig(dir: string, host: Host, lines: string[]): string {
  const lo = 20000 + Math.floor(Math.random() * 20000)
  const config = join(dir, 'llamactl.yaml')
  writeFileSync(
    config,
    [`server:`, `  host: ${host.address}`, '  port: 0', `data_dir: ${dir}`, 'backends:', '  llama-cpp:', `    command: ${server}`, 'instances:', `  port_range: [${lo}, ${lo + 200}]`, '  stop_grace_period: 2', ...lines, ''].join('\n'),
    { mode: 0o600 },
  )
  return config
}

async function start(host: Host, dir: string, config: string, env: Record<string, string> = {}, args: string[] = []): Promise<Ll> {
  const proc = net.spawn(host, [BUN, MAIN, '--config', config, ...args], { cwd: dir, env: { HOME: dir, ...env } })
  const m = await proc.waitFor(/listening on (http:\/\/[\d.]+:\d+)/, 20000)
  return { proc, base: m[1]!, dir, config }
}

async function nodeOn(host: Host, name: string): Promise<Ll> {
  const dir = mkdtempSync(join(tmpdir(), `llamactl-node-${name}-`))
  return start(host, dir, writeConfig(dir, host, [`local_node: ${name}`, 'auth:', `  management_keys: [${NODE_KEY}]`]))
}

async function call(base: string, key: string, method: string, path: string, body?: unknown) {
  const res = await fetch(base + path, {
    method,
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(60000),
  })
  const text = await res.text()
  let parsed: any = text
  try {
    parsed = JSON.parse(text)
  } catch {
    // plain text (logs)
  }
  return { status: res.status, body: parsed, headers: res.headers }
}
const onMain = (method: string, path: string, body?: unknown) => call(main.base, MGMT, method, path, body)
const onNode = (n: Ll, method: string, path: string, body?: unknown) => call(n.base, NODE_KEY, method, path, body)
const client = () => new OpenAI({ baseURL: `${main.base}/v1`, apiKey: MGMT, maxRetries: 0, timeout: 30000 })

/** Polls (bounded) until `ok` holds for what `get` answers; returns the last answer. */
async function until<T>(get: () => Promise<T>, ok: (v: T) => boolean, ms = 20000): Promise<T> {
  const deadline = Date.now() + ms
  let v = await get()
  while (!ok(v) && Date.now() < deadline) {
    await Bun.sleep(100)
    v = await get()
  }
  return v
}

beforeAll(async () => {
  net = await makeNet(3)
  ;[hostW1, hostW2, hostMain] = net.hosts as [Host, Host, Host]
  ;[w1, w2] = await Promise.all([nodeOn(hostW1, 'w1'), nodeOn(hostW2, 'w2')])
  r1 = await net.relay({ on: hostW1, target: new URL(w1.base).host, delayMs: 5, maxChunk: 128 })
  r2 = await net.relay({ on: hostW2, target: new URL(w2.base).host, delayMs: 50 })
  const dir = mkdtempSync(join(tmpdir(), 'llamactl-main-'))
  const config = writeConfig(dir, hostMain, [
    'auth:',
    `  management_keys: [${MGMT}]`,
    'nodes:',
    ...[
      ['w1', r1.url, NODE_KEY],
      ['w2', r2.url, NODE_KEY],
      // w1's llamactl itself, with a key it does not know
      ['wrong', w1.base, 'not-the-node-key-0123456789'],
    ].flatMap(([n, address, key]) => [`  ${n}:`, `    address: "${address}"`, `    api_key: "${key}"`]),
  ])
  main = await start(hostMain, dir, config, { LLAMACTL_NODE_HEALTH_CHECK_INTERVAL: '0.5', LLAMACTL_NODE_REQUEST_TIMEOUT: '5' })
  const nodes = await until(() => onMain('GET', '/api/v1/nodes'), (r) => r.body.w1?.reachable === true && r.body.w2?.reachable === true)
  if (nodes.body.w1?.reachable !== true || nodes.body.w2?.reachable !== true) throw new Error(`the nodes did not come up: ${JSON.stringify(nodes.body)}`)
}, 90000)

afterAll(async () => {
  await net?.teardown()
})

describe('every operation through the main is carried out by the node', () => {
  test('create on w1: the node has it, the main lists it with its node', async () => {
    const made = await onMain('POST', '/api/v1/instances/chat?wait=ready', { backend_type: 'llama_cpp', backend_options: small, nodes: ['w1'] })
    expect([made.status, made.body.node, made.body.status]).toEqual([201, 'w1', 'running'])
    const there = await onNode(w1, 'GET', '/api/v1/instances/chat')
    expect([there.status, there.body.status]).toEqual([200, 'running'])
    expect((await onNode(w2, 'GET', '/api/v1/instances/chat')).status).toBe(404)
    const list = await until(() => onMain('GET', '/api/v1/instances'), (r) => r.body.some((i: any) => i.name === 'chat' && i.status === 'running'))
    expect(list.body.find((i: any) => i.name === 'chat')).toMatchObject({ node: 'w1', status: 'running' })
    const one = await onMain('GET', '/api/v1/instances/chat')
    expect([one.status, one.body.node, one.body.port]).toEqual([200, 'w1', there.body.port])
  }, 60000)

  test('stop, start, restart, update', async () => {
    const stopped = await onMain('POST', '/api/v1/instances/chat/stop')
    expect([stopped.status, stopped.body.status]).toEqual([200, 'stopped'])
    expect((await onNode(w1, 'GET', '/api/v1/instances/chat')).body.status).toBe('stopped')
    const started = await onMain('POST', '/api/v1/instances/chat/start?wait=ready')
    expect([started.status, started.body.status]).toEqual([200, 'running'])
    const pid = (await onNode(w1, 'GET', '/api/v1/instances/chat')).body.pid
    const restarted = await onMain('POST', '/api/v1/instances/chat/restart?wait=ready')
    expect(restarted.status).toBe(200)
    const after = await until(() => onNode(w1, 'GET', '/api/v1/instances/chat'), (r) => r.body.status === 'running' && r.body.pid !== pid)
    expect(after.body.status).toBe('running')
    expect(after.body.pid).not.toBe(pid)
    const updated = await onMain('PUT', '/api/v1/instances/chat', { backend_type: 'llama_cpp', backend_options: { ...small, ctx_size: 384 }, nodes: ['w1'] })
    expect(updated.status).toBe(200)
    expect((await onNode(w1, 'GET', '/api/v1/instances/chat')).body.options.backend_options.ctx_size).toBe(384)
    await until(() => onNode(w1, 'GET', '/api/v1/instances/chat'), (r) => r.body.status === 'running')
  }, 90000)

  test('logs, logs followed and the proxy', async () => {
    const logs = await onMain('GET', '/api/v1/instances/chat/logs?lines=50')
    expect(logs.status).toBe(200)
    expect(String(logs.body)).toContain('llama')
    const ctl = new AbortController()
    const follow = await fetch(`${main.base}/api/v1/instances/chat/logs?follow=true&lines=5`, { headers: { authorization: `Bearer ${MGMT}` }, signal: ctl.signal })
    expect(follow.headers.get('content-type')).toContain('text/event-stream')
    const first = await follow.body!.getReader().read()
    expect(new TextDecoder().decode(first.value)).toContain('data:')
    ctl.abort()
    const health = await onMain('GET', '/api/v1/instances/chat/proxy/health')
    expect([health.status, health.body.status]).toEqual([200, 'ok'])
  }, 30000)
})

describe('/v1 through the main with the openai client', () => {
  test('a plain chat completion', async () => {
    const r = await client().chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'Hello' }], max_tokens: 8 })
    expect([r.object, r.model]).toEqual(['chat.completion', 'chat'])
    expect(r.choices[0]!.message.content!.length).toBeGreaterThan(0)
  })

  test('a streamed chat completion, event by event', async () => {
    let chunks = 0
    let finish: string | null = null
    for await (const c of await client().chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'Count' }], max_tokens: 12, stream: true })) {
      chunks++
      finish = c.choices[0]?.finish_reason ?? finish
    }
    expect(chunks).toBeGreaterThan(2)
    expect(finish).toBe('length')
  })
})

describe('a slow node (every chunk held 50 ms by the relay in front of w2)', () => {
  test('answers the same as the node does directly, and the relay held the main\'s traffic', async () => {
    const made = await onMain('POST', '/api/v1/instances/slowchat?wait=ready', { backend_type: 'llama_cpp', backend_options: small, nodes: ['w2'] })
    expect([made.status, made.body.node]).toEqual([201, 'w2'])
    const body = { model: 'slowchat', messages: [{ role: 'user' as const, content: 'Once upon a time' }], max_tokens: 16, temperature: 0 }
    const before = r2.events().length
    const via = await client().chat.completions.create(body)
    const direct = (await (await fetch(`${w2.base}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${NODE_KEY}`, 'content-type': 'application/json' }, body: JSON.stringify(body) })).json()) as OpenAI.ChatCompletion
    expect(via.choices[0]!.message.content).toBe(direct.choices[0]!.message.content)
    const held = r2.events().slice(before).filter((e) => e.kind === 'released')
    expect(held.some((e) => e.dir === 'up')).toBe(true)
    expect(held.some((e) => e.dir === 'down')).toBe(true)
    for (const e of held) expect(e.ms).toBeGreaterThanOrEqual(49)
  }, 60000)
})

describe('the wrong key', () => {
  test('a create on a node that refuses the key is a 502 naming the node and the setting; nothing is made on either side', async () => {
    const res = await onMain('POST', '/api/v1/instances/k', { backend_type: 'llama_cpp', backend_options: small, nodes: ['wrong'] })
    expect(res.status).toBe(502)
    expect(res.body.error).toContain('node "wrong"')
    expect(res.body.error).toContain('nodes.wrong.api_key')
    expect((await onNode(w1, 'GET', '/api/v1/instances/k')).status).toBe(404)
    expect((await onMain('GET', '/api/v1/instances/k')).status).toBe(404)
    const nodes = await until(() => onMain('GET', '/api/v1/nodes'), (r) => r.body.wrong?.reachable === false)
    expect(nodes.body.wrong.reachable).toBe(false)
    expect(JSON.stringify(nodes.body)).not.toContain(NODE_KEY)
  }, 30000)
})

describe('faults across the link', () => {
  test('w1\'s link cut mid-stream: the client\'s stream ends with an error, new requests are 503 naming w1, and after the restore it runs again', async () => {
    const stream = await client().chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'Count' }], max_tokens: 200, stream: true, ignore_eos: true } as OpenAI.ChatCompletionCreateParamsStreaming)
    let chunks = 0
    let finish: string | null = null
    let error: unknown = null
    const t0 = Date.now()
    try {
      for await (const c of stream) {
        if (chunks++ === 0) await net.cutLink(hostW1)
        finish = c.choices[0]?.finish_reason ?? finish
      }
    } catch (e) {
      error = e
    }
    const waited = Date.now() - t0
    try {
      // the main marks w1 down within its health check and ends the stream: bounded (a bound, not a speed)
      expect(waited).toBeLessThan(30000)
      expect(chunks).toBeGreaterThan(0)
      expect(finish).toBeNull()
      expect(error).not.toBeNull()
      const refused = await fetch(`${main.base}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${MGMT}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'chat', messages: [{ role: 'user', content: 'x' }], max_tokens: 2 }),
        signal: AbortSignal.timeout(20000),
      })
      expect(refused.status).toBe(503)
      expect(((await refused.json()) as { error: string }).error).toContain('node "w1"')
      expect((await onMain('GET', '/api/v1/instances/chat')).body.status).toBe('unknown')
      // a local operation and another node do not wait on w1
      expect((await onMain('GET', '/api/v1/instances/slowchat')).body.status).toBe('running')
    } finally {
      await net.restoreLink(hostW1)
    }
    const back = await until(() => onMain('GET', '/api/v1/instances/chat'), (r) => r.body.status === 'running', 30000)
    expect(back.body.status).toBe('running')
    const r = await client().chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'Hello' }], max_tokens: 4 })
    expect(r.choices[0]!.message.role).toBe('assistant')
  }, 90000)

  test('w2 SIGKILLed mid-stream: the client\'s stream ends with an error; w2 started again is read back', async () => {
    const stream = await client().chat.completions.create({ model: 'slowchat', messages: [{ role: 'user', content: 'Count' }], max_tokens: 200, stream: true, ignore_eos: true } as OpenAI.ChatCompletionCreateParamsStreaming)
    let chunks = 0
    let finish: string | null = null
    let error: unknown = null
    try {
      for await (const c of stream) {
        if (chunks++ === 0) w2.proc.proc.kill('SIGKILL')
        finish = c.choices[0]?.finish_reason ?? finish
      }
    } catch (e) {
      error = e
    }
    expect(chunks).toBeGreaterThan(0)
    expect(finish).toBeNull()
    expect(error).not.toBeNull()
    await w2.proc.proc.exited
    const down = await until(() => onMain('GET', '/api/v1/instances/slowchat'), (r) => r.body.status === 'unknown')
    expect(down.body.status).toBe('unknown')
    expect(down.body.error).toContain('w2')
    // the same node again, on its data folder and port (the relay in front of it points there)
    w2 = await start(hostW2, w2.dir, w2.config, {}, ['--port', new URL(w2.base).port])
    const mine = await until(() => onNode(w2, 'GET', '/api/v1/instances/slowchat'), (r) => r.status === 200 && r.body.status === 'running', 30000)
    expect(mine.body.status).toBe('running')
    // the main reads its real state back, not the unknown it had
    const back = await until(() => onMain('GET', '/api/v1/instances/slowchat'), (r) => r.body.status === 'running', 30000)
    expect([back.body.status, back.body.node, back.body.pid]).toEqual(['running', 'w2', mine.body.pid])
    const r = await client().chat.completions.create({ model: 'slowchat', messages: [{ role: 'user', content: 'Hello' }], max_tokens: 4 })
    expect(r.choices[0]!.message.role).toBe('assistant')
  }, 90000)
})

describe('teardown', () => {
  test('leaves no namespace and no process', async () => {
    const namespaces = [...net.namespaces]
    const pids = [...net.alive()]
    expect(pids.length).toBeGreaterThan(3)
    await net.teardown()
    expect(net.alive()).toEqual([])
    for (const p of pids) expect(processRunning(p)).toBe(false)
    for (const ns of namespaces) expect(ourNamespaces()).not.toContain(ns)
  }, 60000)
})
