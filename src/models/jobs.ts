/**
 * Download jobs: one per POST /api/v1/models/download, run in the background, kept in memory
 * (24 hours after they end, at most 200 ended ones). Jobs run at once; two jobs wanting the same
 * file share its download (the second waits for the first). Progress is in each job, sent to
 * the page's event stream as it changes, and counted in /metrics.
 */
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import type { Config } from '../config/load'
import { AppError, Conflict, NotFound } from '../errors'
import type { Registry } from '../metrics/registry'
import { RepoCache, checkRelative, deleteModel, modelsToDelete, scanCache, type CachedModel } from './cache'
import { DownloadError, downloadInfo, fetchBlob, type Hub, isAbort, listTree, resolveCommit, type Writer } from './download'
import { type Format, planDownload } from './download-plan'

export type JobStatus = 'queued' | 'downloading' | 'completed' | 'failed' | 'cancelled'

export interface Progress {
  bytes_downloaded: number
  total_bytes: number
  current_file: string
  files_done: number
  files_total: number
  /** Over the last few seconds. */
  speed_bytes_per_second: number
  /** At that speed; null until there is one. */
  remaining_seconds: number | null
}

/** The original's job (webui/src/types/model.ts DownloadJob), with more progress and the format. */
export interface JobView {
  id: string
  repo: string
  tag: string
  format: Format
  status: JobStatus
  progress: Progress
  error: string | null
  created_at: number
  completed_at: number | null
  model_path?: string
}

interface Job extends JobView {
  abort: AbortController
  samples: { t: number; bytes: number }[]
  done: Promise<void>
}

const RETAIN_MS = 24 * 3600 * 1000
const MAX_ENDED = 200
const SPEED_WINDOW_MS = 5000
/** Progress events for one job at most this often. */
const EMIT_EVERY_MS = 200

export interface DownloadsOptions {
  /** Tests: stands in for the file system's writes (a disk that fills). */
  writer?: Writer
  registry?: Registry
}

const ended = (s: JobStatus) => s === 'completed' || s === 'failed' || s === 'cancelled'

export class ModelDownloads {
  private jobs = new Map<string, Job>()
  private listeners = new Set<(job: JobView) => void>()
  /** blob path → its download under way, shared by the jobs that need it. */
  private inFlight = new Map<string, Promise<void>>()
  private bytesTotal
  private jobsTotal

  constructor(
    readonly config: Config,
    private opts: DownloadsOptions = {},
  ) {
    const r = opts.registry
    this.bytesTotal = r?.counter('llamactl_model_download_bytes_total', 'Bytes of model files downloaded')
    this.jobsTotal = r?.counter('llamactl_model_download_jobs_total', 'Download jobs ended, by how', ['status'])
    if (r) {
      r.gauge('llamactl_model_downloads_active', 'Download jobs queued or downloading now').collect = () => [[[], this.active().length]]
      r.gauge('llamactl_model_download_speed_bytes_per_second', 'Bytes per second over every download now').collect = () => [
        [[], this.active().reduce((a, j) => a + this.speed(j), 0)],
      ]
      r.gauge('llamactl_model_download_remaining_bytes', 'Bytes the downloads under way have still to fetch').collect = () => [
        [[], this.active().reduce((a, j) => a + Math.max(0, j.progress.total_bytes - j.progress.bytes_downloaded), 0)],
      ]
    }
  }

  get cacheDir(): string {
    return this.config.backends['llama-cpp'].cache_dir
  }

  private get node(): string {
    return this.config.local_node || 'main'
  }

  private hub(signal: AbortSignal): Hub {
    const bc = this.config.backends['llama-cpp']
    return { endpoint: bc.hf_endpoint, token: bc.hf_token, signal }
  }

  private active(): Job[] {
    return [...this.jobs.values()].filter((j) => !ended(j.status))
  }

  /** What changes: every job's view as it changes (progress at most a few times a second). */
  subscribe(fn: (job: JobView) => void): () => void {
    this.listeners.add(fn)
    return () => this.listeners.delete(fn)
  }

  private emit(job: Job) {
    const v = view(job)
    for (const fn of this.listeners) {
      try {
        fn(v)
      } catch {
        // a listener's failure is its own
      }
    }
  }

  private prune() {
    const now = Date.now()
    const done = [...this.jobs.values()].filter((j) => ended(j.status))
    for (const j of done) if (j.completed_at !== null && now - j.completed_at * 1000 > RETAIN_MS) this.jobs.delete(j.id)
    const left = done.filter((j) => this.jobs.has(j.id))
    for (const j of left.slice(0, Math.max(0, left.length - MAX_ENDED))) this.jobs.delete(j.id)
  }

  /** Starts a job (repo and tag already checked). */
  start(repo: string, tag: string, format: Format): JobView {
    this.prune()
    const id = randomBytes(8).toString('hex')
    const job: Job = {
      id,
      repo,
      tag: tag || 'main',
      format,
      status: 'queued',
      progress: { bytes_downloaded: 0, total_bytes: 0, current_file: '', files_done: 0, files_total: 0, speed_bytes_per_second: 0, remaining_seconds: null },
      error: null,
      created_at: Math.floor(Date.now() / 1000),
      completed_at: null,
      abort: new AbortController(),
      samples: [],
      done: Promise.resolve(),
    }
    this.jobs.set(id, job)
    job.done = this.run(job, tag).catch(() => {})
    this.emit(job)
    return view(job)
  }

  list(): JobView[] {
    this.prune()
    return [...this.jobs.values()].sort((a, b) => a.created_at - b.created_at || a.id.localeCompare(b.id)).map(view)
  }

  get(id: string): JobView {
    const j = this.jobs.get(id)
    if (!j) throw new NotFound(`no download job ${JSON.stringify(id.slice(0, 40))}`)
    return view(j)
  }

  /** Cancels a queued or running job; forgets an ended one (the original's DELETE). */
  async cancelOrForget(id: string): Promise<void> {
    const j = this.jobs.get(id)
    if (!j) throw new NotFound(`no download job ${JSON.stringify(id.slice(0, 40))}`)
    if (ended(j.status)) {
      this.jobs.delete(id)
      return
    }
    j.abort.abort()
    await j.done
  }

  /** Waits for a job to end (tests, shutdown). */
  async settled(id: string): Promise<JobView> {
    const j = this.jobs.get(id)
    if (!j) throw new NotFound(`no download job ${id}`)
    await j.done
    return view(j)
  }

  models(): CachedModel[] {
    return scanCache(this.cacheDir, this.node)
  }

  /**
   * Deletes a cached model unless an instance uses it (`users` names them); a download of the
   * repo under way is a conflict too.
   */
  delete(repo: string, tag: string, users: (m: CachedModel[]) => string[]): void {
    const chosen = modelsToDelete(this.cacheDir, this.node, repo, tag)
    const busy = this.active().find((j) => j.repo === repo)
    if (busy) throw new Conflict(`${repo} is being downloaded (job ${busy.id}); cancel it first`)
    const names = users(chosen)
    if (names.length) throw new Conflict(`${repo}${tag ? `:${tag}` : ''} is used by instance ${names.map((n) => JSON.stringify(n)).join(', ')}; delete or change ${names.length > 1 ? 'them' : 'it'} first`)
    deleteModel(this.cacheDir, this.node, repo, tag)
  }

  async close(): Promise<void> {
    for (const j of this.active()) j.abort.abort()
    await Promise.all([...this.jobs.values()].map((j) => j.done))
  }

  private speed(j: Job): number {
    const now = performance.now()
    j.samples = j.samples.filter((s) => now - s.t <= SPEED_WINDOW_MS)
    if (j.samples.length < 2) return 0
    const first = j.samples[0]!
    const bytes = j.samples.slice(1).reduce((a, s) => a + s.bytes, 0)
    const secs = (now - first.t) / 1000
    return secs > 0 ? Math.round(bytes / secs) : 0
  }

  private lastEmit = new Map<string, number>()
  /** A progress event held back by the rate limit, sent when its turn comes (so a stalled transfer still shows where it stands). */
  private trailing = new Map<string, ReturnType<typeof setTimeout>>()
  private progressed(j: Job, n: number) {
    j.progress.bytes_downloaded += n
    j.samples.push({ t: performance.now(), bytes: n })
    this.bytesTotal?.inc([], n)
    const wait = EMIT_EVERY_MS - (performance.now() - (this.lastEmit.get(j.id) ?? 0))
    if (wait <= 0) this.emitProgress(j)
    else if (!this.trailing.has(j.id)) this.trailing.set(j.id, setTimeout(() => this.emitProgress(j), wait))
  }

  private emitProgress(j: Job) {
    clearTimeout(this.trailing.get(j.id))
    this.trailing.delete(j.id)
    if (ended(j.status)) return
    this.lastEmit.set(j.id, performance.now())
    this.refreshRates(j)
    this.emit(j)
  }

  private refreshRates(j: Job) {
    const speed = this.speed(j)
    j.progress.speed_bytes_per_second = speed
    const left = Math.max(0, j.progress.total_bytes - j.progress.bytes_downloaded)
    j.progress.remaining_seconds = speed > 0 ? Math.ceil(left / speed) : left === 0 ? 0 : null
  }

  private finish(j: Job, status: JobStatus, error: string | null = null) {
    j.status = status
    j.error = error
    j.completed_at = Math.floor(Date.now() / 1000)
    j.progress.speed_bytes_per_second = 0
    j.progress.remaining_seconds = status === 'completed' ? 0 : null
    this.lastEmit.delete(j.id)
    clearTimeout(this.trailing.get(j.id))
    this.trailing.delete(j.id)
    this.jobsTotal?.inc([status])
    this.emit(j)
  }

  private async run(j: Job, tag: string): Promise<void> {
    const bc = this.config.backends['llama-cpp']
    // download_timeout: a timer of our own, cleared when the job ends (AbortSignal.timeout's would outlive it)
    const late = new AbortController()
    const timer = setTimeout(() => late.abort(), bc.download_timeout * 1000)
    const signal = AbortSignal.any([j.abort.signal, late.signal])
    const hub = this.hub(signal)
    try {
      if (hub.token && !hub.token.startsWith('hf_')) throw new DownloadError('the configured Hugging Face token (backends.llama-cpp.hf_token or HF_TOKEN) does not start with hf_')
      j.status = 'downloading'
      this.emit(j)
      // GGUF: the tag picks files, the revision is the default branch; safetensors: the tag is the revision.
      const revision = j.format === 'safetensors' && tag ? tag : 'main'
      const commit = await resolveCommit(hub, j.repo, revision)
      const tree = await listTree(hub, j.repo, commit)
      const rc = new RepoCache(this.cacheDir, j.repo)
      // Every name the hub lists is checked, not only those taken: a hub listing paths out of the cache is not trusted.
      for (const f of tree) checkRelative(f.path)
      const plan = planDownload(tree, j.format, tag, j.repo)
      for (const f of plan.files) rc.snapshotPath(commit, f.path)
      j.progress.files_total = plan.files.length
      j.progress.total_bytes = plan.files.reduce((a, f) => a + (f.lfs?.size ?? f.size), 0)
      this.emit(j)
      await mkdir(rc.dir, { recursive: true })
      for (const f of plan.files) {
        signal.throwIfAborted()
        const oid = f.lfs?.oid ?? f.oid
        const blob = rc.blob(oid)
        j.progress.current_file = f.path
        this.emit(j)
        if (!existsSync(blob)) await this.fetchShared(j, hub, commit, f, rc, blob)
        else j.progress.bytes_downloaded += f.lfs?.size ?? f.size
        rc.link(commit, f.path, oid)
        j.progress.files_done++
        this.refreshRates(j)
        this.emit(j)
      }
      rc.writeRef(revision, commit)
      j.progress.current_file = ''
      j.model_path = plan.main ? rc.snapshotPath(commit, plan.main) : rc.snapshotDir(commit)
      this.finish(j, 'completed')
    } catch (e) {
      if (j.abort.signal.aborted) this.finish(j, 'cancelled', 'cancelled')
      else if (late.signal.aborted) this.finish(j, 'failed', `the download took longer than backends.llama-cpp.download_timeout (${bc.download_timeout} s); what it fetched is kept and resumed by the next download`)
      else this.finish(j, 'failed', failureText(e, j.progress.current_file, hub.token))
    } finally {
      clearTimeout(timer)
    }
  }

  /** One file, shared with any other job fetching the same blob right now. */
  private async fetchShared(j: Job, hub: Hub, commit: string, f: import('./download-plan').TreeFile, rc: RepoCache, blob: string) {
    for (;;) {
      const other = this.inFlight.get(blob)
      if (!other) break
      await other.catch(() => {})
      if (existsSync(blob)) {
        j.progress.bytes_downloaded += f.lfs?.size ?? f.size
        return
      }
    }
    const mine = (async () => {
      const info = await downloadInfo(hub, j.repo, commit, f)
      const want = f.lfs ?? { oid: f.oid, size: f.size }
      if (info.size !== want.size) throw new DownloadError(`${f.path}: the hub's tree says ${want.size} bytes, its file server ${info.size}`)
      if (/^[0-9a-f]{40,64}$/.test(info.etag) && info.etag !== want.oid) {
        throw new DownloadError(`${f.path}: the file server's ETag ${info.etag} is not the hash the tree lists (${want.oid})`)
      }
      await fetchBlob({
        hub,
        url: info.url,
        file: f,
        blob,
        incomplete: rc.incomplete(want.oid),
        writer: this.opts.writer,
        onStart: (already) => (j.progress.bytes_downloaded += already),
        onBytes: (n) => this.progressed(j, n),
      })
    })()
    this.inFlight.set(blob, mine)
    try {
      await mine
    } finally {
      this.inFlight.delete(blob)
    }
  }
}

function view(j: Job): JobView {
  const { abort: _a, samples: _s, done: _d, ...rest } = j
  return { ...rest, progress: { ...j.progress } }
}

/** A failure as the job says it: never the token, never a stack. */
function failureText(e: unknown, file: string, token: string): string {
  const code = (e as NodeJS.ErrnoException)?.code
  let text: string
  if (code === 'ENOSPC') text = `the disk is full${file ? ` (writing ${file})` : ''}; nothing was kept of that file`
  else if (code === 'EACCES' || code === 'EROFS') text = `cannot write to the cache (${code})${file ? ` writing ${file}` : ''}`
  else if (e instanceof DownloadError || e instanceof AppError) text = e.message
  else if (isAbort(e)) text = 'the download was stopped'
  else text = `${file ? `${file}: ` : ''}${(e as Error)?.message ?? String(e)}`
  return token ? text.split(token).join('[token]') : text
}
