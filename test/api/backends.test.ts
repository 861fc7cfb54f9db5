import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { BUN, FAKE_SERVER, type Harness, harness } from '../helpers'

let h: Harness
beforeAll(async () => {
  // every backend runs the fake server, so parsed commands can be started
  const fake = { COMMAND: BUN, ARGS: FAKE_SERVER }
  h = await harness({
    LLAMACTL_MLX_COMMAND: fake.COMMAND,
    LLAMACTL_MLX_ARGS: fake.ARGS,
    LLAMACTL_VLLM_COMMAND: fake.COMMAND,
    LLAMACTL_VLLM_ARGS: fake.ARGS,
  })
})
afterAll(async () => {
  await h.close()
})

const parse = (backend: string, body: unknown) => h.json('POST', `/api/v1/backends/${backend}/parse-command`, body)

describe('POST /api/v1/backends/{backend}/parse-command', () => {
  test('the seed\'s three examples, answered as the original llamactl does: one options object, backend_options', async () => {
    const llama = await parse('llama-cpp', { command: 'llama-server -m /path/to/model.gguf -c 2048 --port 8080' })
    expect(llama.status).toBe(200)
    const llamaOptions = { model: '/path/to/model.gguf', ctx_size: 2048, port: 8080 }
    expect(llama.body).toEqual({ backend_type: 'llama_cpp', backend_options: llamaOptions })

    const mlx = await parse('mlx', { command: 'mlx_lm.server --model /path/to/model --port 8080' })
    const mlxOptions = { model: '/path/to/model', port: 8080 }
    expect(mlx.body).toEqual({ backend_type: 'mlx_lm', backend_options: mlxOptions })

    const vllm = await parse('vllm', { command: 'vllm serve /path/to/model --port 8080' })
    const vllmOptions = { model: '/path/to/model', port: 8080 }
    expect(vllm.body).toEqual({ backend_type: 'vllm', backend_options: vllmOptions })
  })

  test('a real-world command: quotes, continuations, aliases, negations, unknown flags, environment', async () => {
    const command = `CUDA_VISIBLE_DEVICES=1 /opt/llama.cpp/build/bin/llama-server \\
      -m "/models/Qwen 3/q4_k_m.gguf" -ngl 99 -c 0 --temp 0 -nkvo \\
      --lora a.gguf --lora b.gguf --seed -1 --future-flag on`
    const res = await parse('llama-cpp', { command })
    expect(res.status).toBe(200)
    expect(res.body.backend_options).toEqual({
      model: '/models/Qwen 3/q4_k_m.gguf', gpu_layers: 99, ctx_size: 0, temp: 0, no_kv_offload: true,
      lora: ['a.gguf', 'b.gguf'], seed: -1, extra_args: { 'future-flag': 'on' },
    })
    expect(res.body.environment).toEqual({ CUDA_VISIBLE_DEVICES: '1' })
  })

  test('400 with {"error"} for an empty command, an unclosed quote, a missing value, a wrong type', async () => {
    const cases: [string, unknown, string][] = [
      ['llama-cpp', { command: '' }, 'command is empty'],
      ['llama-cpp', { command: '   ' }, 'command is empty'],
      ['mlx', { command: `mlx_lm.server --model "/m` }, 'unclosed double quote'],
      ['vllm', { command: `vllm serve 'm` }, 'unclosed single quote'],
      ['llama-cpp', { command: 'llama-server -m /m -c' }, '-c needs a value'],
      ['vllm', { command: 'vllm serve m --max-num-seqs --port 1' }, '--max-num-seqs needs a value'],
      ['llama-cpp', { command: 'llama-server -c lots' }, '-c expects a whole number, got "lots"'],
      ['mlx', { command: 'mlx_lm.server --temp hot' }, '--temp expects a number, got "hot"'],
      ['llama-cpp', {}, 'command: must be a string'],
      ['llama-cpp', { command: 42 }, 'command: must be a string'],
      ['llama-cpp', { command: 'x', extra: 1 }, 'unknown field "extra"'],
      ['llama-cpp', [1], 'JSON object'],
      ['llama-cpp', '{"command": ', 'not valid JSON'],
    ]
    for (const [backend, body, fragment] of cases) {
      const res = await parse(backend, body)
      expect([JSON.stringify(body), res.status, Object.keys(res.body)]).toEqual([JSON.stringify(body), 400, ['error']])
      expect(res.body.error).toContain(fragment)
    }
    const none = await h.request('POST', '/api/v1/backends/llama-cpp/parse-command')
    expect(none.status).toBe(400)
  })

  test('an unknown backend is 404', async () => {
    const res = await parse('ollama', { command: 'ollama serve' })
    expect(res.status).toBe(404)
    expect(res.body.error).toContain('no route')
  })

  test('each answer can be POSTed as a create body unchanged', async () => {
    const commands: [string, string][] = [
      ['llama-cpp', 'llama-server -m load-10 -c 128 -ngl 0 --no-warmup'],
      ['mlx', 'python -m mlx_lm.server --model /models/mlx --temp 0.5 --trust-remote-code'],
      ['vllm', 'vllm serve org/model --dtype auto -tp 1 --no-enable-prefix-caching'],
    ]
    for (const [backend, command] of commands) {
      const parsed = await parse(backend, { command })
      const created = await h.json('POST', `/api/v1/instances/from-${backend}?wait=ready`, parsed.body)
      expect([backend, created.status, created.body.status]).toEqual([backend, 201, 'running'])
      expect(created.body.options.backend_type).toBe(parsed.body.backend_type)
      expect(created.body.options.backend_options).toEqual(parsed.body.backend_options)
    }
    // The original llamactl's web UI spreads the answer into its form, lets the user edit
    // backend_options and sends the whole form back: that is a create body too.
    const parsed = await parse('llama-cpp', { command: 'llama-server -m load-10 -c 128 --no-mmap --brand-new 1' })
    const form = { ...parsed.body, backend_options: { ...parsed.body.backend_options, ctx_size: 256, mmap: false }, auto_restart: true, nodes: ['main'] }
    const edited = await h.json('POST', '/api/v1/instances/edited-in-the-original-ui', form)
    expect([edited.status, edited.body.error]).toEqual([201, null])
    const editedLogs = await (await h.request('GET', '/api/v1/instances/edited-in-the-original-ui/logs')).text()
    // this llama-server has --load-mode where older releases had --no-mmap
    expect(editedLogs).toContain('--ctx-size 256 --load-mode none --model load-10 --brand-new 1')
    const logs = await (await h.request('GET', '/api/v1/instances/from-vllm/logs')).text()
    expect(logs).toContain(`${FAKE_SERVER} serve org/model --dtype auto --tensor-parallel-size 1 --no-enable-prefix-caching --host 127.0.0.1`)
  })
})
