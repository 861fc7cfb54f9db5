/**
 * A model downloaded by llamactl is the one the real llama-server's `-hf` finds: the test model
 * is served by our own hub (test/fixtures/fake-hub.ts), downloaded into a cache folder, then
 * llama-server runs with `LLAMA_CACHE=<that folder> -hf org/name:Q8_0` — offline (`--offline`),
 * online against the same hub (it finds the files there and fetches none), and as a llamactl
 * instance with `hf_repo` (llamactl passes LLAMA_CACHE itself).
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { readFileSync, rmSync } from 'node:fs'
import { fakeHub, type FakeHub } from '../fixtures/fake-hub'
import { type Harness, harness, tempDir, waitFor } from '../helpers'
import { realEnv, realLlama } from './real'

const { server, model } = realLlama()
const REPO = 'tiny/tiny-llama-GGUF'
let hub: FakeHub
let cache: string
let h: Harness

beforeAll(async () => {
  const bytes = new Uint8Array(readFileSync(model))
  hub = fakeHub([{ id: REPO, files: [{ path: 'tiny-llama-Q8_0.gguf', content: bytes }, { path: 'README.md', content: '# tiny\n' }] }])
  cache = tempDir('llamactl-real-cache-')
  h = await harness({ ...realEnv(), LLAMACTL_LLAMACPP_CACHE_DIR: cache, LLAMACTL_HF_ENDPOINT: hub.url })
})

afterAll(async () => {
  await h?.close()
  hub?.close()
  rmSync(cache, { recursive: true, force: true })
})

/** Runs llama-server until /health answers 200 (or it exits), then ends it; answers its output and the model file it loaded (/props). */
async function runLlama(args: string[], env: Record<string, string>): Promise<{ ok: boolean; output: string; modelPath: string | null }> {
  const port = 30000 + Math.floor(Math.random() * 20000)
  const proc = Bun.spawn([server, ...args, '--host', '127.0.0.1', '--port', String(port), '-c', '256', '-t', '1', '-np', '1'], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: cache, ...env },
    stdout: 'pipe',
    stderr: 'pipe',
  })
  const out: string[] = []
  const read = async (s: ReadableStream<Uint8Array>) => {
    for await (const chunk of s) out.push(new TextDecoder().decode(chunk))
  }
  const reading = Promise.all([read(proc.stdout), read(proc.stderr)])
  let ok = false
  let modelPath: string | null = null
  try {
    await waitFor(async () => {
      if (proc.exitCode !== null) return true
      try {
        ok = (await fetch(`http://127.0.0.1:${port}/health`)).status === 200
      } catch {
        ok = false
      }
      return ok
    }, 60_000, 100)
    if (ok) modelPath = ((await (await fetch(`http://127.0.0.1:${port}/props`)).json()) as { model_path?: string }).model_path ?? null
  } finally {
    proc.kill('SIGTERM')
    await proc.exited
    await reading
  }
  return { ok, output: out.join(''), modelPath }
}

describe('llama-server -hf finds what llamactl downloaded', () => {
  test('download the test model from our hub into the cache', async () => {
    const res = await h.json('POST', '/api/v1/models/download', { repo: `${REPO}:Q8_0` })
    expect(res.status).toBe(202)
    const job = await h.app.downloads.settled(res.body.job_id)
    expect([job.status, job.error]).toEqual(['completed', null])
  })

  test('offline: LLAMA_CACHE=<cache> llama-server -hf org/name:Q8_0 --offline loads it', async () => {
    // an endpoint nothing listens on: any network use would fail
    const r = await runLlama(['-hf', `${REPO}:Q8_0`, '--offline'], { LLAMA_CACHE: cache, HF_ENDPOINT: 'http://127.0.0.1:9/' })
    expect(r.ok).toBe(true)
    expect(r.modelPath).toBe(`${cache}/models--tiny--tiny-llama-GGUF/snapshots/${hub.commitOf(REPO)}/tiny-llama-Q8_0.gguf`)
    // and it was our cache it read: with an empty one it has nothing to load
    const empty = tempDir('llamactl-empty-cache-')
    try {
      const none = await runLlama(['-hf', `${REPO}:Q8_0`, '--offline'], { LLAMA_CACHE: empty, HF_ENDPOINT: 'http://127.0.0.1:9/' })
      expect(none.ok).toBe(false)
      expect(none.output).toContain('failed to load model')
    } finally {
      rmSync(empty, { recursive: true, force: true })
    }
  })

  test('online against the same hub: it resolves the repo there, finds the files in the cache and fetches none', async () => {
    const before = hub.seen.length
    const r = await runLlama(['-hf', `${REPO}:Q8_0`], { LLAMA_CACHE: cache, HF_ENDPOINT: `${hub.url}/` })
    expect(r.ok).toBe(true)
    const seen = hub.seen.slice(before)
    // it asked the hub (refs, tree), but took no file's bytes
    expect(seen.some((s) => s.host === 'hub' && s.path.startsWith(`/api/models/${REPO}`))).toBe(true)
    expect(seen.filter((s) => s.host === 'files' && s.method === 'GET' && s.range !== 'bytes=0-0')).toEqual([])
  })

  test('as a llamactl instance with hf_repo and offline: llamactl gives it LLAMA_CACHE', async () => {
    const res = await h.json('POST', '/api/v1/instances/from-cache?wait=ready', {
      backend_options: { hf_repo: `${REPO}:Q8_0`, offline: true, ctx_size: 256, threads: 1, parallel: 1 },
      environment: { HF_ENDPOINT: 'http://127.0.0.1:9/' },
    })
    expect([res.status, res.body.status]).toEqual([201, 'running'])
    expect((await fetch(`http://127.0.0.1:${res.body.port}/health`)).status).toBe(200)
    // and the cache's model cannot be deleted while the instance is defined
    const del = await h.json('DELETE', `/api/v1/models?repo=${REPO}`)
    expect([del.status, del.body.error]).toEqual([409, `${REPO} is used by instance "from-cache"; delete or change it first`])
    expect((await h.request('DELETE', '/api/v1/instances/from-cache')).status).toBe(204)
    expect((await h.request('DELETE', `/api/v1/models?repo=${REPO}`)).status).toBe(204)
  })
})
