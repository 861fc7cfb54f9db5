/**
 * Model downloads against a hub of our own (test/fixtures/fake-hub.ts): the cache written in the
 * Hugging Face layout llama.cpp reads, quantization tags, split files, projector and preset,
 * safetensors sets, resume, hashes, cancel, concurrency, a full disk (a 64 KiB tmpfs), private
 * repos, the hub's refusals, bad input, hostile file names and deleting what an instance uses.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { spawnSync } from 'node:child_process'
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, realpathSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { type FakeHub, fakeHub, HUB_TOKEN, tinyGguf } from '../fixtures/fake-hub'
import { type Harness, harness, tempDir, waitFor } from '../helpers'

let hub: FakeHub
let cacheRoot: string
let h: Harness

const Q4 = tinyGguf('demo Q4_K_M', 6000)
const Q8 = tinyGguf('demo Q8_0', 9000)

beforeAll(async () => {
  hub = fakeHub([
    {
      id: 'acme/demo-GGUF',
      files: [
        { path: 'demo-Q8_0.gguf', content: Q8 },
        { path: 'demo-Q4_K_M.gguf', content: Q4 },
        { path: 'README.md', content: '# demo\n' },
      ],
    },
    {
      id: 'acme/split-GGUF',
      files: [
        ...[1, 2, 3].map((i) => ({ path: `big-Q4_K_M-0000${i}-of-00003.gguf`, content: tinyGguf(`part ${i}`, 3000 + i) })),
        { path: 'big-Q8_0.gguf', content: tinyGguf('q8', 5000) },
      ],
    },
    {
      id: 'acme/vision-GGUF',
      files: [
        { path: 'vis-Q8_0.gguf', content: tinyGguf('vis q8', 5000) },
        { path: 'vis-F16.gguf', content: tinyGguf('vis f16', 7000) },
        { path: 'mmproj-F16.gguf', content: tinyGguf('proj f16', 3000) },
        { path: 'mmproj-Q8_0.gguf', content: tinyGguf('proj q8', 2000) },
        { path: 'preset.ini', content: '[*]\nctx-size = 4096\n' },
        { path: 'template.jinja', content: '{{ messages }}' },
        { path: 'notes.txt', content: 'not for gguf' },
      ],
    },
    {
      id: 'acme/tiny-st',
      files: [
        { path: 'model-00001-of-00002.safetensors', content: new Uint8Array(3000).fill(1) },
        { path: 'model-00002-of-00002.safetensors', content: new Uint8Array(2000).fill(2) },
        { path: 'model.safetensors.index.json', content: '{"weight_map":{}}' },
        { path: 'config.json', content: '{"model_type":"llama"}' },
        { path: 'tokenizer.json', content: '{"version":"1.0"}' },
        { path: 'tokenizer_config.json', content: '{}' },
        { path: 'tokenizer.model', content: 'spm' },
        { path: 'pytorch_model.bin', content: new Uint8Array(100) },
        { path: '.gitattributes', content: '*.safetensors filter=lfs\n' },
        { path: 'README.md', content: 'readme' },
      ],
    },
    { id: 'acme/old-bin', files: [{ path: 'pytorch_model.bin', content: new Uint8Array(1500).fill(7) }, { path: 'config.json', content: '{}' }] },
    { id: 'acme/private-GGUF', private: true, files: [{ path: 'secret-Q4_K_M.gguf', content: tinyGguf('secret', 3000) }] },
    { id: 'acme/evil-GGUF', files: [{ path: 'ok-Q4_K_M.gguf', content: tinyGguf('ok') }, { path: '../../../escape-Q4_K_M.gguf', content: tinyGguf('escape') }] },
    { id: 'acme/cut-GGUF', files: [{ path: 'cut-Q4_K_M.gguf', content: tinyGguf('cut', 40_000) }] },
    { id: 'acme/norange-GGUF', files: [{ path: 'nr-Q4_K_M.gguf', content: tinyGguf('norange', 30_000) }] },
    { id: 'acme/bad-GGUF', files: [{ path: 'bad-Q4_K_M.gguf', content: tinyGguf('bad', 8000) }] },
    { id: 'acme/slow-GGUF', files: [{ path: 'slow-Q4_K_M.gguf', content: tinyGguf('slow', 8000) }] },
    { id: 'acme/other-GGUF', files: [{ path: 'other-Q4_K_M.gguf', content: tinyGguf('other', 8000) }] },
    { id: 'acme/huge-GGUF', files: [{ path: 'huge-Q4_K_M.gguf', content: tinyGguf('huge', 200_000) }] },
  ])
  cacheRoot = tempDir('llamactl-cache-')
  h = await harness({ LLAMACTL_LLAMACPP_CACHE_DIR: cacheRoot, LLAMACTL_HF_ENDPOINT: hub.url })
})

afterAll(async () => {
  await h?.close()
  hub?.close()
  rmSync(cacheRoot, { recursive: true, force: true })
})

interface Job {
  id: string
  status: string
  error: string | null
  repo: string
  tag: string
  model_path?: string
  progress: { bytes_downloaded: number; total_bytes: number; current_file: string; files_done: number; files_total: number }
}

async function start(t: Harness, repo: string, format?: string): Promise<string> {
  const res = await t.json('POST', '/api/v1/models/download', format ? { repo, format } : { repo })
  expect(res.status).toBe(202)
  expect(typeof res.body.job_id).toBe('string')
  return res.body.job_id
}

/** Starts a download and answers the job once it has ended (the job's own end, not a poll). */
async function download(repo: string, format?: string, t: Harness = h): Promise<Job> {
  const id = await start(t, repo, format)
  await t.app.downloads.settled(id)
  const res = await t.json('GET', `/api/v1/models/jobs/${id}`)
  expect(res.status).toBe(200)
  return res.body
}

const repoDir = (repo: string, root = cacheRoot) => join(root, `models--${repo.replace('/', '--')}`)
const commit = (repo: string) => hub.commitOf(repo)
const snapshotFiles = (repo: string, root = cacheRoot) => readdirSync(join(repoDir(repo, root), 'snapshots', commit(repo)), { recursive: true }).map(String).sort()

describe('a download lands where llama.cpp looks', () => {
  test('no tag: Q4_K_M is chosen; blobs, snapshot links and refs/main in the Hugging Face layout', async () => {
    const job = await download('acme/demo-GGUF')
    expect(job.status).toBe('completed')
    expect(job.error).toBeNull()
    expect(job.tag).toBe('main')
    const dir = repoDir('acme/demo-GGUF')
    expect(readFileSync(join(dir, 'refs', 'main'), 'utf8')).toBe(commit('acme/demo-GGUF'))
    expect(snapshotFiles('acme/demo-GGUF')).toEqual(['demo-Q4_K_M.gguf'])
    const link = join(dir, 'snapshots', commit('acme/demo-GGUF'), 'demo-Q4_K_M.gguf')
    expect(lstatSync(link).isSymbolicLink()).toBe(true)
    const sha = hub.sha256Of('acme/demo-GGUF', 'demo-Q4_K_M.gguf')
    expect(readlinkSync(link)).toBe(`../../blobs/${sha}`)
    expect(Buffer.from(readFileSync(link)).equals(Buffer.from(Q4))).toBe(true)
    expect(readdirSync(join(dir, 'blobs'))).toEqual([sha])
    expect(job.model_path).toBe(link)
    expect(job.progress).toMatchObject({ bytes_downloaded: Q4.length, total_bytes: Q4.length, files_done: 1, files_total: 1, current_file: '' })
    // The LFS file came from the file host, without the hub's credentials (there were none here).
    expect(hub.seen.some((s) => s.host === 'files' && s.path === `/blob/${sha}`)).toBe(true)
  })

  test('GET /api/v1/models lists it in the original\'s shape', async () => {
    const res = await h.json('GET', '/api/v1/models')
    expect(res.status).toBe(200)
    const m = res.body.find((x: { repo: string }) => x.repo === 'acme/demo-GGUF')
    expect(m).toEqual({
      node: 'main',
      repo: 'acme/demo-GGUF',
      tag: 'Q4_K_M',
      files: [{ name: 'demo-Q4_K_M.gguf', path: join(repoDir('acme/demo-GGUF'), 'snapshots', commit('acme/demo-GGUF'), 'demo-Q4_K_M.gguf'), size_bytes: Q4.length, type: 'gguf' }],
      size_bytes: Q4.length,
    })
  })

  test('a tag picks that quantization only; the same snapshot then lists both', async () => {
    const job = await download('acme/demo-GGUF:Q8_0')
    expect([job.status, job.tag]).toEqual(['completed', 'Q8_0'])
    expect(snapshotFiles('acme/demo-GGUF')).toEqual(['demo-Q4_K_M.gguf', 'demo-Q8_0.gguf'])
    const tags = (await h.json('GET', '/api/v1/models')).body.filter((m: { repo: string }) => m.repo === 'acme/demo-GGUF').map((m: { tag: string }) => m.tag)
    expect(tags.sort()).toEqual(['Q4_K_M', 'Q8_0'])
    // a file already there is not fetched again
    const before = hub.seen.length
    expect((await download('acme/demo-GGUF:Q8_0')).status).toBe('completed')
    expect(hub.seen.slice(before).filter((s) => s.host === 'files')).toEqual([])
  })

  test('a split model comes whole, and model_path is its first part', async () => {
    const job = await download('acme/split-GGUF:Q4_K_M')
    expect(job.status).toBe('completed')
    expect(snapshotFiles('acme/split-GGUF')).toEqual([1, 2, 3].map((i) => `big-Q4_K_M-0000${i}-of-00003.gguf`))
    expect(job.model_path?.endsWith('big-Q4_K_M-00001-of-00003.gguf')).toBe(true)
    expect(job.progress.files_total).toBe(3)
    const listed = (await h.json('GET', '/api/v1/models')).body.find((m: { repo: string }) => m.repo === 'acme/split-GGUF')
    expect(listed.files.length).toBe(3)
    expect(listed.size_bytes).toBe(3001 + 3002 + 3003)
  })

  test('the projector llama.cpp would pick (closest bits), preset.ini and chat templates come with a GGUF', async () => {
    const job = await download('acme/vision-GGUF:Q8_0')
    expect(job.status).toBe('completed')
    expect(snapshotFiles('acme/vision-GGUF')).toEqual(['mmproj-Q8_0.gguf', 'preset.ini', 'template.jinja', 'vis-Q8_0.gguf'])
    const listed = (await h.json('GET', '/api/v1/models')).body.find((m: { repo: string }) => m.repo === 'acme/vision-GGUF')
    expect(listed.tag).toBe('Q8_0')
    expect(Object.fromEntries(listed.files.map((f: { name: string; type: string }) => [f.name, f.type]))).toEqual({
      'mmproj-Q8_0.gguf': 'mmproj',
      'preset.ini': 'preset',
      'template.jinja': 'other',
      'vis-Q8_0.gguf': 'gguf',
    })
  })

  test('safetensors: every weight shard with config and tokenizer files; .bin left out when safetensors exist', async () => {
    const job = await download('acme/tiny-st', 'safetensors')
    expect(job.status).toBe('completed')
    expect(snapshotFiles('acme/tiny-st')).toEqual([
      'config.json',
      'model-00001-of-00002.safetensors',
      'model-00002-of-00002.safetensors',
      'model.safetensors.index.json',
      'tokenizer.json',
      'tokenizer.model',
      'tokenizer_config.json',
    ])
    expect(job.model_path).toBe(join(repoDir('acme/tiny-st'), 'snapshots', commit('acme/tiny-st')))
    // small files are checked against git's blob hash and filed under it
    const cfg = join(repoDir('acme/tiny-st'), 'snapshots', commit('acme/tiny-st'), 'config.json')
    expect(readlinkSync(cfg)).toBe(`../../blobs/${hub.gitOidOf('acme/tiny-st', 'config.json')}`)
    const listed = (await h.json('GET', '/api/v1/models')).body.find((m: { repo: string }) => m.repo === 'acme/tiny-st')
    expect(listed.tag).toBe('main')
  })

  test('safetensors: .bin weights when the repo has no safetensors', async () => {
    const job = await download('acme/old-bin', 'safetensors')
    expect(job.status).toBe('completed')
    expect(snapshotFiles('acme/old-bin')).toEqual(['config.json', 'pytorch_model.bin'])
  })
})

describe('interrupted, corrupted, cancelled, concurrent', () => {
  test('a transfer cut halfway fails, keeps its .incomplete file, and the next download resumes it with a Range request', async () => {
    const repo = 'acme/cut-GGUF'
    const sha = hub.sha256Of(repo, 'cut-Q4_K_M.gguf')
    hub.cutAfter('cut-Q4_K_M.gguf', 20_000)
    const first = await download(repo)
    expect(first.status).toBe('failed')
    expect(first.error).toContain('cut-Q4_K_M.gguf')
    const partial = join(repoDir(repo), 'blobs', `${sha}.incomplete`)
    expect(lstatSync(partial).size).toBe(20_000)
    expect(existsSync(join(repoDir(repo), 'blobs', sha))).toBe(false)
    expect(existsSync(join(repoDir(repo), 'refs', 'main'))).toBe(false)

    const before = hub.seen.length
    const second = await download(repo)
    expect(second.status).toBe('completed')
    const ranges = hub.seen.slice(before).filter((s) => s.host === 'files' && s.path === `/blob/${sha}`).map((s) => s.range)
    expect(ranges).toContain('bytes=20000-')
    expect(existsSync(partial)).toBe(false)
    expect(new Bun.CryptoHasher('sha256').update(readFileSync(join(repoDir(repo), 'blobs', sha))).digest('hex')).toBe(sha)
    expect(second.progress.bytes_downloaded).toBe(40_000)
  })

  test('a file server that ignores Range (200, the whole file) is taken from the start, not appended', async () => {
    const repo = 'acme/norange-GGUF'
    hub.cutAfter('nr-Q4_K_M.gguf', 10_000)
    expect((await download(repo)).status).toBe('failed')
    hub.ignoreRange('nr-Q4_K_M.gguf')
    const job = await download(repo)
    expect(job.status).toBe('completed')
    const sha = hub.sha256Of(repo, 'nr-Q4_K_M.gguf')
    expect(lstatSync(join(repoDir(repo), 'blobs', sha)).size).toBe(30_000)
  })

  test('a corrupted file is caught by its sha256 and nothing that looks complete is left', async () => {
    const repo = 'acme/bad-GGUF'
    hub.corrupt('bad-Q4_K_M.gguf')
    const job = await download(repo)
    hub.corrupt('bad-Q4_K_M.gguf', false)
    expect(job.status).toBe('failed')
    const sha = hub.sha256Of(repo, 'bad-Q4_K_M.gguf')
    expect(job.error).toContain(`the hub lists ${sha}`)
    expect(readdirSync(join(repoDir(repo), 'blobs'))).toEqual([])
    expect(existsSync(join(repoDir(repo), 'snapshots'))).toBe(false)
    expect((await h.json('GET', '/api/v1/models')).body.some((m: { repo: string }) => m.repo === repo)).toBe(false)
  })

  test('cancel: DELETE /api/v1/models/jobs/{id} stops a running job; a second DELETE forgets it', async () => {
    hub.hold()
    const id = await start(h, 'acme/slow-GGUF')
    await waitFor(async () => (await h.json('GET', `/api/v1/models/jobs/${id}`)).body.progress.current_file === 'slow-Q4_K_M.gguf', 10_000)
    const res = await h.request('DELETE', `/api/v1/models/jobs/${id}`)
    hub.release()
    expect(res.status).toBe(204)
    const job = (await h.json('GET', `/api/v1/models/jobs/${id}`)).body
    expect(job.status).toBe('cancelled')
    expect(typeof job.completed_at).toBe('number')
    expect(existsSync(join(repoDir('acme/slow-GGUF'), 'refs', 'main'))).toBe(false)
    expect((await h.request('DELETE', `/api/v1/models/jobs/${id}`)).status).toBe(204)
    expect((await h.request('GET', `/api/v1/models/jobs/${id}`)).status).toBe(404)
  })

  test('two jobs at once both run (listed together while downloading) and both complete', async () => {
    hub.hold()
    const a = await start(h, 'acme/slow-GGUF')
    const b = await start(h, 'acme/other-GGUF')
    await waitFor(async () => {
      const jobs = (await h.json('GET', '/api/v1/models/jobs')).body.jobs as Job[]
      return [a, b].every((id) => jobs.find((j) => j.id === id)?.status === 'downloading')
    }, 10_000)
    hub.release()
    const [ja, jb] = await Promise.all([h.app.downloads.settled(a), h.app.downloads.settled(b)])
    expect([ja.status, jb.status]).toEqual(['completed', 'completed'])
  })
})

describe('download_timeout', () => {
  test('a job that takes longer fails saying so', async () => {
    const quick = await harness({ LLAMACTL_LLAMACPP_CACHE_DIR: cacheRoot, LLAMACTL_HF_ENDPOINT: hub.url, LLAMACTL_LLAMACPP_DOWNLOAD_TIMEOUT: '1' })
    try {
      hub.hold()
      const slow = await download('acme/huge-GGUF', undefined, quick)
      expect(slow.status).toBe('failed')
      expect(slow.error).toContain('took longer than backends.llama-cpp.download_timeout (1 s)')
    } finally {
      hub.release()
      await quick.close()
    }
  })
})

describe('a full disk', () => {
  let mount: string
  let small: Harness
  let mounted = false
  beforeAll(async () => {
    mount = tempDir('llamactl-tmpfs-')
    const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', mount])
    mounted = r.status === 0
    if (!mounted) throw new Error(`this test mounts a 64 KiB tmpfs and needs root: ${r.stderr}`)
    small = await harness({ LLAMACTL_LLAMACPP_CACHE_DIR: mount, LLAMACTL_HF_ENDPOINT: hub.url })
  })
  afterAll(async () => {
    await small?.close()
    if (mounted) spawnSync('umount', [mount])
    rmSync(mount, { recursive: true, force: true })
  })

  test('fails the job with ENOSPC said plainly, and leaves no blob, no partial file and no snapshot link', async () => {
    const job = await download('acme/huge-GGUF', undefined, small)
    expect(job.status).toBe('failed')
    expect(job.error).toContain('the disk is full')
    const dir = repoDir('acme/huge-GGUF', mount)
    expect(readdirSync(join(dir, 'blobs'))).toEqual([])
    expect(existsSync(join(dir, 'snapshots'))).toBe(false)
    expect(existsSync(join(dir, 'refs'))).toBe(false)
    // and the space is free again: a small model fits
    expect((await download('acme/demo-GGUF:Q4_K_M', undefined, small)).status).toBe('completed')
  })
})

describe('private repos and the hub\'s refusals', () => {
  test('a private repo without a token fails with the hub\'s 401 message', async () => {
    const job = await download('acme/private-GGUF')
    expect(job.status).toBe('failed')
    expect(job.error).toContain('401')
    expect(job.error).toContain('Invalid credentials in Authorization header')
  })

  test('with a token from the config it downloads; the token goes to the hub only and is in no answer', async () => {
    const withToken = await harness({ LLAMACTL_LLAMACPP_CACHE_DIR: cacheRoot, LLAMACTL_HF_ENDPOINT: hub.url, LLAMACTL_HF_TOKEN: HUB_TOKEN })
    try {
      const before = hub.seen.length
      const job = await download('acme/private-GGUF', undefined, withToken)
      expect(job.status).toBe('completed')
      const seen = hub.seen.slice(before)
      expect(seen.filter((s) => s.host === 'hub').every((s) => s.authorization)).toBe(true)
      expect(seen.filter((s) => s.host === 'files').length).toBeGreaterThan(0)
      expect(seen.filter((s) => s.host === 'files').some((s) => s.authorization)).toBe(false)
      for (const path of ['/api/v1/models/jobs', '/api/v1/models', `/api/v1/models/jobs/${job.id}`, '/api/v1/config', '/metrics']) {
        expect(await (await withToken.request('GET', path)).text()).not.toContain(HUB_TOKEN)
      }
    } finally {
      await withToken.close()
    }
  })

  test('a repo the hub does not have fails with its 404 message; so does a tag no file has', async () => {
    const missing = await download('acme/nothing-here')
    expect([missing.status, missing.error]).toEqual(['failed', 'acme/nothing-here:main: the hub answered 404: Repository not found'])
    const tag = await download('acme/demo-GGUF:Q2_K')
    expect(tag.status).toBe('failed')
    expect(tag.error).toContain('no GGUF file of acme/demo-GGUF matches the tag "Q2_K"')
    const rev = await download('acme/tiny-st:nobranch', 'safetensors')
    expect([rev.status, rev.error]).toEqual(['failed', 'acme/tiny-st:nobranch: the hub answered 404: Invalid rev id: nobranch'])
  })

  test('a file name that would land outside the cache is refused and nothing is written', async () => {
    const job = await download('acme/evil-GGUF')
    expect(job.status).toBe('failed')
    expect(job.error).toContain('"../../../escape-Q4_K_M.gguf"')
    expect(existsSync(repoDir('acme/evil-GGUF'))).toBe(false)
    expect(readdirSync(join(cacheRoot, '..')).some((n) => n.startsWith('escape'))).toBe(false)
  })
})

describe('bad input changes nothing', () => {
  test('a repo string that is not org/name[:tag], a bad format or body is 400 and starts no job', async () => {
    const before = (await h.json('GET', '/api/v1/models/jobs')).body.jobs.length
    for (const body of [
      { repo: 'noslash' },
      { repo: 'a/b/c' },
      { repo: '../etc:Q4' },
      { repo: 'a/b:' },
      { repo: 'a/b:bad tag' },
      { repo: '/abs' },
      { repo: 'a--b/c' },
      { repo: 42 },
      {},
      { repo: 'a/b', format: 'onnx' },
      { repo: 'a/b', extra: 1 },
      [],
    ]) {
      const res = await h.json('POST', '/api/v1/models/download', body)
      expect([JSON.stringify(body), res.status]).toEqual([JSON.stringify(body), 400])
      expect(typeof res.body.error).toBe('string')
    }
    const res = await h.request('POST', '/api/v1/models/download', '{not json', { 'content-type': 'application/json' })
    expect(res.status).toBe(400)
    expect((await h.json('GET', '/api/v1/models/jobs')).body.jobs.length).toBe(before)
    expect((await h.request('GET', '/api/v1/models/jobs/zz')).status).toBe(400)
    expect((await h.request('GET', '/api/v1/models/jobs/0123456789abcdef')).status).toBe(404)
    expect((await h.request('GET', '/api/v1/models?node=elsewhere')).status).toBe(404)
  })

  test('the routes are management routes: no key is 401, an inference key 403', async () => {
    const guarded = await harness({ LLAMACTL_REQUIRE_MANAGEMENT_AUTH: 'true', LLAMACTL_MANAGEMENT_KEYS: 'mgmt-key-0123456789', LLAMACTL_LLAMACPP_CACHE_DIR: cacheRoot, LLAMACTL_HF_ENDPOINT: hub.url })
    try {
      for (const [method, path] of [['GET', '/api/v1/models'], ['GET', '/api/v1/models/jobs'], ['POST', '/api/v1/models/download'], ['DELETE', '/api/v1/models?repo=acme/demo-GGUF'], ['DELETE', '/api/v1/models/jobs/0123456789abcdef']] as const) {
        expect([path, (await guarded.request(method, path, method === 'POST' ? { repo: 'acme/demo-GGUF' } : undefined)).status]).toEqual([path, 401])
      }
      expect((await guarded.json('GET', '/api/v1/models/jobs')).body.jobs ?? []).toEqual([])
      expect(existsSync(repoDir('acme/demo-GGUF'))).toBe(true)
    } finally {
      await guarded.close()
    }
  })
})

describe('deleting from the cache', () => {
  test('a model a defined instance uses is 409 naming it (by path, and by hf_repo); unused it goes', async () => {
    const job = await download('acme/demo-GGUF:Q4_K_M')
    expect(job.status).toBe('completed')
    const byPath = await h.json('POST', '/api/v1/instances/uses-path', { backend_type: 'llama_cpp', on_demand_start: true, backend_options: { model: realpathSync(job.model_path!) } })
    expect(byPath.status).toBe(201)
    let res = await h.json('DELETE', '/api/v1/models?repo=acme/demo-GGUF&tag=Q4_K_M')
    expect(res.status).toBe(409)
    expect(res.body.error).toContain('"uses-path"')
    res = await h.json('DELETE', '/api/v1/models?repo=acme/demo-GGUF')
    expect(res.status).toBe(409)
    // the other quantization is not in use
    expect((await h.request('DELETE', '/api/v1/models?repo=acme/demo-GGUF&tag=Q8_0')).status).toBe(204)
    expect(snapshotFiles('acme/demo-GGUF')).toEqual(['demo-Q4_K_M.gguf'])
    expect((await h.request('DELETE', '/api/v1/instances/uses-path')).status).toBe(204)

    expect((await h.json('POST', '/api/v1/instances/uses-hf', { backend_type: 'llama_cpp', backend_options: { hf_repo: 'acme/split-GGUF:Q4_K_M' } })).status).toBe(201)
    res = await h.json('DELETE', '/api/v1/models?repo=acme/split-GGUF')
    expect([res.status, res.body.error]).toEqual([409, 'acme/split-GGUF is used by instance "uses-hf"; delete or change it first'])
    expect(existsSync(repoDir('acme/split-GGUF'))).toBe(true)
    expect((await h.request('DELETE', '/api/v1/instances/uses-hf')).status).toBe(204)
    expect((await h.request('DELETE', '/api/v1/models?repo=acme/split-GGUF')).status).toBe(204)
    expect(existsSync(repoDir('acme/split-GGUF'))).toBe(false)

    expect((await h.request('DELETE', '/api/v1/models?repo=acme/demo-GGUF&tag=Q4_K_M')).status).toBe(204)
    expect(existsSync(repoDir('acme/demo-GGUF'))).toBe(false)
    expect((await h.json('DELETE', '/api/v1/models?repo=acme/demo-GGUF')).status).toBe(404)
    expect((await h.json('DELETE', '/api/v1/models')).status).toBe(400)
    expect((await h.json('DELETE', '/api/v1/models?repo=../x')).status).toBe(400)
  })
})

describe('metrics', () => {
  test('/metrics counts downloaded bytes and ended jobs', async () => {
    const text = await (await h.request('GET', '/metrics')).text()
    const bytes = Number(/^llamactl_model_download_bytes_total (\d+)$/m.exec(text)?.[1])
    expect(bytes).toBeGreaterThan(Q4.length)
    expect(text).toMatch(/^llamactl_model_download_jobs_total\{status="completed"\} \d+$/m)
    expect(text).toMatch(/^llamactl_model_download_jobs_total\{status="failed"\} \d+$/m)
    expect(text).toMatch(/^llamactl_model_downloads_active 0$/m)
  })
})



