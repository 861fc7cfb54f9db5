import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs'
import { join } from 'node:path'
import OpenAI from 'openai'
import { type Harness, harness, tempDir, waitFor } from '../helpers'
import { realEnv, realLlama } from './real'

// llama-server's router mode through llamactl: two tiny models in a models folder and one in
// a preset, loaded and unloaded through the original's routes and by naming instance/model.
let h: Harness
let client: OpenAI
const { model, moe } = realLlama()
const dir = tempDir('llamactl-router-')
const modelsDir = join(dir, 'models')

const PRESET = `[preset-moe]\nmodel = ${moe}\nctx-size = 512\n`

beforeAll(async () => {
  mkdirSync(modelsDir)
  symlinkSync(model, join(modelsDir, 'tiny-llama.gguf'))
  symlinkSync(moe, join(modelsDir, 'tiny-llama-moe.gguf'))
  h = await harness(realEnv())
  client = new OpenAI({ baseURL: `${h.listen()}/v1`, apiKey: 'not-needed', maxRetries: 0 })
  const made = await h.json('POST', '/api/v1/instances/r?wait=ready', {
    backend_options: { models_dir: modelsDir, models_max: 1, ctx_size: 256, threads: 1 },
    preset_ini: PRESET,
  })
  if (made.status !== 201) throw new Error(`set-up failed: ${JSON.stringify(made.body)}`)
}, 120000)
afterAll(async () => {
  await h.close()
  rmSync(dir, { recursive: true, force: true })
})

const statuses = async () => {
  const res = await h.json('GET', '/api/v1/llama-cpp/r/models')
  expect(res.status).toBe(200)
  return Object.fromEntries(res.body.data.map((m: any) => [m.id, m.status.value])) as Record<string, string>
}

/** The router's model processes: llama-server children whose command line names a model of ours. */
function modelProcesses(): number {
  let n = 0
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
      if (cmd.includes('--alias') && (cmd.includes(modelsDir) || cmd.includes(moe))) n++
    } catch {
      // gone meanwhile
    }
  }
  return n
}

describe('router mode with the real llama-server', () => {
  test('the models of the folder and the preset, as llama-server lists them (the fake copies this shape)', async () => {
    const res = await h.json('GET', '/api/v1/llama-cpp/r/models')
    expect(res.body.object).toBe('list')
    const ids = res.body.data.map((m: any) => m.id).sort()
    expect(ids).toEqual(['preset-moe', 'tiny-llama', 'tiny-llama-moe'])
    const first = res.body.data.find((m: any) => m.id === 'tiny-llama')
    // The fields the fake answers with (test/fixtures/fake-llama-server.ts, router mode).
    expect(Object.keys(first).sort()).toEqual(['aliases', 'architecture', 'can_remove', 'created', 'id', 'object', 'owned_by', 'source', 'status', 'tags'])
    expect(first).toMatchObject({ object: 'model', owned_by: 'llamacpp', source: 'models_dir', status: { value: 'unloaded' } })
    expect(Object.keys(first.status).sort()).toEqual(['args', 'preset', 'value'])
    expect(res.body.data.find((m: any) => m.id === 'preset-moe').status.preset).toContain(`model = ${moe}`)
    // The preset is the file llamactl wrote, 0600.
    expect(readFileSync(join(h.config.instances.instances_dir, 'r', 'preset.ini'), 'utf8')).toBe(PRESET)
  })

  test('load and unload through the original\'s routes; models_max 1 keeps one loaded', async () => {
    expect(await h.json('POST', '/api/v1/llama-cpp/r/models/tiny-llama/load')).toEqual({ status: 200, body: { success: true } })
    await waitFor(async () => (await statuses())['tiny-llama'] === 'loaded', 60000, 200)
    expect((await h.json('POST', '/api/v1/llama-cpp/r/models/nope/load')).status).toBe(404)
    expect(await h.json('POST', '/api/v1/llama-cpp/r/models/preset-moe/load')).toEqual({ status: 200, body: { success: true } })
    await waitFor(async () => {
      const s = await statuses()
      return s['preset-moe'] === 'loaded' && s['tiny-llama'] === 'unloaded'
    }, 60000, 200)
    expect(await h.json('POST', '/api/v1/llama-cpp/r/models/preset-moe/unload')).toEqual({ status: 200, body: { success: true } })
    await waitFor(async () => (await statuses())['preset-moe'] === 'unloaded', 60000, 200)
    const again = await h.json('POST', '/api/v1/llama-cpp/r/models/preset-moe/unload')
    expect(again).toEqual({ status: 400, body: { error: { code: 400, message: 'model is not running', type: 'invalid_request_error' } } })
  })

  test('/v1/models lists instance/model; naming one loads it, and the reply says the name asked for', async () => {
    const ids = (await client.models.list()).data.map((m) => m.id)
    expect(ids).toEqual(expect.arrayContaining(['r', 'r/tiny-llama', 'r/tiny-llama-moe', 'r/preset-moe']))
    const r = await client.chat.completions.create({ model: 'r/tiny-llama-moe', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 3 })
    expect(r.model).toBe('r/tiny-llama-moe')
    expect(r.usage!.completion_tokens).toBeGreaterThan(0)
    expect((await statuses())['tiny-llama-moe']).toBe('loaded')
    const c = await client.completions.create({ model: 'r/tiny-llama', prompt: 'a b c', max_tokens: 2 })
    expect(c.model).toBe('r/tiny-llama')
    const s = await statuses()
    expect([s['tiny-llama'], s['tiny-llama-moe']]).toEqual(['loaded', 'unloaded'])
  })

  test('a stopped router starts on demand for instance/model; stopping it ends its model processes', async () => {
    await h.json('POST', '/api/v1/instances/r/stop')
    await waitFor(() => modelProcesses() === 0, 20000, 100)
    const r = await client.chat.completions.create({ model: 'r/tiny-llama', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 2 })
    expect(r.model).toBe('r/tiny-llama')
    expect(h.manager.get('r').status).toBe('running')
    expect(modelProcesses()).toBe(1)
    await h.json('POST', '/api/v1/instances/r/stop')
    await waitFor(() => modelProcesses() === 0, 20000, 100)
  })
})
