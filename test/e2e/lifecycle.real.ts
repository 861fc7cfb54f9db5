import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { processStartTime } from '../../src/supervisor/os-process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { type Harness, harness, tempDir, waitFor } from '../helpers'
import { realEnv, realLlama } from './real'

let h: Harness
const { model } = realLlama()

beforeAll(async () => {
  h = await harness(realEnv())
})
afterAll(async () => {
  await h.close()
})

describe('lifecycle against a real llama-server', () => {
  test('create starts it; running means its /health answers; logs carry its output', async () => {
    const res = await h.json('POST', '/api/v1/instances/tiny?wait=ready', {
      backend_options: { model, ctx_size: 256, threads: 1, parallel: 1 },
    })
    expect(res.status).toBe(201)
    expect(res.body.status).toBe('running')
    const health = await fetch(`http://127.0.0.1:${res.body.port}/health`)
    expect(health.status).toBe(200)
    const logs = async () => (await h.request('GET', '/api/v1/instances/tiny/logs')).text()
    expect(await logs()).toContain('--ctx-size 256')
    // Ready is seen from /health, which can answer before its own lines have come through the pipe.
    await waitFor(async () => /listening on http|model loaded/i.test(await logs()), 5000)
  })

  test('stop, start and restart', async () => {
    const port = (await h.json('GET', '/api/v1/instances/tiny')).body.port
    expect((await h.json('POST', '/api/v1/instances/tiny/stop')).body.status).toBe('stopped')
    await expect(fetch(`http://127.0.0.1:${port}/health`)).rejects.toThrow()
    expect((await h.json('POST', '/api/v1/instances/tiny/start?wait=ready')).body.status).toBe('running')
    const pid = h.store.backendProcesses().find((b) => b.instance === 'tiny')!.pid
    const r = await h.json('POST', '/api/v1/instances/tiny/restart?wait=ready')
    expect(r.body.status).toBe('running')
    expect((await fetch(`http://127.0.0.1:${r.body.port}/health`)).status).toBe(200)
    // another llama-server process took the old one's place
    expect(h.store.backendProcesses().find((b) => b.instance === 'tiny')!.pid).not.toBe(pid)
    expect(processStartTime(pid)).toBeNull()
  })

  test('PUT restarts it with new options', async () => {
    const r = await h.json('PUT', '/api/v1/instances/tiny?wait=ready', { backend_options: { model, ctx_size: 256, threads: 1, parallel: 1, alias: 'renamed' } })
    expect(r.status).toBe(200)
    expect(r.body.status).toBe('running')
    const models = (await (await fetch(`http://127.0.0.1:${r.body.port}/v1/models`)).json()) as { data: { id: string }[] }
    expect(models.data.map((m) => m.id)).toContain('renamed')
  })

  test('a crash is restarted per policy', async () => {
    const inst = h.manager.get('tiny')
    // kill the backend as a crash would
    const rec = h.store.backendProcesses().find((r) => r.instance === 'tiny')!
    process.kill(rec.pid, 'SIGKILL')
    await waitFor(() => inst.restarts === 1 && inst.status === 'running', 30000)
    expect((await fetch(`http://127.0.0.1:${inst.port}/health`)).status).toBe(200)
  })

  test('a model path that is not there is a 400 naming it, and nothing is made', async () => {
    const res = await h.json('POST', '/api/v1/instances/bad?wait=ready', { backend_options: { model: '/nonexistent/model.gguf' } })
    expect(res.status).toBe(400)
    expect(res.body.error).toContain('backend_options.model: "/nonexistent/model.gguf" is not a file llamactl can see')
    expect((await h.json('GET', '/api/v1/instances/bad')).status).toBe(404)
  })

  test('a file llama-server cannot load fails with 500 and the line where llama-server says why, and status failed', async () => {
    const junk = join(tempDir(), 'not-a-model.gguf')
    writeFileSync(junk, 'this is not a GGUF file\n'.repeat(100))
    const res = await h.json('POST', '/api/v1/instances/bad?wait=ready', { backend_options: { model: junk } })
    expect(res.status).toBe(500)
    expect(res.body.error).toContain('exited while loading')
    // The cause, found in its output, not just its last lines
    expect(res.body.error.split('\n')[0]).toMatch(/failed to (load|read|open)|invalid magic|not a gguf|unable to load/i)
    expect((await h.json('GET', '/api/v1/instances/bad')).body.status).toBe('failed')
  })

  test('delete stops it and answers 204', async () => {
    const port = (await h.json('GET', '/api/v1/instances/tiny')).body.port
    expect((await h.request('DELETE', '/api/v1/instances/tiny')).status).toBe(204)
    await expect(fetch(`http://127.0.0.1:${port}/health`)).rejects.toThrow()
  })
})
