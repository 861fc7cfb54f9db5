/**
 * Talking to the hub, and fetching one file into the cache.
 *
 * The hub's API is called with `@huggingface/hub` (model info for the commit, the file tree,
 * the file's download info: size, ETag, where it is served from). The file's bytes are fetched
 * here, not with the library's `downloadFile`/`downloadFileToCacheDir`: its blob hides the HTTP
 * status of a ranged read (a server that ignores `Range` and sends the whole file with 200
 * cannot be told from a 206, and the bytes would be appended to the partial file), and
 * `downloadFileToCacheDir` neither resumes nor checks hashes, and files its snapshot under the
 * file's last commit rather than the revision's, where llama.cpp does not look. See docs/models.md.
 *
 * A file is written to blobs/<oid>.incomplete, resumed from that file's size with a Range
 * request, checked (size, and the hash the tree gives: sha256 for LFS files, git's blob sha1
 * for the others) and only then renamed to blobs/<oid>. The token is sent to the hub's own
 * origin only, never to the file host a redirect leads to, and never appears in an error.
 */
import { fileDownloadInfo, HubApiError, listFiles, modelInfo } from '@huggingface/hub'
import { createReadStream } from 'node:fs'
import { mkdir, open, rename, rm, stat } from 'node:fs/promises'
import { dirname } from 'node:path'
import type { TreeFile } from './download-plan'

export interface Hub {
  endpoint: string
  /** '' for none. */
  token: string
  signal: AbortSignal
}

/** A failure with a message fit for the job (the hub's own words where it gave some). */
export class DownloadError extends Error {}

/** The hub said no (401, 403, 404, …): its message, without the token or the request's URL. */
function hubMessage(e: unknown, what: string): Error {
  if (e instanceof HubApiError) {
    const data = e.data as { error?: unknown; message?: unknown } | undefined
    const said = typeof data?.error === 'string' ? data.error : typeof data?.message === 'string' ? data.message : ''
    return new DownloadError(`${what}: the hub answered ${e.statusCode}${said ? `: ${said.slice(0, 300)}` : ''}`)
  }
  if (e instanceof DownloadError) return e
  if (isAbort(e)) return e as Error
  return new DownloadError(`${what}: ${(e as Error)?.message ?? String(e)}`)
}

export const isAbort = (e: unknown) => (e as Error)?.name === 'AbortError' || (e as Error)?.name === 'TimeoutError'

function hubFetch(hub: Hub): typeof fetch {
  return ((input: RequestInfo | URL, init?: RequestInit) => fetch(input, { ...init, signal: hub.signal })) as typeof fetch
}

function lib(hub: Hub) {
  return { hubUrl: hub.endpoint.replace(/\/+$/, ''), accessToken: hub.token || undefined, fetch: hubFetch(hub) }
}

/** The commit a revision (a branch, a tag or a commit) is at. */
export async function resolveCommit(hub: Hub, repo: string, revision: string): Promise<string> {
  try {
    const info = await modelInfo({ name: repo, revision, additionalFields: ['sha'], ...lib(hub) })
    const sha = (info as { sha?: unknown }).sha
    if (typeof sha !== 'string' || !/^[0-9a-f]{40}$/.test(sha)) throw new DownloadError(`${repo}: the hub gave no commit for ${revision}`)
    return sha
  } catch (e) {
    throw hubMessage(e, `${repo}:${revision}`)
  }
}

/** Every file of the repo at the commit. */
export async function listTree(hub: Hub, repo: string, commit: string): Promise<TreeFile[]> {
  const out: TreeFile[] = []
  try {
    for await (const f of listFiles({ repo, revision: commit, recursive: true, ...lib(hub) })) {
      if (f.type !== 'file') continue
      out.push({ path: f.path, size: f.size, oid: f.oid ?? '', ...(f.lfs ? { lfs: { oid: f.lfs.oid, size: f.lfs.size } } : {}) })
      if (out.length > 100_000) throw new DownloadError(`${repo}: the hub lists more than 100000 files`)
    }
  } catch (e) {
    throw hubMessage(e, `${repo}`)
  }
  return out
}

const strip = (etag: string) => etag.replace(/^W\//, '').replace(/^"|"$/g, '')

/** Where the file is served from, its size and ETag, as the hub says. */
export async function downloadInfo(hub: Hub, repo: string, commit: string, file: TreeFile): Promise<{ url: string; size: number; etag: string }> {
  let info
  try {
    info = await fileDownloadInfo({ repo, path: file.path, revision: commit, ...lib(hub) })
  } catch (e) {
    throw hubMessage(e, file.path)
  }
  if (!info) throw new DownloadError(`${file.path}: the hub has no such file at ${commit.slice(0, 12)}`)
  return { url: info.url, size: info.size, etag: strip(info.etag) }
}

/** The hash the tree gives for a file, and how to compute it. */
export function expectedHash(file: TreeFile): { algo: 'sha256' | 'sha1'; hex: string; size: number; git: boolean } {
  if (file.lfs) return { algo: 'sha256', hex: file.lfs.oid, size: file.lfs.size, git: false }
  return { algo: 'sha1', hex: file.oid, size: file.size, git: true }
}

export interface Writer {
  /** Opens the incomplete file for writing at `offset` (0: from the start, truncating). */
  open(path: string, offset: number): Promise<{ write(chunk: Uint8Array): Promise<void>; close(): Promise<void> }>
}

export const fileWriter: Writer = {
  async open(path, offset) {
    const fh = await open(path, offset > 0 ? 'r+' : 'w', 0o644)
    if (offset === 0) await fh.truncate(0)
    let pos = offset
    return {
      async write(chunk) {
        let done = 0
        while (done < chunk.length) {
          const { bytesWritten } = await fh.write(chunk, done, chunk.length - done, pos)
          done += bytesWritten
          pos += bytesWritten
        }
      },
      close: () => fh.close(),
    }
  },
}

/**
 * GET the file from `offset`, following redirects by hand: Authorization goes to the hub's
 * origin only. Answers the response and the offset it starts at (0 when the server sent the
 * whole file).
 */
async function get(hub: Hub, url: string, offset: number, name: string): Promise<{ res: Response; from: number }> {
  const hubOrigin = new URL(hub.endpoint).origin
  let at = new URL(url)
  for (let hop = 0; hop < 6; hop++) {
    const headers: Record<string, string> = { 'user-agent': 'llamactl' }
    if (hub.token && at.origin === hubOrigin) headers.authorization = `Bearer ${hub.token}`
    if (offset > 0) headers.range = `bytes=${offset}-`
    const res = await fetch(at, { headers, redirect: 'manual', signal: hub.signal })
    if (res.status >= 300 && res.status < 400 && res.headers.get('location')) {
      await res.body?.cancel()
      at = new URL(res.headers.get('location')!, at)
      if (at.protocol !== 'https:' && at.protocol !== 'http:') throw new DownloadError(`${name}: the hub redirected to a ${at.protocol} URL`)
      continue
    }
    if (res.status === 416 && offset > 0) {
      await res.body?.cancel()
      return get(hub, at.href, 0, name)
    }
    if (res.status === 206) {
      const m = /^bytes (\d+)-\d+\/(?:\d+|\*)$/.exec(res.headers.get('content-range') ?? '')
      if (!m || Number(m[1]) !== offset) {
        await res.body?.cancel()
        throw new DownloadError(`${name}: the server answered a range other than the one asked for`)
      }
      return { res, from: offset }
    }
    if (res.status === 200) return { res, from: 0 }
    let said = ''
    try {
      const text = await res.text()
      const j = JSON.parse(text) as { error?: unknown }
      said = typeof j.error === 'string' ? j.error : ''
    } catch {
      // not JSON
    }
    throw new DownloadError(`${name}: the file server answered ${res.status}${said ? `: ${said.slice(0, 300)}` : ''}`)
  }
  throw new DownloadError(`${name}: too many redirects`)
}

async function hashPrefix(path: string, bytes: number, hasher: Bun.CryptoHasher): Promise<void> {
  if (bytes === 0) return
  const stream = createReadStream(path, { start: 0, end: bytes - 1 })
  for await (const chunk of stream) hasher.update(chunk as Buffer)
}

/**
 * Fetches one file into `blob` by way of `incomplete`, resuming what is there. Reports new
 * bytes through `onBytes` (and, once, `onStart` with the bytes already there). Throws
 * DownloadError on a bad size or hash (the incomplete file is removed), an AbortError when
 * cancelled (the incomplete file is kept, to resume), and the write error (ENOSPC) as it is.
 */
export async function fetchBlob(args: {
  hub: Hub
  url: string
  file: TreeFile
  blob: string
  incomplete: string
  writer?: Writer
  onStart?: (already: number) => void
  onBytes: (n: number) => void
}): Promise<void> {
  const { hub, file, incomplete } = args
  const want = expectedHash(file)
  await mkdir(dirname(incomplete), { recursive: true })
  let have = 0
  try {
    have = (await stat(incomplete)).size
  } catch {
    have = 0
  }
  if (have > want.size) {
    await rm(incomplete, { force: true })
    have = 0
  }
  const { res, from } = await get(hub, args.url, have, file.path)
  const hasher = new Bun.CryptoHasher(want.algo)
  if (want.git) hasher.update(`blob ${want.size}\0`)
  await hashPrefix(incomplete, from, hasher)
  args.onStart?.(from)
  const out = await (args.writer ?? fileWriter).open(incomplete, from)
  let size = from
  try {
    const reader = res.body!.getReader()
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      size += value.length
      if (size > want.size) throw new DownloadError(`${file.path}: the server sent more than the ${want.size} bytes the hub lists`)
      await out.write(value)
      hasher.update(value)
      args.onBytes(value.length)
    }
  } catch (e) {
    await out.close().catch(() => {})
    // A bad transfer is discarded; so is what a full disk left (it frees the space). A cut or cancelled one is kept.
    if (e instanceof DownloadError || (e as NodeJS.ErrnoException).code === 'ENOSPC') await rm(incomplete, { force: true })
    throw e
  }
  await out.close()
  if (size !== want.size) {
    // A cut transfer: kept, to be resumed by the next download of it.
    throw new DownloadError(`${file.path}: the transfer ended after ${size} of ${want.size} bytes; downloading it again resumes from there`)
  }
  const got = hasher.digest('hex')
  if (got !== want.hex.toLowerCase()) {
    await rm(incomplete, { force: true })
    throw new DownloadError(`${file.path}: the file's ${want.algo} is ${got}, the hub lists ${want.hex}; the download was discarded`)
  }
  await rename(incomplete, args.blob)
}
