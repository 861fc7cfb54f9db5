import { afterAll, afterEach, describe, expect, test } from 'bun:test'
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { modelId } from '../../src/models/library'
import { tinyLlama, writeGguf, writeSplit } from '../fixtures/gguf-writer'
import { type Harness, harness, tempDir } from '../helpers'

let h: Harness
afterEach(async () => {
  await h?.close()
})

// A download cache in the hub's layout (snapshots link to blobs) and a folder of models.
const root = tempDir('llamactl-library-')
afterAll(() => rmSync(root, { recursive: true, force: true }))
const cache = join(root, 'cache')
const models = join(root, 'models')
const snap = join(cache, 'models--org--tiny-GGUF', 'snapshots', 'abc123')
mkdirSync(snap, { recursive: true })
mkdirSync(join(cache, 'models--org--tiny-GGUF', 'blobs'), { recursive: true })
const blob = join(cache, 'models--org--tiny-GGUF', 'blobs', 'f00d')
writeGguf(blob, tinyLlama({ name: 'cached', chatTemplate: true, fileType: 7 }))
symlinkSync('../../blobs/f00d', join(snap, 'tiny-Q8_0.gguf'))
mkdirSync(join(models, 'deep', 'er'), { recursive: true })
const plain = join(models, 'plain.gguf')
writeGguf(plain, tinyLlama({ name: 'plain', layers: 3, context: 2048 }))
const splits = writeSplit(join(models, 'deep', 'er'), 'big', tinyLlama({ name: 'big', layers: 4 }), 2)
writeFileSync(join(models, 'broken.gguf'), 'GGUF but not really')
writeGguf(join(models, 'mmproj-tiny.gguf'), tinyLlama({ name: 'projector' }))
writeFileSync(join(models, 'notes.txt'), 'not a model')
const env = { LLAMACTL_LLAMACPP_CACHE_DIR: cache, LLAMACTL_MODELS_DIRS: models }

describe('the model library', () => {
  test('every GGUF under the cache and models_dirs, with its header; split files as one model', async () => {
    h = await harness(env)
    const res = await h.json('GET', '/api/v1/models/library')
    expect(res.status).toBe(200)
    expect(res.body.roots).toEqual([cache, models])
    const byFile = Object.fromEntries(res.body.models.map((m: any) => [m.file, m]))
    expect(Object.keys(byFile).sort()).toEqual(['big-00001-of-00002.gguf', 'broken.gguf', 'mmproj-tiny.gguf', 'plain.gguf', 'tiny-Q8_0.gguf'])
    expect(byFile['tiny-Q8_0.gguf']).toMatchObject({
      path: join(snap, 'tiny-Q8_0.gguf'),
      root: cache,
      mmproj: false,
      split: null,
      error: null,
      header: { architecture: 'llama', name: 'cached', quantization: 'Q8_0', context_length: 512, layers: 2, chat_template: true, file_size: statSync(blob).size },
    })
    expect(byFile['tiny-Q8_0.gguf'].header.tensors).toBeUndefined()
    expect(byFile['plain.gguf'].header).toMatchObject({ layers: 3, context_length: 2048, quantization: 'F32', chat_template: false })
    expect(byFile['big-00001-of-00002.gguf']).toMatchObject({ split: { files: splits, complete: true }, header: { layers: 4 } })
    expect(byFile['broken.gguf']).toMatchObject({ header: null, error: expect.stringContaining('not a readable GGUF file') })
    expect(byFile['mmproj-tiny.gguf'].mmproj).toBe(true)
    expect(byFile['plain.gguf'].id).toBe(modelId(plain))
  })

  test('one model with its estimate for ctx_size, gpu_layers and parallel', async () => {
    h = await harness(env)
    h.manager.models.readers = { meminfo: () => 'MemAvailable: 1048576 kB\n', nvidiaSmi: () => '8192, 1024\n' }
    const id = modelId(plain)
    const res = await h.json('GET', `/api/v1/models/library/${id}?ctx_size=1024&parallel=2`)
    expect(res.status).toBe(200)
    expect(res.body.model.path).toBe(plain)
    // A GPU is there and gpu_layers not given: every layer and the output on it.
    expect(res.body.estimate).toMatchObject({ ctx_size: 1024, parallel: 2, kv_unified: false, gpu_layers: 4, kv_cache: { cpu: 0, gpu: 1024 * 3 * 64 * 2 } })
    expect(res.body.available).toEqual({ ram: 1024 ** 3, gpu: 7168 * 1048576, gpus: 1, limit: null })
    expect(res.body).toMatchObject({ fits: true, over: null })
    const cpuOnly = await h.json('GET', `/api/v1/models/library/${id}?ctx_size=1024&gpu_layers=0&cache_type_k=q8_0`)
    expect(cpuOnly.body.estimate).toMatchObject({ gpu: 0, gpu_layers: 0, cache_type_k: 'q8_0' })
    expect(cpuOnly.body.estimate.kv_cache.cpu).toBe(1024 * 3 * 32 * (2 + 34 / 32))
  })

  test('bad parameters are 400, an unknown id 404', async () => {
    h = await harness(env)
    const id = modelId(plain)
    for (const [q, says] of [
      ['ctx_size=-1', 'ctx_size must be a whole number of at least 0'],
      ['parallel=0', 'parallel must be a whole number of at least 1'],
      ['gpu_layers=lots', 'gpu_layers must be a whole number'],
      ['cache_type_k=q3', 'cache_type_k must be one of'],
      ['kv_unified=maybe', 'kv_unified must be true or false'],
      ['ctxsize=5', 'unknown query parameter "ctxsize"'],
    ]) {
      const res = await h.json('GET', `/api/v1/models/library/${id}?${q}`)
      expect([q, res.status, res.body.error]).toEqual([q, 400, expect.stringContaining(says!)])
    }
    const missing = await h.json('GET', '/api/v1/models/library/0123456789abcdef')
    expect(missing.status).toBe(404)
    expect(missing.body.error).toContain('no model with id')
  })

  test('a model whose header cannot be read has no estimate', async () => {
    h = await harness(env)
    const res = await h.json('GET', `/api/v1/models/library/${modelId(join(models, 'broken.gguf'))}`)
    expect(res.status).toBe(200)
    expect(res.body).toMatchObject({ estimate: null, fits: false })
  })
})

describe('create refuses what does not fit', () => {
  test('over instances.memory_limit: 400 naming the estimate and the limit; nothing is made', async () => {
    h = await harness({ ...env, LLAMACTL_INSTANCE_MEMORY_LIMIT: '1' })
    const res = await h.json('POST', '/api/v1/instances/big', { backend_options: { model: plain, ctx_size: 65536 } })
    expect(res.status).toBe(400)
    expect(res.body.error).toMatch(/^memory: the estimate \(\d+\.\d MiB\) exceeds instances\.memory_limit \(1\.0 MiB\) \(ctx_size 65536, parallel 4, gpu_layers 0;/)
    expect(res.body.error).toContain('"force": true')
    expect((await h.json('GET', '/api/v1/instances/big')).status).toBe(404)
    expect(h.store.listInstances?.() ?? []).toEqual([])
  })

  test('with force: true it is made, and the answer carries the warning; force is not stored', async () => {
    h = await harness({ ...env, LLAMACTL_INSTANCE_MEMORY_LIMIT: '1' })
    const res = await h.json('POST', '/api/v1/instances/big?wait=ready', { backend_options: { model: plain, ctx_size: 65536 }, force: true })
    expect(res.status).toBe(201)
    expect(res.body.warnings).toEqual([expect.stringContaining('exceeds instances.memory_limit (1.0 MiB)')])
    expect(res.body.status).toBe('running')
    const got = await h.json('GET', '/api/v1/instances/big')
    expect(got.body.warnings).toBeUndefined()
    expect('force' in got.body.options).toBe(false)
    // An update is checked the same way.
    const upd = await h.json('PUT', '/api/v1/instances/big', { backend_options: { model: plain, ctx_size: 131072 } })
    expect(upd.status).toBe(400)
    expect(h.manager.get('big').options.backend_options.ctx_size).toBe(65536)
  })

  test('over the available RAM (MemAvailable); a small context fits', async () => {
    h = await harness(env)
    h.manager.models.readers = { meminfo: () => 'MemTotal: 9000 kB\nMemAvailable:     2048 kB\n', nvidiaSmi: () => null }
    const res = await h.json('POST', '/api/v1/instances/a', { backend_options: { model: plain, ctx_size: 8192, parallel: 1 } })
    expect(res.status).toBe(400)
    expect(res.body.error).toMatch(/the estimate's RAM part \(\d+\.\d MiB\) exceeds the available RAM \(MemAvailable 2\.0 MiB\)/)
    const small = await h.json('POST', '/api/v1/instances/a', { backend_options: { model: plain, ctx_size: 256, parallel: 1 } })
    expect(small.status).toBe(201)
    expect(small.body.warnings).toBeUndefined()
  })

  test('GPU layers count against the GPU\'s free memory, the rest against RAM', async () => {
    h = await harness(env)
    h.manager.models.readers = { meminfo: () => 'MemAvailable: 1048576 kB\n', nvidiaSmi: () => '100, 99\n' }
    const res = await h.json('POST', '/api/v1/instances/g', { backend_options: { model: plain, ctx_size: 8192, gpu_layers: 99 } })
    expect(res.status).toBe(400)
    expect(res.body.error).toContain('exceeds the free GPU memory (1.0 MiB)')
    const cpu = await h.json('POST', '/api/v1/instances/g', { backend_options: { model: plain, ctx_size: 8192, gpu_layers: 0 } })
    expect(cpu.status).toBe(201)
  })

  test('no check for a model llamactl cannot read, or in Docker; force must be a boolean', async () => {
    h = await harness({ ...env, LLAMACTL_INSTANCE_MEMORY_LIMIT: '1' })
    // A .gguf path that is not there is refused before any memory check, naming it (nothing is made).
    const missing = await h.json('POST', '/api/v1/instances/x', { backend_options: { model: 'not-here.gguf' } })
    expect([missing.status, missing.body.error]).toEqual([400, expect.stringContaining('backend_options.model: "not-here.gguf" is not a file llamactl can see')])
    expect((await h.json('GET', '/api/v1/instances/x')).status).toBe(404)
    expect((await h.json('POST', '/api/v1/instances/b', { backend_options: { model: join(models, 'broken.gguf') } })).status).toBe(201)
    const bad = await h.json('POST', '/api/v1/instances/y', { backend_options: { model: plain }, force: 'yes' })
    expect(bad.status).toBe(400)
    expect(bad.body.error).toBe('force must be true or false, got "yes"')
    expect((await h.json('GET', '/api/v1/instances/y')).status).toBe(404)
  })
})

describe('router mode', () => {
  const routerDir = join(root, 'router-models')
  mkdirSync(routerDir, { recursive: true })
  writeGguf(join(routerDir, 'alpha.gguf'), tinyLlama({ name: 'alpha' }))
  writeGguf(join(routerDir, 'beta.gguf'), tinyLlama({ name: 'beta' }))

  test('preset_ini is written 0600 and given as --models-preset; deleted with the instance', async () => {
    h = await harness()
    const preset = '[org/gamma]\nmodel = /models/gamma.gguf\nctx-size = 512\n'
    const res = await h.json('POST', '/api/v1/instances/r?wait=ready', { backend_options: { models_dir: routerDir, models_max: 1 }, preset_ini: preset })
    expect(res.status).toBe(201)
    const file = join(h.config.instances.instances_dir, 'r', 'preset.ini')
    expect(readFileSync(file, 'utf8')).toBe(preset)
    expect(statSync(file).mode & 0o777).toBe(0o600)
    const started = h.manager.get('r').log.tail().find((l) => l.includes('starting:'))!
    expect(started).toContain(`--models-dir ${routerDir} --models-max 1 `)
    expect(started).toEndWith(` --models-preset ${file}`)
    const list = await h.json('GET', '/api/v1/llama-cpp/r/models')
    expect(list.body.data.map((m: any) => m.id)).toEqual(['alpha', 'beta', 'org/gamma'])
    // Its own models_preset wins: no file then.
    await h.json('PUT', '/api/v1/instances/r?wait=ready', { backend_options: { models_dir: routerDir, models_preset: '/elsewhere.ini' }, preset_ini: preset })
    expect(existsSync(file)).toBe(false)
    expect((await h.request('DELETE', '/api/v1/instances/r')).status).toBe(204)
    expect(existsSync(join(h.config.instances.instances_dir, 'r'))).toBe(false)
  })

  test('list, load and unload as the original\'s routes; the instance starts on demand', async () => {
    h = await harness()
    expect((await h.json('POST', '/api/v1/instances/r', { backend_options: { models_dir: routerDir }, preset_ini: '[org/gamma]\nctx-size = 256\n' })).status).toBe(201)
    await h.json('POST', '/api/v1/instances/r/stop')
    const list = await h.json('GET', '/api/v1/llama-cpp/r/models')
    expect(list.status).toBe(200)
    expect(h.manager.get('r').status).toBe('running')
    expect(list.body.object).toBe('list')
    expect(list.body.data[0]).toMatchObject({ id: 'alpha', object: 'model', owned_by: 'llamacpp', status: { value: 'unloaded' } })
    const load = await h.json('POST', '/api/v1/llama-cpp/r/models/alpha/load', { model: 'alpha' })
    expect(load).toEqual({ status: 200, body: { success: true } })
    // A model id with '/' is written with its slashes.
    expect((await h.json('POST', '/api/v1/llama-cpp/r/models/org/gamma/load')).body).toEqual({ success: true })
    const after = await h.json('GET', '/api/v1/llama-cpp/r/models')
    expect(after.body.data.map((m: any) => [m.id, m.status.value])).toEqual([['alpha', 'loaded'], ['beta', 'unloaded'], ['org/gamma', 'loaded']])
    expect(await h.json('POST', '/api/v1/llama-cpp/r/models/alpha/unload')).toEqual({ status: 200, body: { success: true } })
    // llama-server's own errors come back as it gives them.
    expect(await h.json('POST', '/api/v1/llama-cpp/r/models/alpha/unload')).toEqual({ status: 400, body: { error: { code: 400, message: 'model is not running', type: 'invalid_request_error' } } })
    expect((await h.json('POST', '/api/v1/llama-cpp/r/models/nope/load')).status).toBe(404)
    expect((await h.json('POST', '/api/v1/llama-cpp/r/models/alpha/reload')).status).toBe(400)
    expect((await h.json('GET', '/api/v1/llama-cpp/ghost/models')).status).toBe(404)
  })

  test('only llama_cpp instances', async () => {
    h = await harness()
    await h.json('POST', '/api/v1/instances/m', { backend_type: 'mlx_lm', backend_options: { model: 'x' }, command_override: process.execPath })
    const res = await h.json('GET', '/api/v1/llama-cpp/m/models')
    expect(res.status).toBe(400)
    expect(res.body.error).toContain('is a mlx_lm instance')
  })

  test('/v1/models lists instance/model; a request for instance/model reaches the router as model', async () => {
    h = await harness()
    const created = (await h.json('POST', '/api/v1/instances/r?wait=ready', { backend_options: { models_dir: routerDir } })).body
    await h.json('POST', '/api/v1/instances/one?wait=ready', { backend_options: { model: 'x' } })
    const list = await h.json('GET', '/v1/models')
    expect(list.body.data.map((m: any) => m.id)).toEqual(['r', 'r/alpha', 'r/beta', 'one'])
    expect(list.body.data[1]).toEqual({ id: 'r/alpha', object: 'model', created: created.created, owned_by: 'llamactl' })
    const chat = await h.json('POST', '/v1/chat/completions', { model: 'r/beta', messages: [{ role: 'user', content: 'hi' }] })
    expect(chat.status).toBe(200)
    expect(chat.body.model).toBe('r/beta') // the fake answers with the model it was sent: "beta"
    const loaded = await h.json('GET', '/api/v1/llama-cpp/r/models')
    expect(loaded.body.data.find((m: any) => m.id === 'beta').status.value).toBe('loaded')
    // A stopped router is listed by its name only.
    await h.json('POST', '/api/v1/instances/r/stop')
    expect((await h.json('GET', '/v1/models')).body.data.map((m: any) => m.id)).toEqual(['r', 'one'])
    // …and started on demand for its model.
    const again = await h.json('POST', '/v1/completions', { model: 'r/alpha', prompt: 'a b' })
    expect([again.status, again.body.model]).toEqual([200, 'r/alpha'])
  })
})

describe('llama-server\'s web UI at /llama-cpp/{name}/', () => {
  test('served with the proxied-page rules: CSP sandbox, no cookie to the backend, none from it', async () => {
    h = await harness()
    await h.json('POST', '/api/v1/instances/demo?wait=ready', { backend_options: { model: 'x' } })
    const page = await h.request('GET', '/llama-cpp/demo/', undefined, { cookie: 'llamactl_session=secret; other=1' })
    expect(page.status).toBe(200)
    expect(page.headers.get('content-security-policy')).toContain('sandbox allow-scripts')
    expect(page.headers.get('content-security-policy')).not.toContain('allow-same-origin')
    const html = await page.text()
    expect(html).toContain('fake web UI of x')
    expect(html).toContain('backend got cookie: none')
    const echo = await (await h.request('GET', '/llama-cpp/demo/echo?q=1', undefined, { cookie: 'llamactl_session=secret' })).json()
    expect(echo).toMatchObject({ path: '/echo', query: '?q=1' })
    expect(echo.headers.cookie).toBeUndefined()
    const bare = await h.request('GET', '/llama-cpp/demo?x=1')
    expect([bare.status, bare.headers.get('location')]).toEqual([308, '/llama-cpp/demo/?x=1'])
    expect((await h.request('GET', '/llama-cpp/ghost/')).status).toBe(404)
    await h.json('POST', '/api/v1/instances/demo/stop')
    expect((await h.request('GET', '/llama-cpp/demo/')).status).toBe(503) // never started for it
  })

  test('authorised as the instance proxy: a management key, not an inference key, not the page session', async () => {
    h = await harness({ LLAMACTL_REQUIRE_MANAGEMENT_AUTH: 'true', LLAMACTL_MANAGEMENT_KEYS: 'mgmt-key-123456', LLAMACTL_INFERENCE_KEYS: 'inf-key-1234567' })
    const mk = { authorization: 'Bearer mgmt-key-123456' }
    await h.request('POST', '/api/v1/instances/demo?wait=ready', { backend_options: { model: 'x' } }, mk)
    expect((await h.request('GET', '/llama-cpp/demo/')).status).toBe(401)
    expect((await h.request('GET', '/llama-cpp/demo/', undefined, { authorization: 'Bearer inf-key-1234567' })).status).toBe(403)
    expect((await h.request('GET', '/llama-cpp/demo', undefined, mk)).status).toBe(308)
    expect((await h.request('GET', '/llama-cpp/demo/', undefined, mk)).status).toBe(200)
    expect((await h.request('GET', '/api/v1/llama-cpp/demo/models', undefined, { authorization: 'Bearer inf-key-1234567' })).status).toBe(403)
    expect((await h.request('GET', '/api/v1/models/library')).status).toBe(401)
  })
})

describe('the Models page', () => {
  test('lists the library; a bad setting is said, not a crash; the create form is filled from its address, escaped', async () => {
    h = await harness(env)
    const res = await h.request('GET', '/ui/models?ctx_size=2048&parallel=2')
    expect(res.status).toBe(200)
    const text = await res.text()
    expect(text).toContain('id="library"')
    expect(text).toContain('plain.gguf')
    expect(text).toContain(`/ui/instances/new?model=${encodeURIComponent(plain)}&amp;name=plain&amp;ctx_size=2048&amp;parallel=2`)
    expect(text).toContain('not a readable GGUF file') // broken.gguf, in its row
    const bad = await h.request('GET', '/ui/models?ctx_size=lots')
    expect(bad.status).toBe(400)
    expect(await bad.text()).toContain('ctx_size must be a whole number')
    const form = await (await h.request('GET', `/ui/instances/new?name=x&model=${encodeURIComponent('"><script>alert(1)</script>')}&ctx_size=1024&parallel=2&command=rm`)).text()
    expect(form).toContain('value="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"')
    expect(form).not.toContain('<script>alert(1)')
    expect(form).toContain('value="1024"')
  })

  test('needs the page session', async () => {
    h = await harness({ ...env, LLAMACTL_REQUIRE_MANAGEMENT_AUTH: 'true', LLAMACTL_MANAGEMENT_KEYS: 'mgmt-key-123456' })
    const res = await h.request('GET', '/ui/models')
    expect([res.status, res.headers.get('location')]).toEqual([303, '/ui/login'])
  })
})
