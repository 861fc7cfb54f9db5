/**
 * The multi-host harness, proved: a llamactl with a real llama-server instance on host A, reached
 * from the test process (the root namespace) and from host B over the veths, with the official
 * openai client; a link cut mid-stream, restored; the delaying relay; a teardown that leaves
 * nothing. Then the loopback fallback and the stale sweep on their own.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import OpenAI from 'openai'
import { realLlama } from '../e2e/real'
import { BUN, makeNet, netnsUnavailable, ourNamespaces, overlaps, processRunning, run, sweepStale, type Host, type Net, type Spawned } from './netns'

const MAIN = resolve(import.meta.dir, '../../src/main.ts')
const MGMT = 'nodes-management-key-0123456789'
const INFER = 'nodes-inference-key-0123456789'
const { server, model } = realLlama()

let net: Net
let a: Host
let b: Host
let ll: Spawned
let base: string
const started: number[] = []

/** A llamactl on a host, listening on the host's address, from a config file in a fresh data folder. */
async function llamactlOn(host: Host): Promise<{ proc: Spawned; base: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'llamactl-nodes-'))
  const lo = 20000 + Math.floor(Math.random() * 20000)
  const config = join(dir, 'llamactl.yaml')
  writeFileSync(
    config,
    [
      'server:',
      `  host: ${host.address}`,
      '  port: 0',
      `data_dir: ${dir}`,
      'auth:',
      `  management_keys: [${MGMT}]`,
      `  inference_keys: [${INFER}]`,
      'backends:',
      '  llama-cpp:',
      `    command: ${server}`,
      'instances:',
      `  port_range: [${lo}, ${lo + 200}]`,
      '  stop_grace_period: 2',
      '',
    ].join('\n'),
    { mode: 0o600 },
  )
  const proc = net.spawn(host, [BUN, MAIN, '--config', config], { cwd: dir, env: { HOME: dir } })
  const m = await proc.waitFor(/listening on (http:\/\/[\d.]+:\d+)/, 20000)
  started.push(proc.proc.pid)
  return { proc, base: m[1]! }
}

const api = async (method: string, path: string, body?: unknown) => {
  const res = await fetch(base + path, {
    method,
    headers: { authorization: `Bearer ${MGMT}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(60000),
  })
  return { status: res.status, body: (await res.json()) as any }
}

const client = (url: string) => new OpenAI({ baseURL: `${url}/v1`, apiKey: INFER, maxRetries: 0, timeout: 20000 })

beforeAll(async () => {
  net = await makeNet(2)
  ;[a, b] = net.hosts as [Host, Host]
  const up = await llamactlOn(a)
  ll = up.proc
  base = up.base
  const made = await api('POST', '/api/v1/instances/chat?wait=ready', { backend_type: 'llama_cpp', backend_options: { model, ctx_size: 512, threads: 1, parallel: 2 } })
  if (made.status !== 201) throw new Error(`set-up failed: ${JSON.stringify(made.body)}\n${ll.output()}`)
}, 120000)

afterAll(async () => {
  await net?.teardown()
})

describe('two hosts on this machine', () => {
  test('each host is its own network namespace with its own address (or the loopback fallback, saying why)', () => {
    if (netnsUnavailable() === null) {
      expect(net.mode).toBe('netns')
      expect(net.why).toBe('')
      expect(ourNamespaces()).toEqual(expect.arrayContaining(net.namespaces))
      for (const h of net.hosts) expect(run(['ip', '-n', h.ns!, '-o', '-4', 'addr', 'show', 'eth0']).out).toContain(`${h.address}/24`)
      expect(a.address).toMatch(/^10\.213\.\d+\.10$/)
      expect(net.client).toMatch(/^10\.213\.\d+\.1$/)
      // tc netem is what the relay stands in for: recorded, whatever this kernel says
      expect(typeof net.netem.available).toBe('boolean')
      console.error(`netns: tc netem here: ${net.netem.said}`)
    } else {
      expect(net.mode).toBe('loopback')
      expect(net.why).toBe(netnsUnavailable()!)
    }
    expect(base.startsWith(`http://${a.address}:`)).toBe(true)
  })

  test('the test process reaches host A over its address', async () => {
    const list = await api('GET', '/api/v1/instances')
    expect(list.status).toBe(200)
    expect(list.body.map((i: { name: string; status: string }) => [i.name, i.status])).toEqual([['chat', 'running']])
  })

  test('host B reaches host A over the veths, and not on its own loopback', async () => {
    const port = new URL(base).port
    const script = `
      const get = (u) => fetch(u, { headers: { authorization: 'Bearer ${MGMT}' }, signal: AbortSignal.timeout(10000) })
        .then(async (r) => r.status + ' ' + (await r.text()).length, (e) => 'error ' + e.code)
      console.log('remote ' + await get('${base}/api/v1/instances'))
      console.log('local ' + await get('http://127.0.0.1:${port}/api/v1/instances'))`
    const p = net.spawn(b, [BUN, '-e', script])
    expect(await p.proc.exited).toBe(0)
    const out = p.output()
    expect(out).toMatch(/^remote 200 \d+$/m)
    if (net.mode === 'netns') expect(out).toMatch(/^local error (ECONNREFUSED|ConnectionRefused)$/m)
  })

  test('the openai client: a plain chat completion from another host', async () => {
    const r = await client(base).chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'Hello' }], max_tokens: 8 })
    expect(r.object).toBe('chat.completion')
    expect(r.model).toBe('chat')
    expect(r.choices[0]!.message.content!.length).toBeGreaterThan(0)
    expect(r.usage!.completion_tokens).toBeGreaterThan(0)
  })

  test('the openai client: a streamed chat completion from another host', async () => {
    const stream = await client(base).chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'Count' }], max_tokens: 12, stream: true })
    let chunks = 0
    let finish: string | null = null
    for await (const c of stream) {
      chunks++
      finish = c.choices[0]?.finish_reason ?? finish
    }
    expect(chunks).toBeGreaterThan(2)
    expect(finish).toBe('length')
  })
})

describe('faults on the link', () => {
  test('the link cut mid-stream: at the clients\' stall limits a plain fetch\'s read fails and the openai stream ends unfinished; restored, the host answers again', async () => {
    // llama-server writes this tiny model's 200 tokens in a few ms, faster than a link can be cut:
    // a relay on host A itself trickles the answer (64-byte pieces, one every 20 ms) so that it is
    // still crossing the link when the link goes down.
    const slow = await net.relay({ on: a, target: new URL(base).host, delayMs: 20, maxChunk: 64 })
    started.push(slow.proc.proc.pid)
    const stall = new AbortController()
    let watchdog: Timer | undefined
    const arm = () => {
      clearTimeout(watchdog)
      watchdog = setTimeout(() => stall.abort(), 3000)
    }
    let chunks = 0
    let finish: string | null = null
    let error: unknown = null
    let waited = 0
    // and a plain fetch reading a stream of its own across the same link, with its own stall limit
    const rawStall = new AbortController()
    const raw = await fetch(`${slow.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${INFER}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'chat', messages: [{ role: 'user', content: 'Count' }], max_tokens: 200, stream: true, ignore_eos: true }),
      signal: rawStall.signal,
    })
    expect(raw.status).toBe(200)
    const rawReader = raw.body!.getReader()
    expect((await rawReader.read()).done).toBe(false)
    try {
      const stream = await client(slow.url).chat.completions.create(
        { model: 'chat', messages: [{ role: 'user', content: 'Count' }], max_tokens: 200, stream: true, ignore_eos: true } as OpenAI.ChatCompletionCreateParamsStreaming,
        { signal: stall.signal },
      )
      const t0 = Date.now()
      arm()
      try {
        for await (const c of stream) {
          arm()
          if (chunks++ === 0) await net.cutLink(a)
          finish = c.choices[0]?.finish_reason ?? finish
        }
      } catch (e) {
        error = e
      } finally {
        clearTimeout(watchdog)
        waited = Date.now() - t0
      }
      // a stream its caller aborts ends without throwing in the openai client: what the caller
      // sees is its own stall limit firing and a stream with no finish_reason
      expect(error).toBeNull()
      expect(stall.signal.aborted).toBe(true)
      expect(chunks).toBeGreaterThan(0)
      expect(finish).toBeNull()
      // bounded by the stall limit, not by TCP's minutes of retransmissions (a bound, not a speed)
      expect(waited).toBeLessThan(60000)
      // the plain fetch's read fails once its stall limit fires: an error, not a hang
      let rawWatch: Timer | undefined
      const rawArm = () => {
        clearTimeout(rawWatch)
        rawWatch = setTimeout(() => rawStall.abort(), 3000)
      }
      let rawError: unknown = null
      let rawDone = false
      rawArm()
      try {
        for (let i = 0; i < 10000 && !rawDone; i++) {
          rawDone = (await rawReader.read()).done
          rawArm()
        }
      } catch (e) {
        rawError = e
      } finally {
        clearTimeout(rawWatch)
      }
      expect(rawDone).toBe(false)
      expect((rawError as Error | null)?.name).toBe('AbortError')

      // the trickle was cut: the relay had pieces it could not get across
      const down = slow.events().filter((e) => e.dir === 'down' && e.kind === 'held')
      expect(down.length).toBeGreaterThan(chunks)

      // while cut, a new request does not get through either
      const cut = await fetch(`${base}/health`, { signal: AbortSignal.timeout(1500) }).then((r) => `status ${r.status}`, (e: Error) => e.name)
      expect(cut).toBe('TimeoutError')
    } finally {
      await net.restoreLink(a)
    }
    // the first connection after the restore may wait out an ARP retry: a few bounded tries
    let answer: OpenAI.ChatCompletion | null = null
    for (let i = 0; i < 5 && !answer; i++) {
      answer = await client(base)
        .chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'Hello' }], max_tokens: 4 }, { timeout: 5000 })
        .catch(() => null)
    }
    expect(answer?.choices[0]!.message.role).toBe('assistant')
    await slow.proc.stop()
  }, 90000)

  test('the delaying relay holds every chunk, in order, and passes the answer on unchanged', async () => {
    const relay = await net.relay({ on: b, target: new URL(base).host, delayMs: 150 })
    started.push(relay.proc.proc.pid)
    const body = { model: 'chat', messages: [{ role: 'user' as const, content: 'Once upon a time' }], max_tokens: 16, temperature: 0 }
    const direct = await client(base).chat.completions.create(body)
    const relayed = await client(relay.url).chat.completions.create(body)
    expect(relayed.choices[0]!.message.content).toBe(direct.choices[0]!.message.content)

    const streamed: string[] = []
    for await (const c of await client(relay.url).chat.completions.create({ ...body, stream: true })) streamed.push(c.choices[0]?.delta?.content ?? '')
    expect(streamed.join('')).toBe(direct.choices[0]!.message.content!)

    // the relay logs a release just after the write: the client may be done before the line is read
    let events = relay.events()
    for (let i = 0; i < 100 && events.filter((e) => e.kind === 'held').length !== events.filter((e) => e.kind === 'released').length; i++) {
      await Bun.sleep(20)
      events = relay.events()
    }
    const held = events.filter((e) => e.kind === 'held')
    const released = events.filter((e) => e.kind === 'released')
    // both connections' requests went up and their answers came down through the relay
    for (const dir of ['up', 'down'] as const) expect(new Set(held.filter((e) => e.dir === dir).map((e) => e.conn)).size).toBeGreaterThanOrEqual(1)
    // every piece held was released, once, after being held the relay's delay, in the order it arrived
    expect(released.map((e) => [e.conn, e.dir, e.seq, e.bytes]).sort()).toEqual(held.map((e) => [e.conn, e.dir, e.seq, e.bytes]).sort())
    for (const e of released) expect(e.ms).toBeGreaterThanOrEqual(149)
    for (const conn of new Set(released.map((e) => e.conn))) {
      for (const dir of ['up', 'down'] as const) {
        const seqs = released.filter((e) => e.conn === conn && e.dir === dir).map((e) => e.seq)
        expect(seqs).toEqual(seqs.map((_, i) => i))
      }
    }
    // the stream came down as several pieces, each held on its own
    expect(held.filter((e) => e.dir === 'down').length).toBeGreaterThan(1)
    await relay.proc.stop()
  }, 60000)
})

describe('teardown', () => {
  test('leaves no namespace, no link and no process', async () => {
    const namespaces = [...net.namespaces]
    const links = [...net.links]
    // what runs now: the llamactl, and (in namespaces) its llama-server
    const pids = [...started, ...net.alive()]
    expect(processRunning(ll.proc.pid)).toBe(true)
    if (net.mode === 'netns') {
      const commands = net.alive().map((p) => readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0')[0])
      expect(commands).toContain(server)
    }
    await net.teardown()
    expect(net.alive()).toEqual([])
    for (const pid of pids) expect(processRunning(pid)).toBe(false)
    const left = ourNamespaces()
    for (const ns of namespaces) expect(left).not.toContain(ns)
    const allLinks = run(['ip', '-o', 'link', 'show']).out
    for (const l of links) expect(allLinks).not.toContain(`${l}:`)
    // and a second teardown (afterAll's) is harmless
    await net.teardown()
  }, 60000)
})

describe('the loopback fallback', () => {
  test('hosts on 127.0.0.2 and 127.0.0.3, a link cut emulated by stopping the host, teardown ends the processes', async () => {
    const lo = await makeNet(2, { mode: 'loopback', log: () => {} })
    try {
      expect(lo.mode).toBe('loopback')
      expect(lo.why).toContain('loopback')
      // and what it says when the namespaces cannot be made
      expect(netnsUnavailable('/nonexistent/ip')).toContain('install iproute2')
      expect(lo.hosts.map((h) => h.address)).toEqual(['127.0.0.2', '127.0.0.3'])
      const [x] = lo.hosts as [Host]
      const echo = lo.spawn(x, [BUN, '-e', `const s = Bun.serve({ hostname: '${x.address}', port: 0, fetch: () => new Response('up') }); console.log('port ' + s.port)`])
      const port = (await echo.waitFor(/^port (\d+)$/m))[1]
      const get = () => fetch(`http://${x.address}:${port}/`, { signal: AbortSignal.timeout(1500) }).then((r) => r.text(), (e: Error) => e.name)
      expect(await get()).toBe('up')
      await lo.cutLink(x)
      expect(await get()).toBe('TimeoutError')
      await lo.restoreLink(x)
      expect(await get()).toBe('up')
      const pid = echo.proc.pid
      await lo.teardown()
      expect(processRunning(pid)).toBe(false)
      expect(lo.alive()).toEqual([])
    } finally {
      await lo.teardown()
    }
  }, 30000)
})

describe('the subnet it picks', () => {
  test('overlaps nothing of this machine: a covering route, an address inside, the same /24 are overlaps; neighbours are not', () => {
    expect(overlaps('10.0.0.0/8', '10.213.5.0/24')).toBe(true)
    expect(overlaps('10.192.0.0/10', '10.213.5.0/24')).toBe(true)
    expect(overlaps('10.213.5.7/32', '10.213.5.0/24')).toBe(true)
    expect(overlaps('10.213.5.0/24', '10.213.5.0/24')).toBe(true)
    expect(overlaps('10.213.6.0/24', '10.213.5.0/24')).toBe(false)
    expect(overlaps('10.212.0.0/16', '10.213.5.0/24')).toBe(false)
    expect(overlaps('192.0.2.2/24', '10.213.5.0/24')).toBe(false)
  })
})

describe('the stale sweep', () => {
  test('removes namespaces and links of a run whose process has ended, and not those of a live run', async () => {
    if (netnsUnavailable() !== null) {
      expect(sweepStale()).toEqual([])
      return
    }
    // a pid that has ended: a process of ours, waited for
    const gone = Bun.spawn(['true'])
    await gone.exited
    const dead = `lcns-${gone.pid.toString(36)}-zz-h0`
    const live = `lcns-${process.pid.toString(36)}-zy-h0`
    const deadLink = `lcb-${gone.pid.toString(36)}-zz`
    try {
      for (const ns of [dead, live]) expect(run(['ip', 'netns', 'add', ns]).code).toBe(0)
      expect(run(['ip', 'link', 'add', deadLink, 'type', 'bridge']).code).toBe(0)
      const removed = sweepStale()
      expect(removed).toContain(dead)
      expect(removed).toContain(deadLink)
      expect(removed).not.toContain(live)
      expect(ourNamespaces()).toContain(live)
      expect(ourNamespaces()).not.toContain(dead)
    } finally {
      for (const ns of [dead, live]) run(['ip', 'netns', 'del', ns])
      run(['ip', 'link', 'del', deadLink])
    }
  })
})

describe('without root', () => {
  test('makeNet says why and falls back to loopback addresses; a server there is reached and ended', async () => {
    const runuser = Bun.which('runuser')
    if (!runuser) throw new Error('runuser (util-linux) is missing: it runs this check as the user nobody')
    if (netnsUnavailable() !== null) throw new Error(`this check starts as root, to drop it: ${netnsUnavailable()}`)
    const dir = mkdtempSync(join(tmpdir(), 'llamactl-nodes-nonroot-'))
    chmodSync(dir, 0o755)
    // nobody may not reach this checkout (CI's clone is in a folder only root can enter): the
    // harness, its relay and bun itself are copied where nobody can read and run them.
    for (const f of ['netns.ts', 'relay.ts']) copyFileSync(resolve(import.meta.dir, f), join(dir, f))
    const bun = join(dir, 'bun')
    copyFileSync(BUN, bun)
    chmodSync(bun, 0o755)
    for (const f of ['netns.ts', 'relay.ts']) chmodSync(join(dir, f), 0o644)
    const script = join(dir, 'fallback.ts')
    writeFileSync(
      script,
      `import { makeNet } from ${JSON.stringify(join(dir, 'netns.ts'))}
const net = await makeNet(2, { log: (l) => console.log('log ' + l) })
const [x] = net.hosts
const srv = net.spawn(x, [process.execPath, '-e', "const s = Bun.serve({ hostname: '" + x.address + "', port: 0, fetch: () => new Response('up') }); console.log('port ' + s.port)"])
const port = (await srv.waitFor(/^port (\\d+)$/m))[1]
console.log('mode ' + net.mode + ' ' + net.hosts.map((h) => h.address).join(','))
console.log('got ' + (await (await fetch('http://' + x.address + ':' + port + '/')).text()))
await net.teardown()
console.log('alive ' + net.alive().length)
`,
      { mode: 0o644 },
    )
    const p = Bun.spawn([runuser, '-u', 'nobody', '--', bun, script], { cwd: dir, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir }, stdout: 'pipe', stderr: 'pipe' })
    const killer = setTimeout(() => p.kill('SIGKILL'), 30000)
    const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited])
    clearTimeout(killer)
    rmSync(dir, { recursive: true, force: true })
    expect({ code, err: code === 0 ? '' : err }).toEqual({ code: 0, err: '' })
    expect(out).toMatch(/^log network namespaces unavailable \(not running as root.*\); falling back to loopback addresses 127\.0\.0\.2, 127\.0\.0\.3/m)
    expect(out).toContain('mode loopback 127.0.0.2,127.0.0.3')
    expect(out).toContain('got up')
    expect(out).toContain('alive 0')
  }, 60000)
})
