/**
 * The model cache: where downloads are kept, in the Hugging Face hub layout that llama.cpp's own
 * `-hf` reads (common/hf-cache.cpp), so a model downloaded here is the one
 * `LLAMA_CACHE=<cache> llama-server -hf org/name:TAG` finds:
 *
 *   <cache>/models--<org>--<name>/
 *     blobs/<oid>                   file contents, named by the hub's hash (LFS sha256, else git sha1)
 *     blobs/<oid>.incomplete        a download under way or interrupted (resumed from its size)
 *     snapshots/<commit>/<path>     relative symlink to ../../blobs/<oid> (one per file of the repo)
 *     refs/main                     the commit the snapshot is of
 *
 * The cache folder is backends.llama-cpp.cache_dir (LLAMACTL_LLAMACPP_CACHE_DIR, or LLAMA_CACHE).
 * Everything here works on paths it has checked stay inside the repo's folder.
 */
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs'
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path'
import { BadRequest, NotFound } from '../errors'

/** `org/name`: what llama.cpp accepts (letters, digits, `_`; `.` and `-` between them), no `--`. */
const REPO = /^[A-Za-z0-9_]+(?:[.-][A-Za-z0-9_]+)*\/[A-Za-z0-9_]+(?:[.-][A-Za-z0-9_]+)*$/
/** A quantization tag (`Q4_K_M`) or a revision (`main`, a commit). */
const TAG = /^[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,126}[A-Za-z0-9_])?$/
const COMMIT = /^[0-9a-f]{40}$/
const OID = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/

export interface RepoRef {
  repo: string
  /** '' when none was given. */
  tag: string
}

/** `org/name[:tag]`, or a BadRequest saying what is wrong. */
export function parseRepo(input: unknown): RepoRef {
  if (typeof input !== 'string' || input === '') throw new BadRequest('repo is required: "org/name" or "org/name:tag"')
  const shown = JSON.stringify(input.slice(0, 80))
  const colon = input.lastIndexOf(':')
  const repo = colon === -1 ? input : input.slice(0, colon)
  const tag = colon === -1 ? '' : input.slice(colon + 1)
  if (repo.length > 200 || !REPO.test(repo) || repo.includes('--') || repo.includes('..')) {
    throw new BadRequest(`repo must be "org/name" or "org/name:tag" (letters, digits, _ . -), got ${shown}`)
  }
  if (colon !== -1 && !TAG.test(tag)) throw new BadRequest(`the tag after ":" must be letters, digits, _ . - (a quantization like Q4_K_M, or a revision), got ${shown}`)
  return { repo, tag }
}

export function checkRepo(repo: string): void {
  if (parseRepo(repo).tag !== '') throw new BadRequest('repo must be "org/name" without a tag; give the tag separately')
}

export const isCommit = (s: string) => COMMIT.test(s)
export const isOid = (s: string) => OID.test(s)

export function repoFolderName(repo: string): string {
  return `models--${repo.replace('/', '--')}`
}

/**
 * A file name from the hub, as a path relative to a snapshot, or a BadRequest: no `..`, no
 * absolute path, no backslash, no empty or `.` segment, no control character.
 */
export function checkRelative(name: string): string {
  const bad = (why: string) => new BadRequest(`the hub lists a file llamactl refuses to write: ${JSON.stringify(name.slice(0, 200))} (${why})`)
  if (name === '' || name.length > 1000) throw bad('empty or too long')
  // biome-ignore lint: control characters are what is refused
  if (/[\u0000-\u001f\u007f\\]/.test(name)) throw bad('a control character or backslash')
  if (isAbsolute(name) || /^[A-Za-z]:/.test(name)) throw bad('an absolute path')
  for (const seg of name.split('/')) {
    if (seg === '..') throw bad('a ".." segment would leave the cache')
    if (seg === '' || seg === '.') throw bad('an empty or "." segment')
  }
  return name
}

/** One repo's folder in the cache, with the paths inside it. */
export class RepoCache {
  readonly dir: string
  constructor(
    readonly root: string,
    readonly repo: string,
  ) {
    checkRepo(repo)
    this.dir = join(root, repoFolderName(repo))
  }
  blob(oid: string): string {
    if (!isOid(oid)) throw new BadRequest(`the hub gave a file hash llamactl does not take: ${JSON.stringify(oid.slice(0, 80))}`)
    return join(this.dir, 'blobs', oid)
  }
  incomplete(oid: string): string {
    return `${this.blob(oid)}.incomplete`
  }
  snapshotDir(commit: string): string {
    if (!isCommit(commit)) throw new BadRequest(`the hub gave a commit llamactl does not take: ${JSON.stringify(commit.slice(0, 80))}`)
    return join(this.dir, 'snapshots', commit)
  }
  /** Where a file of the repo goes, checked to stay in the snapshot (no `..`, no symlinked folder on the way). */
  snapshotPath(commit: string, name: string): string {
    const base = this.snapshotDir(commit)
    const target = resolve(base, checkRelative(name))
    if (!target.startsWith(base + sep)) throw new BadRequest(`the hub lists a file outside the repo: ${JSON.stringify(name.slice(0, 200))}`)
    // A folder on the way that is a link could lead anywhere: refuse it.
    let at = this.root
    for (const seg of relative(this.root, dirname(target)).split(sep)) {
      at = join(at, seg)
      let st
      try {
        st = lstatSync(at)
      } catch {
        break // not made yet: mkdir makes real folders
      }
      if (st.isSymbolicLink() || !st.isDirectory()) throw new BadRequest(`the hub lists a file under a link or a file: ${JSON.stringify(name.slice(0, 200))}`)
    }
    return target
  }
  ref(name: string): string {
    if (!TAG.test(name)) throw new BadRequest(`bad ref name ${JSON.stringify(name.slice(0, 80))}`)
    return join(this.dir, 'refs', name)
  }

  /** snapshots/<commit>/<name> → the blob, as llama.cpp and the hub's own clients make it (a relative link). */
  link(commit: string, name: string, oid: string): string {
    const path = this.snapshotPath(commit, name)
    const blob = this.blob(oid)
    mkdirSync(dirname(path), { recursive: true })
    try {
      const st = lstatSync(path)
      if (st.isSymbolicLink() && resolve(dirname(path), readlinkSync(path)) === blob) return path
      unlinkSync(path)
    } catch {
      // not there yet
    }
    symlinkSync(relative(dirname(path), blob), path)
    return path
  }

  /** refs/<name> = commit, written whole (a temporary file renamed). */
  writeRef(name: string, commit: string): void {
    const path = this.ref(name)
    mkdirSync(dirname(path), { recursive: true })
    const tmp = `${path}.tmp`
    writeFileSync(tmp, commit)
    renameSync(tmp, path)
  }
}

// --- the cache's contents ------------------------------------------------------------------------

export type FileType = 'gguf' | 'mmproj' | 'preset' | 'other'

/** The original llamactl's shape (webui/src/types/model.ts CachedModel). */
export interface CachedFile {
  name: string
  path: string
  size_bytes: number
  type: FileType
}
export interface CachedModel {
  node: string
  repo: string
  tag: string
  files: CachedFile[]
  size_bytes: number
}

export function fileType(name: string): FileType {
  const lower = name.toLowerCase()
  if (lower.endsWith('.gguf')) return lower.includes('mmproj') ? 'mmproj' : 'gguf'
  if (lower === 'preset.ini' || lower.endsWith('/preset.ini')) return 'preset'
  return 'other'
}

const SPLIT = /^(.+)-(\d{5})-of-(\d{5})$/i
const TAG_AT_END = /[-.]([A-Z0-9_]+)$/i

/** llama.cpp's reading of a GGUF name (get_gguf_split_info): the prefix without the split suffix, the tag, the part. */
export function ggufName(path: string): { prefix: string; tag: string; index: number; count: number } | null {
  if (!path.toLowerCase().endsWith('.gguf')) return null
  let prefix = path.slice(0, -5)
  let index = 1
  let count = 1
  const m = SPLIT.exec(prefix)
  if (m) {
    prefix = m[1]!
    index = Number(m[2])
    count = Number(m[3])
  }
  const t = TAG_AT_END.exec(prefix)
  return { prefix, tag: t ? t[1]!.toUpperCase() : '', index, count }
}

/** A GGUF that is a model (not a projector or another side file), as llama.cpp tells them apart. */
export function isModelGguf(path: string): boolean {
  if (!path.toLowerCase().endsWith('.gguf')) return false
  const base = path.slice(path.lastIndexOf('/') + 1)
  return !['mmproj', 'imatrix', 'mtp-', 'eagle3-', 'dflash-', 'dspark-'].some((w) => base.includes(w))
}

/** The commit a repo folder's refs point at: refs/main first, else the first valid one (llama.cpp's get_cached_ref). */
function cachedCommits(dir: string): { ref: string; commit: string }[] {
  const out: { ref: string; commit: string }[] = []
  let names: string[] = []
  try {
    names = readdirSync(join(dir, 'refs'))
  } catch {
    return out
  }
  for (const ref of names.sort((a, b) => (a === 'main' ? -1 : b === 'main' ? 1 : a.localeCompare(b)))) {
    if (ref.endsWith('.tmp')) continue
    try {
      const commit = readFileSync(join(dir, 'refs', ref), 'utf8').trim()
      if (isCommit(commit)) out.push({ ref, commit })
    } catch {
      // not a readable file
    }
  }
  return out
}

/** Every file of a snapshot, as relative paths, with the blob it resolves to (links that resolve outside the repo are left out). */
function snapshotFiles(dir: string, snapshot: string): { name: string; path: string; real: string; size: number }[] {
  const out: { name: string; path: string; real: string; size: number }[] = []
  const walk = (at: string, rel: string) => {
    let entries: import('node:fs').Dirent[]
    try {
      entries = readdirSync(at, { withFileTypes: true })
    } catch {
      return
    }
    for (const e of entries) {
      const path = join(at, e.name)
      const name = rel ? `${rel}/${e.name}` : e.name
      if (e.isDirectory()) walk(path, name)
      else if (e.isSymbolicLink() || e.isFile()) {
        const real = e.isSymbolicLink() ? resolve(dirname(path), readlinkSync(path)) : path
        if (!real.startsWith(dir + sep)) continue
        try {
          out.push({ name, path, real, size: statSync(real).size })
        } catch {
          // a dangling link
        }
      }
    }
  }
  walk(snapshot, '')
  return out.sort((a, b) => a.name.localeCompare(b.name))
}

interface Group {
  tag: string
  files: ReturnType<typeof snapshotFiles>
}

/**
 * A snapshot as models: each GGUF model (its split parts together) is one, tagged by its
 * quantization as llama.cpp reads it from the name, with the snapshot's projector, preset and
 * other files; a snapshot without GGUF models (safetensors) is one, tagged by its ref.
 */
function groupsOf(files: ReturnType<typeof snapshotFiles>, ref: string): Group[] {
  const models = new Map<string, ReturnType<typeof snapshotFiles>>()
  const shared: ReturnType<typeof snapshotFiles> = []
  for (const f of files) {
    if (isModelGguf(f.name)) {
      const g = ggufName(f.name)!
      const tag = /\d/.test(g.tag) ? g.tag : g.prefix.slice(g.prefix.lastIndexOf('/') + 1)
      models.set(tag, [...(models.get(tag) ?? []), f])
    } else shared.push(f)
  }
  if (!models.size) return shared.length ? [{ tag: ref, files: shared }] : []
  return [...models].map(([tag, own]) => ({ tag, files: [...own, ...shared] }))
}

function toModel(node: string, repo: string, g: Group): CachedModel {
  const blobs = new Map(g.files.map((f) => [f.real, f.size]))
  return {
    node,
    repo,
    tag: g.tag,
    files: g.files.map((f) => ({ name: f.name, path: f.path, size_bytes: f.size, type: fileType(f.name) })),
    size_bytes: [...blobs.values()].reduce((a, b) => a + b, 0),
  }
}

function repoOfFolder(name: string): string | null {
  if (!name.startsWith('models--')) return null
  const parts = name.slice(8).split('--')
  if (parts.length !== 2) return null
  const repo = parts.join('/')
  return REPO.test(repo) ? repo : null
}

/** Every model in the cache (what GET /api/v1/models answers). */
export function scanCache(root: string, node: string): CachedModel[] {
  const out: CachedModel[] = []
  let names: string[] = []
  try {
    names = readdirSync(root)
  } catch {
    return out
  }
  for (const name of names.sort()) {
    const repo = repoOfFolder(name)
    if (!repo) continue
    const dir = join(root, name)
    const seen = new Set<string>()
    for (const { ref, commit } of cachedCommits(dir)) {
      if (seen.has(commit)) continue
      seen.add(commit)
      const snap = join(dir, 'snapshots', commit)
      if (!existsSync(snap)) continue
      for (const g of groupsOf(snapshotFiles(dir, snap), ref)) out.push(toModel(node, repo, g))
    }
  }
  return out
}

/** Blobs no snapshot of the repo links to any more. */
function unreferencedBlobs(dir: string): string[] {
  const used = new Set<string>()
  let snaps: string[] = []
  try {
    snaps = readdirSync(join(dir, 'snapshots'))
  } catch {
    // none
  }
  for (const s of snaps) for (const f of snapshotFiles(dir, join(dir, 'snapshots', s))) used.add(f.real)
  let blobs: string[] = []
  try {
    blobs = readdirSync(join(dir, 'blobs'))
  } catch {
    return []
  }
  return blobs.map((b) => join(dir, 'blobs', b)).filter((b) => !b.endsWith('.incomplete') && !used.has(b))
}

/** The files `deleteModel` would remove: every model of the repo, or those of the tag. */
export function modelsToDelete(root: string, node: string, repo: string, tag: string): CachedModel[] {
  checkRepo(repo)
  const all = scanCache(root, node).filter((m) => m.repo === repo)
  const chosen = tag === '' ? all : all.filter((m) => m.tag.toLowerCase() === tag.toLowerCase())
  if (!chosen.length) throw new NotFound(tag === '' ? `model not found in the cache: ${repo}` : `model not found in the cache: ${repo}:${tag}`)
  return chosen
}

/**
 * Removes a repo's folder (no tag), or one tag's files: its GGUF parts, and the files it shares
 * with the snapshot's other models once none is left; then blobs nothing links to, an empty
 * snapshot and its refs, an empty repo folder.
 */
export function deleteModel(root: string, node: string, repo: string, tag: string): void {
  const chosen = modelsToDelete(root, node, repo, tag)
  const rc = new RepoCache(root, repo)
  if (tag === '') {
    rmSync(rc.dir, { recursive: true, force: true })
    return
  }
  const gone = new Set(chosen.map((m) => m.tag))
  const keep = new Set(scanCache(root, node).filter((m) => m.repo === repo && !gone.has(m.tag)).flatMap((m) => m.files.map((f) => f.path)))
  for (const m of chosen) for (const f of m.files) if (!keep.has(f.path)) rmSync(f.path, { force: true })
  for (const b of unreferencedBlobs(rc.dir)) rmSync(b, { force: true })
  // snapshots left empty, and the refs pointing at them
  for (const { ref, commit } of cachedCommits(rc.dir)) {
    const snap = join(rc.dir, 'snapshots', commit)
    if (!existsSync(snap) || !snapshotFiles(rc.dir, snap).length) {
      rmSync(snap, { recursive: true, force: true })
      rmSync(join(rc.dir, 'refs', ref), { force: true })
    }
  }
  if (!cachedCommits(rc.dir).length) rmSync(rc.dir, { recursive: true, force: true })
}
