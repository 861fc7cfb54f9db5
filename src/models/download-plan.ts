/**
 * Which of a repo's files a download takes, from the hub's file tree.
 *
 * GGUF, with a tag: the model files whose name has the tag followed by `.` or `-` (llama.cpp's
 * own rule for `-hf org/name:TAG`, case-insensitive), else those that contain it (the original
 * llamactl's rule); without a tag: Q4_K_M, then Q4_0, then the first model file (the
 * original's order). A split model comes whole (`-00001-of-00003.gguf` and its parts). With it:
 * the projector (`mmproj`) that llama.cpp would pick (same folder, closest bits), `preset.ini`
 * and chat templates (`.jinja`).
 *
 * Safetensors: every `.safetensors` file (else every `.bin`), with the configuration, tokenizer
 * and other small files a model needs (`.json`, `.txt`, `.model`, `.py`, `.jinja`).
 */
import { BadRequest } from '../errors'
import { ggufName, isModelGguf } from './cache'

export type Format = 'gguf' | 'safetensors'

/** One file of the hub's tree (GET /api/models/{repo}/tree/{rev}). */
export interface TreeFile {
  path: string
  size: number
  /** git's blob hash (sha1) */
  oid: string
  lfs?: { oid: string; size: number }
}

export interface Plan {
  files: TreeFile[]
  /** The file an instance is given (the first part of the GGUF), or '' for safetensors (the snapshot). */
  main: string
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

/** A GGUF and the other parts of its split, in order. */
function withParts(all: TreeFile[], f: TreeFile): TreeFile[] {
  const g = ggufName(f.path)!
  if (g.count <= 1) return [f]
  return all
    .filter((o) => {
      const h = ggufName(o.path)
      return h && h.count === g.count && h.prefix === g.prefix
    })
    .sort((a, b) => ggufName(a.path)!.index - ggufName(b.path)!.index)
}

const firstParts = (files: TreeFile[]) => files.filter((f) => ggufName(f.path)!.index === 1)

function pickModels(models: TreeFile[], tag: string): TreeFile[] {
  if (tag) {
    const exact = new RegExp(`${escape(tag)}[.-]`, 'i')
    let hit = firstParts(models.filter((f) => exact.test(f.path)))
    if (!hit.length) hit = firstParts(models.filter((f) => f.path.toLowerCase().includes(tag.toLowerCase())))
    return hit
  }
  for (const q of ['q4_k_m', 'q4_0']) {
    const hit = firstParts(models.filter((f) => f.path.toLowerCase().includes(q)))
    if (hit.length) return [hit[0]!]
  }
  const first = firstParts(models)[0]
  return first ? [first] : []
}

const bitsOf = (tag: string) => {
  const m = /\d+/.exec(tag)
  return m ? Number(m[0]) : 0
}

/** llama.cpp's find_best_sibling for `mmproj`: the deepest shared folder, then the closest bit width. */
function pickProjector(all: TreeFile[], model: string): TreeFile | null {
  const dir = model.includes('/') ? model.slice(0, model.lastIndexOf('/') + 1) : ''
  const modelBits = bitsOf(ggufName(model)?.tag ?? '')
  let best: TreeFile | null = null
  let bestDepth = -1
  let bestDiff = 0
  for (const f of all) {
    if (!f.path.toLowerCase().endsWith('.gguf') || !f.path.includes('mmproj')) continue
    const fdir = f.path.includes('/') ? f.path.slice(0, f.path.lastIndexOf('/') + 1) : ''
    if (!dir.startsWith(fdir)) continue
    const depth = fdir.split('/').length
    const diff = Math.abs(bitsOf(ggufName(f.path)?.tag ?? '') - modelBits)
    if (depth > bestDepth || (depth === bestDepth && diff < bestDiff)) {
      best = f
      bestDepth = depth
      bestDiff = diff
    }
  }
  return best
}

function gguf(all: TreeFile[], tag: string, repo: string): Plan {
  const models = all.filter((f) => isModelGguf(f.path))
  if (!models.length) throw new BadRequest(`no GGUF model file in ${repo}`)
  const picked = pickModels(models, tag)
  if (!picked.length) {
    const names = models.map((f) => f.path).slice(0, 20).join(', ')
    throw new BadRequest(`no GGUF file of ${repo} matches the tag ${JSON.stringify(tag)}; it has: ${names}`)
  }
  const files: TreeFile[] = []
  const add = (f: TreeFile | null) => f && !files.includes(f) && files.push(f)
  for (const p of picked) for (const f of withParts(all, p)) add(f)
  add(pickProjector(all, picked[0]!.path))
  add(all.find((f) => f.path === 'preset.ini') ?? null)
  for (const f of all) if (f.path.toLowerCase().endsWith('.jinja')) add(f)
  return { files, main: picked[0]!.path }
}

const NEEDED = ['.json', '.txt', '.model', '.py', '.jinja']

function safetensors(all: TreeFile[], repo: string): Plan {
  const files = all.filter((f) => !f.path.startsWith('.git/') && f.path !== '.gitattributes')
  const lower = (f: TreeFile) => f.path.toLowerCase()
  const hasSafetensors = files.some((f) => lower(f).endsWith('.safetensors'))
  const weight = hasSafetensors ? '.safetensors' : '.bin'
  const weights = files.filter((f) => lower(f).endsWith(weight))
  if (!weights.length) throw new BadRequest(`no .safetensors (or .bin) weights in ${repo}`)
  return { files: files.filter((f) => lower(f).endsWith(weight) || NEEDED.some((x) => lower(f).endsWith(x))), main: '' }
}

export function planDownload(all: TreeFile[], format: Format, tag: string, repo: string): Plan {
  return format === 'gguf' ? gguf(all, tag, repo) : safetensors(all, repo)
}
