import { afterEach, beforeEach, describe, expect, test } from 'bun:test'
import { mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { processStartTime } from '../../src/supervisor/os-process'
import { type Harness, harness, tempDir } from '../helpers'

let h: Harness
/** The pid llamactl recorded for an instance's backend. */
const backendPid = (name: string) => h.store.backendProcesses().find((r) => r.instance === name)!.pid
beforeEach(async () => {
  h = await harness()
})
afterEach(async () => {
  await h.close()
})

describe('instance lifecycle', () => {
  test('create starts the instance and answers 201 with running status', async () => {
    const res = await h.json('POST', '/api/v1/instances/m1?wait=ready', { backend_options: { model: 'load-50' } })
    expect(res.status).toBe(201)
    expect(res.body.name).toBe('m1')
    expect(res.body.status).toBe('running')
    expect(typeof res.body.created).toBe('number')
    expect(res.body.options.backend_type).toBe('llama_cpp')
    expect(res.body.port).toBeGreaterThan(0)
    const health = await fetch(`http://127.0.0.1:${res.body.port}/health`)
    expect(health.status).toBe(200)
    // What the page shows of it is in the JSON too: its process, uptime, last request and requests now.
    expect(res.body.pid).toBe(backendPid('m1'))
    expect(res.body.uptime).toBeGreaterThanOrEqual(0)
    expect(res.body.last_request).toBeNull()
    expect(res.body.requests).toEqual({ in_flight: 0, queued: 0, max_concurrent: expect.any(Number) })
    const chat = await h.request('POST', '/v1/chat/completions', { model: 'm1', messages: [{ role: 'user', content: 'hi' }] })
    await chat.text()
    const after = await h.json('GET', '/api/v1/instances/m1')
    expect(after.body.last_request).toBeGreaterThanOrEqual(res.body.created)
    expect(after.body.requests.max_concurrent).toBe(4) // the fake's slots, as llama-server reports them
    await h.json('POST', '/api/v1/instances/m1/stop')
    const stopped = await h.json('GET', '/api/v1/instances/m1')
    expect([stopped.body.pid, stopped.body.uptime]).toEqual([null, null])
  })

  test('list, get, stop, start, restart, delete', async () => {
    await h.json('POST', '/api/v1/instances/a?wait=ready', { backend_options: { model: 'x' } })
    const list = await h.json('GET', '/api/v1/instances')
    expect(list.status).toBe(200)
    expect(list.body.map((i: any) => [i.name, i.status])).toEqual([['a', 'running']])

    const stopped = await h.json('POST', '/api/v1/instances/a/stop')
    expect(stopped.status).toBe(200)
    expect(stopped.body.status).toBe('stopped')
    expect(stopped.body.port).toBeNull()

    const started = await h.json('POST', '/api/v1/instances/a/start?wait=ready')
    expect(started.body.status).toBe('running')
    const port1 = started.body.port
    const pid1 = backendPid('a')
    expect(processStartTime(pid1)).not.toBeNull()

    const restarted = await h.json('POST', '/api/v1/instances/a/restart?wait=ready')
    expect(restarted.status).toBe(200)
    expect(restarted.body.status).toBe('running')
    expect(restarted.body.port).toBeGreaterThan(0)
    expect((await fetch(`http://127.0.0.1:${restarted.body.port}/health`)).status).toBe(200)
    // a new process replaced the old one, which is gone (and no longer answers on its port)
    const pid2 = backendPid('a')
    expect(pid2).not.toBe(pid1)
    expect(processStartTime(pid1)).toBeNull()
    if (restarted.body.port !== port1) await expect(fetch(`http://127.0.0.1:${port1}/health`)).rejects.toThrow()

    const del = await h.request('DELETE', '/api/v1/instances/a')
    expect(del.status).toBe(204)
    expect(await del.text()).toBe('')
    expect((await h.json('GET', '/api/v1/instances/a')).status).toBe(404)
    expect((await h.json('GET', '/api/v1/instances')).body).toEqual([])
  })

  test('an instance keeps its port across stop, start and restart while the port is free; another instance never takes it meanwhile', async () => {
    const made = await h.json('POST', '/api/v1/instances/keep?wait=ready', { backend_options: { model: 'x' } })
    const port = made.body.port as number
    expect((await h.json('POST', '/api/v1/instances/keep/restart?wait=ready')).body.port).toBe(port)
    await h.json('POST', '/api/v1/instances/keep/stop')
    // Started while the first is stopped, the second gets another port (the scan goes round, it does not reuse a freed one).
    const other = await h.json('POST', '/api/v1/instances/other?wait=ready', { backend_options: { model: 'x' } })
    expect(other.body.port).not.toBe(port)
    expect((await h.json('POST', '/api/v1/instances/keep/start?wait=ready')).body.port).toBe(port)
    // Taken by someone else while it was stopped: it starts on another.
    await h.json('POST', '/api/v1/instances/keep/stop')
    const squatter = Bun.listen({ hostname: '127.0.0.1', port, socket: { data() {} } })
    try {
      const moved = await h.json('POST', '/api/v1/instances/keep/start?wait=ready')
      expect(moved.body.status).toBe('running')
      expect(moved.body.port).not.toBe(port)
    } finally {
      squatter.stop(true)
    }
  })

  test('PUT replaces options and restarts a running instance', async () => {
    const c = await h.json('POST', '/api/v1/instances/u?wait=ready', { backend_options: { model: 'x' }, idle_timeout: 5 })
    expect(c.status).toBe(201)
    const pidBefore = backendPid('u')
    const res = await h.json('PUT', '/api/v1/instances/u?wait=ready', { backend_options: { model: 'y', ctx_size: 512 } })
    expect(res.status).toBe(200)
    expect(res.body.status).toBe('running')
    expect(res.body.options.backend_options).toEqual({ model: 'y', ctx_size: 512 })
    expect(res.body.options.idle_timeout).toBe(0) // replaced, not merged
    // restarted: another process, running the new options
    expect(backendPid('u')).not.toBe(pidBefore)
    expect(processStartTime(pidBefore)).toBeNull()
    const logs = await (await h.request('GET', '/api/v1/instances/u/logs')).text()
    expect(logs).toContain('--ctx-size 512')
    expect(logs).toContain('fake-llama-server: model y')
  })

  test('PUT on a failed instance clears the failure and starts it with the new options', async () => {
    expect((await h.json('POST', '/api/v1/instances/fix?wait=ready', { backend_options: { model: 'crash-on-load' } })).status).toBe(500)
    expect((await h.json('GET', '/api/v1/instances/fix')).body.status).toBe('failed')
    const fixed = await h.json('PUT', '/api/v1/instances/fix?wait=ready', { backend_options: { model: 'x' } })
    expect(fixed.status).toBe(200)
    expect(fixed.body.status).toBe('running')
    expect(fixed.body.error).toBeNull()
    expect(fixed.body.options.backend_options.model).toBe('x')
  })

  test('PUT on a stopped instance keeps it stopped', async () => {
    await h.json('POST', '/api/v1/instances/s?wait=ready', { backend_options: { model: 'x' } })
    await h.json('POST', '/api/v1/instances/s/stop')
    const res = await h.json('PUT', '/api/v1/instances/s?wait=ready', { backend_options: { model: 'z' } })
    expect(res.status).toBe(200)
    expect(res.body.status).toBe('stopped')
    expect(res.body.options.backend_options).toEqual({ model: 'z' })
    expect(h.store.backendProcesses().filter((r) => r.instance === 's')).toEqual([])
  })

  test('logs returns the tail, honours lines, and rejects a bad lines value', async () => {
    await h.json('POST', '/api/v1/instances/l?wait=ready', { backend_options: { model: 'x' } })
    const all = await (await h.request('GET', '/api/v1/instances/l/logs')).text()
    expect(all).toContain('fake-llama-server: model x')
    const one = await h.request('GET', '/api/v1/instances/l/logs?lines=1')
    expect(one.headers.get('content-type')).toContain('text/plain')
    expect((await one.text()).trim().split('\n')).toHaveLength(1)
    const minus = await (await h.request('GET', '/api/v1/instances/l/logs?lines=-1')).text()
    expect(minus).toBe(all)
    const bad = await h.json('GET', '/api/v1/instances/l/logs?lines=abc')
    expect(bad.status).toBe(400)
    expect(bad.body.error).toContain('lines')
  })

  test('typed options, zero values, negations and extra_args reach the backend\'s command line', async () => {
    const res = await h.json('POST', '/api/v1/instances/argv?wait=ready', {
      backend_options: { model: 'x', gpu_layers: 0, kv_offload: false, extra_args: ['--brand-new', '1'] },
    })
    expect(res.status).toBe(201)
    const logs = await (await h.request('GET', '/api/v1/instances/argv/logs')).text()
    expect(logs).toContain(`--no-kv-offload --gpu-layers 0 --model x --brand-new 1 --host 127.0.0.1 --port ${res.body.port}`)
  })

  test('environment reaches the backend', async () => {
    await h.json('POST', '/api/v1/instances/e?wait=ready', {
      backend_options: { model: 'x' },
      environment: { FAKE_PRINT_ENV: 'MY_VAR', MY_VAR: 'hello world' },
    })
    const logs = await (await h.request('GET', '/api/v1/instances/e/logs')).text()
    expect(logs).toContain('env MY_VAR=hello world')
  })

  test('GET /api/v1/version is plain text in the seed format', async () => {
    const res = await h.request('GET', '/api/v1/version')
    expect(res.status).toBe(200)
    expect(await res.text()).toMatch(/^Version: .+\nCommit: .+\nBuild Time: .+\n$/)
  })
})

describe('errors', () => {
  test('unknown instance is 404 with the error shape, on every operation', async () => {
    for (const [m, p] of [
      ['GET', '/api/v1/instances/nope'],
      ['PUT', '/api/v1/instances/nope?wait=ready'],
      ['DELETE', '/api/v1/instances/nope'],
      ['POST', '/api/v1/instances/nope/start?wait=ready'],
      ['POST', '/api/v1/instances/nope/stop'],
      ['POST', '/api/v1/instances/nope/restart?wait=ready'],
      ['GET', '/api/v1/instances/nope/logs'],
    ] as const) {
      const res = await h.json(m, p, m === 'PUT' ? {} : undefined)
      expect([m, p, res.status]).toEqual([m, p, 404])
      expect(res.body.error).toContain('nope')
    }
  })

  test('unknown route is 404 JSON', async () => {
    const res = await h.json('GET', '/api/v1/nothing-here')
    expect(res.status).toBe(404)
    expect(res.body.error).toBe('no route for GET /api/v1/nothing-here')
  })

  test('bad names are refused with 400 and nothing is stored', async () => {
    for (const name of ['-a', '.hidden', 'a..b', 'a%2Fb', 'x'.repeat(65), 'sp%20ace', 'semi%3Bcolon']) {
      const res = await h.json('POST', `/api/v1/instances/${name}?wait=ready`, { backend_options: { model: 'x' } })
      expect([name, res.status]).toEqual([name, 400])
      // an encoded '/' is refused before routing, like every encoded separator
      expect(res.body.error).toContain(name === 'a%2Fb' ? "percent-encoded '/'" : 'invalid instance name')
    }
    expect(h.store.countInstances()).toBe(0)
    expect(h.manager.list()).toHaveLength(0)
  })

  test('bad bodies are 400 with a message naming the field, and change nothing', async () => {
    const cases: [unknown, string][] = [
      ['{not json', 'not valid JSON'],
      [[1, 2], 'JSON object'],
      [{ backend_type: 'ollama' }, 'backend_type'],
      [{ max_restarts: 'three' }, 'max_restarts'],
      [{ restart_delay: -1 }, 'restart_delay'],
      [{ idle_timeout: -1 }, 'idle_timeout'],
      [{ environment: { 'BAD-NAME': 'x' } }, 'environment'],
      [{ environment: { OK: 1 } }, 'environment'],
      [{ surprise: true }, 'unknown field "surprise"'],
      [{ backend_options: { ctx_size: 'big' } }, 'backend_options.ctx_size'],
      [{ backend_options: { model: 42 } }, 'backend_options.model'],
      [{ backend_options: { 'Bad-Key': 1 } }, 'snake_case'],
      [{ backend_options: { ctx_size: { nested: 1 } } }, 'backend_options.ctx_size: llama-server expects a whole number'],
      [{ backend_options: { thing: 1 } }, 'backend_options.thing: llama-server has no option thing'],
      [{ backend_options: { thing: 1 } }, '"extra_args"'],
      [{ backend_options: { n_gpu_layers: 1, gpu_layers: 2 } }, 'n_gpu_layers and gpu_layers are the same option'],
    ]
    for (const [body, fragment] of cases) {
      const res = await h.json('POST', '/api/v1/instances/ok?wait=ready', body)
      expect([JSON.stringify(body), res.status]).toEqual([JSON.stringify(body), 400])
      expect(res.body.error).toContain(fragment)
    }
    expect(h.store.countInstances()).toBe(0)
  })

  test('another spelling of a flag is a name for it, stored and answered as the client wrote it', async () => {
    const given = { model: 'x', embeddings: true, n_gpu_layers: 0, reranking: false }
    const res = await h.json('POST', '/api/v1/instances/alias?wait=ready', { backend_options: given })
    expect(res.status).toBe(201)
    expect(res.body.options.backend_options).toEqual(given)
    expect(JSON.parse(h.store.getInstance('alias')!.options).backend_options).toEqual(given)
    const argv = h.manager.get('alias').log.tail().join('\n')
    expect(argv).toContain('--gpu-layers 0')
    expect(argv).toContain('--embedding ')
    expect(argv).not.toContain('--rerank')
  })

  test('a port outside 1-65535 is 400 on create and on update, and creates or changes nothing', async () => {
    const cases: [unknown, string][] = [
      [{ backend_options: { model: 'x', port: 99999 } }, 'backend_options.port'],
      [{ backend_options: { model: 'x', port: 65536 } }, 'backend_options.port'],
      [{ backend_options: { model: 'x', port: -1 } }, 'backend_options.port'],
      [{ llama_server_options: { model: 'x', port: 99999 } }, 'backend_options.port'],
      [{ backend_type: 'mlx_lm', backend_options: { model: 'x', port: 70000 } }, 'backend_options.port'],
      [{ backend_type: 'vllm', backend_options: { model: 'x', port: 99999 } }, 'backend_options.port'],
      [{ backend_type: 'vllm', backend_options: { model: 'x', data_parallel_rpc_port: 99999 } }, 'backend_options.data_parallel_rpc_port'],
    ]
    for (const [body, fragment] of cases) {
      const res = await h.json('POST', '/api/v1/instances/p?wait=ready', body)
      expect([JSON.stringify(body), res.status]).toEqual([JSON.stringify(body), 400])
      expect(res.body.error).toContain(fragment)
      expect(res.body.error).toContain('1 to 65535')
    }
    expect(h.store.countInstances()).toBe(0)
    expect(h.manager.list()).toHaveLength(0)
    // 0, as in the original llamactl, lets llamactl pick a port from instances.port_range
    const zero = await h.json('POST', '/api/v1/instances/z?wait=ready', { backend_options: { model: 'x', port: 0 } })
    expect(zero.status).toBe(201)
    expect(zero.body.port).toBeGreaterThanOrEqual(h.config.instances.port_range[0])
    expect(zero.body.port).toBeLessThanOrEqual(h.config.instances.port_range[1])
    await h.json('DELETE', '/api/v1/instances/z')

    await h.json('POST', '/api/v1/instances/q?wait=ready', { backend_options: { model: 'x' } })
    const put = await h.json('PUT', '/api/v1/instances/q?wait=ready', { backend_options: { model: 'x', port: 99999 } })
    expect(put.status).toBe(400)
    expect(put.body.error).toContain('backend_options.port')
    const after = await h.json('GET', '/api/v1/instances/q')
    expect(after.body.status).toBe('running')
    expect(after.body.options.backend_options).toEqual({ model: 'x' })
    expect(JSON.parse(h.store.getInstance('q')!.options).backend_options).toEqual({ model: 'x' })
  })

  test('a rejected PUT changes nothing', async () => {
    await h.json('POST', '/api/v1/instances/k?wait=ready', { backend_options: { model: 'x' }, idle_timeout: 7 })
    const res = await h.json('PUT', '/api/v1/instances/k?wait=ready', { idle_timeout: 'soon' })
    expect(res.status).toBe(400)
    const after = await h.json('GET', '/api/v1/instances/k')
    expect(after.body.options.idle_timeout).toBe(7)
    expect(after.body.status).toBe('running')
    expect(JSON.parse(h.store.getInstance('k')!.options).idle_timeout).toBe(7)
  })

  test('a name that exists is 409', async () => {
    await h.json('POST', '/api/v1/instances/dup?wait=ready', { backend_options: { model: 'x' } })
    const res = await h.json('POST', '/api/v1/instances/dup?wait=ready', { backend_options: { model: 'y' } })
    expect(res.status).toBe(409)
    expect(res.body.error).toContain('already exists')
    expect(h.manager.get('dup').options.backend_options.model).toBe('x')
  })

  test('a body over the limit is 413, with or without Content-Length', async () => {
    const big = JSON.stringify({ backend_options: { model: 'x'.repeat(2 * 1024 * 1024) } })
    const res = await h.request('POST', '/api/v1/instances/big?wait=ready', big)
    expect(res.status).toBe(413)
    expect((await res.json()).error).toContain('larger than')
    const chunked = await h.app.handle(
      new Request('http://localhost/api/v1/instances/big2', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: new ReadableStream({
          start(c) {
            for (let i = 0; i < 40; i++) c.enqueue(new TextEncoder().encode('x'.repeat(64 * 1024)))
            c.close()
          },
        }),
      }),
    )
    expect(chunked.status).toBe(413)
    expect(h.store.countInstances()).toBe(0)
  })

  test('a start that fails is 500 with the backend\'s last log lines, and status failed', async () => {
    const res = await h.json('POST', '/api/v1/instances/broken?wait=ready', { backend_options: { model: 'crash-on-load' } })
    expect(res.status).toBe(500)
    expect(res.body.error).toContain('exited while loading (exit code 1)')
    expect(res.body.error).toContain('fake corruption in tensor 7')
    const got = await h.json('GET', '/api/v1/instances/broken')
    expect(got.body.status).toBe('failed')
    expect(got.body.error).toContain('exited while loading')
  })

  test('a failed start\'s error names the line that says why, even when many lines came after it', async () => {
    const res = await h.json('POST', '/api/v1/instances/nomodel?wait=ready', { backend_options: { model: 'missing-model' } })
    expect(res.status).toBe(500)
    expect(res.body.error).toContain("exited while loading (exit code 1): gguf_init_from_file: failed to open GGUF file '/models/missing.gguf' (No such file or directory)")
    const got = await h.json('GET', '/api/v1/instances/nomodel')
    expect(got.body.error).toContain('failed to open GGUF file')
    // A second start (the update of a failed instance starts it) finds its own cause, not the first start's.
    const again = await h.json('PUT', '/api/v1/instances/nomodel?wait=ready', { backend_options: { model: 'crash-on-load' } })
    expect(again.status).toBe(500)
    expect(again.body.error).toContain('exited while loading (exit code 1): error: failed to load model: fake corruption in tensor 7')
  })

  test('a llama.cpp model file that is not there (or is a folder) is a 400 naming it, and nothing is made; a name that is not a .gguf path is the backend\'s to find', async () => {
    const dir = tempDir()
    mkdirSync(join(dir, 'folder.gguf'))
    for (const model of ['/nonexistent/model.gguf', 'relative/missing.gguf', join(dir, 'folder.gguf')]) {
      const res = await h.json('POST', '/api/v1/instances/nofile', { backend_options: { model } })
      expect(res.status).toBe(400)
      expect(res.body.error).toContain(`backend_options.model: ${JSON.stringify(model)} is not a file llamactl can see`)
      expect((await h.json('GET', '/api/v1/instances/nofile')).status).toBe(404)
    }
    // An update is checked the same way, and changes nothing.
    expect((await h.json('POST', '/api/v1/instances/has?wait=ready', { backend_options: { model: 'x' } })).status).toBe(201)
    expect((await h.json('PUT', '/api/v1/instances/has', { backend_options: { model: '/nonexistent/model.gguf' } })).status).toBe(400)
    expect((await h.json('GET', '/api/v1/instances/has')).body.options.backend_options.model).toBe('x')
  })

  test('a missing executable is 500 naming it', async () => {
    const h2 = await harness({ LLAMACTL_LLAMACPP_COMMAND: '/nonexistent/llama-server', LLAMACTL_LLAMACPP_ARGS: '' })
    try {
      const res = await h2.json('POST', '/api/v1/instances/m?wait=ready', { backend_options: { model: 'x' } })
      expect(res.status).toBe(500)
      expect(res.body.error).toContain('/nonexistent/llama-server')
      expect((await h2.json('GET', '/api/v1/instances/m')).body.status).toBe('failed')
    } finally {
      await h2.close()
    }
  })
})

test('secrets in the backend command line are masked in the log', async () => {
  const h2 = await harness()
  try {
    await h2.json('POST', '/api/v1/instances/sec?wait=ready', { backend_options: { model: 'x', api_key: 'sk-very-secret-123' } })
    const logs = await (await h2.request('GET', '/api/v1/instances/sec/logs')).text()
    expect(logs).toContain('--api-key ***')
    expect(logs).not.toContain('sk-very-secret-123')
  } finally {
    await h2.close()
  }
})

test('every value of every secret flag is masked in the log, the logs endpoint and start errors', async () => {
  const h2 = await harness({ LLAMACTL_VLLM_COMMAND: '/nonexistent/vllm' })
  try {
    const secrets = ['-dash-key-1', 'vk-one', 'vk-two', 'vk-three', 'hf-secret-9', 'ek-4', 'ek-5', 'eq-6', '-hft-7']
    // llama: a key that starts with '-', keys in extra_args (spaced, attached, a short spelling)
    const llama = await h2.json('POST', '/api/v1/instances/lk?wait=ready', {
      backend_options: { model: 'crash-on-load', api_key: '-dash-key-1', extra_args: ['--api-key-x=eq-6', '-hft', '-hft-7'] },
    })
    expect(llama.status).toBe(500)
    // vLLM: a list of keys, a token, unknown secret flags with several values
    const v = await h2.json('POST', '/api/v1/instances/vk?wait=ready', {
      backend_type: 'vllm',
      backend_options: { model: 'org/m', api_key: ['vk-one', 'vk-two', 'vk-three'], hf_token: 'hf-secret-9', extra_args: ['--other-token', 'ek-4', 'ek-5', '--seed', '1'] },
    })
    expect(v.status).toBe(500)
    const errors = [llama.body.error, v.body.error].join('\n')
    const logs = [
      await (await h2.request('GET', '/api/v1/instances/lk/logs')).text(),
      await (await h2.request('GET', '/api/v1/instances/vk/logs')).text(),
    ].join('\n')
    const file = [readFileSync(join(h2.config.instances.logs_dir, 'lk.log'), 'utf8'), readFileSync(join(h2.config.instances.logs_dir, 'vk.log'), 'utf8')].join('\n')
    for (const secret of secrets) {
      expect([secret, errors.includes(secret), logs.includes(secret), file.includes(secret)]).toEqual([secret, false, false, false])
    }
    expect(logs).toContain('--api-key *** ')
    expect(logs).toContain('--api-key *** *** *** ')
    expect(logs).toContain('--hf-token *** ')
    expect(logs).toContain('--other-token *** *** --seed 1')
    expect(logs).toContain('--api-key-x=***')
  } finally {
    await h2.close()
  }
})

describe('create, start and restart do not hold the request for a whole load', () => {
  // A backend that takes a minute to load: every answer here comes from instances.start_wait.
  const slow = { backend_options: { model: 'load-60000' }, on_demand_start: false }

  test('they answer after instances.start_wait with the status then; the start goes on', async () => {
    await h.close()
    h = await harness({ LLAMACTL_START_WAIT: '0' })
    const made = await h.json('POST', '/api/v1/instances/slow', slow)
    expect(made.status).toBe(201)
    expect([made.body.status, made.body.state]).toEqual(['restarting', 'starting'])
    expect(h.manager.get('slow').status).toBe('starting')
    const stopped = await h.json('POST', '/api/v1/instances/slow/stop')
    expect(stopped.body.status).toBe('stopped')
    const started = await h.json('POST', '/api/v1/instances/slow/start')
    expect([started.status, started.body.state]).toEqual([200, 'starting'])
    const restarted = await h.json('POST', '/api/v1/instances/slow/restart')
    expect([restarted.status, restarted.body.state]).toEqual([200, 'starting'])
    const updated = await h.json('PUT', '/api/v1/instances/slow', { ...slow, idle_timeout: 5 })
    expect([updated.status, updated.body.state]).toEqual([200, 'starting'])
  })

  test('?wait=ready holds the answer until the backend is ready', async () => {
    await h.close()
    h = await harness({ LLAMACTL_START_WAIT: '0' })
    const made = await h.json('POST', '/api/v1/instances/m?wait=ready', { backend_options: { model: 'load-300' } })
    expect([made.status, made.body.status, made.body.state]).toEqual([201, 'running', 'running'])
    await h.json('POST', '/api/v1/instances/m/stop')
    expect((await h.json('POST', '/api/v1/instances/m/start?wait=ready')).body.status).toBe('running')
    expect((await h.json('POST', '/api/v1/instances/m/restart?wait=ready')).body.status).toBe('running')
    const bad = await h.json('POST', '/api/v1/instances/m/start?wait=soon')
    expect(bad.status).toBe(400)
    expect(bad.body.error).toContain('wait must be "ready"')
  })

  test('a start that fails within the bound is still its 500', async () => {
    await h.close()
    h = await harness({ LLAMACTL_START_WAIT: '600' })
    const res = await h.json('POST', '/api/v1/instances/broken', { backend_options: { model: 'crash-on-load' }, auto_restart: false })
    expect(res.status).toBe(500)
    expect(res.body.error).toContain('exited while loading')
    expect(h.manager.get('broken').status).toBe('failed')
  })
})
