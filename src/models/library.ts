/**
 * The model library: every GGUF model under the download cache and the configured
 * `models_dirs`, with what its header says. Headers are read once per file and kept until the
 * file changes (its size or modification time).
 */
import { createHash } from 'node:crypto'
import { readdirSync, statSync, type Stats } from 'node:fs'
import { basename, join, resolve } from 'node:path'
import { parseGgufShardFilename } from '@huggingface/gguf'
import type { Config } from '../config/load'
import { NotFound } from '../errors'
import { readGguf, type GgufInfo } from './gguf'

/**
 * Where downloaded models are: backends.llama-cpp.cache_dir, which the config loader fills with
 * llama.cpp's default when it is not set (src/config/load.ts), as the downloads use it.
 */
export function cacheDir(config: Config): string {
  return resolve(config.backends['llama-cpp'].cache_dir)
}

/** One model of the library: its header fields (no tensor list), or why it could not be read. */
export interface LibraryModel {
  id: string
  /** The first (or only) file; what an instance's `model` names. */
  path: string
  file: string
  /** The folder it was found under (the cache or one of models_dirs). */
  root: string
  /** Multimodal projector files are listed, but are not models to run on their own. */
  mmproj: boolean
  split: { files: string[]; complete: boolean } | null
  header: Omit<GgufInfo, 'tensors' | 'files'> | null
  error: string | null
}

const MAX_DEPTH = 8
const MAX_ENTRIES = 20000

/** id: the first 16 hex digits of the SHA-256 of the model's path (stable while the file stays). */
export function modelId(path: string): string {
  return createHash('sha256').update(path).digest('hex').slice(0, 16)
}

export class ModelLibrary {
  private headers = new Map<string, { key: string; info: GgufInfo | Error }>()

  constructor(private config: Config) {}

  roots(): string[] {
    return [...new Set([cacheDir(this.config), ...this.config.models_dirs.map((d) => resolve(d))])]
  }

  /** Every .gguf under the roots; the first file of a split model stands for it. */
  private files(): { path: string; root: string; stat: Stats }[] {
    const out: { path: string; root: string; stat: Stats }[] = []
    let seen = 0
    const walk = (dir: string, root: string, depth: number) => {
      let names: string[]
      try {
        names = readdirSync(dir).sort()
      } catch {
        return
      }
      for (const n of names) {
        if (++seen > MAX_ENTRIES) return
        // The hub cache's blobs are the snapshot links' targets, under hash names.
        if (n.startsWith('.') || n === 'blobs') continue
        const p = join(dir, n)
        let st: Stats
        try {
          st = statSync(p) // follows links: snapshots link to blobs
        } catch {
          continue
        }
        if (st.isDirectory()) {
          if (depth < MAX_DEPTH) walk(p, root, depth + 1)
        } else if (st.isFile() && n.toLowerCase().endsWith('.gguf')) {
          const shard = parseGgufShardFilename(n)
          if (shard && Number(shard.shard) !== 1) continue
          out.push({ path: p, root, stat: st })
        }
      }
    }
    for (const r of this.roots()) walk(r, r, 0)
    return out
  }

  private async header(path: string, st: Stats): Promise<GgufInfo | Error> {
    const key = `${st.size}:${st.mtimeMs}`
    const known = this.headers.get(path)
    if (known?.key === key) return known.info
    let info: GgufInfo | Error
    try {
      info = await readGguf(path)
    } catch (e) {
      info = new Error(`not a readable GGUF file: ${(e as Error).message.slice(0, 200)}`)
    }
    this.headers.set(path, { key, info })
    return info
  }

  async list(): Promise<LibraryModel[]> {
    return (await this.entries()).map((e) => e.model)
  }

  /** Every model with its tensors (null when unreadable), in one walk of the folders. */
  async entries(): Promise<{ model: LibraryModel; info: GgufInfo | null }[]> {
    const out: { model: LibraryModel; info: GgufInfo | null }[] = []
    for (const f of this.files()) {
      const info = await this.header(f.path, f.stat)
      out.push({ model: await this.describe(f.path, f.root, f.stat), info: info instanceof Error ? null : info })
    }
    return out
  }

  private async describe(path: string, root: string, st: Stats): Promise<LibraryModel> {
    const file = basename(path)
    const shard = parseGgufShardFilename(file)
    const info = await this.header(path, st)
    const base = { id: modelId(path), path, file, root, mmproj: /mmproj/i.test(file) }
    if (info instanceof Error) {
      return { ...base, split: shard ? { files: [path], complete: false } : null, header: null, error: info.message }
    }
    const { tensors: _t, files, ...header } = info
    return { ...base, split: shard ? { files, complete: true } : null, header, error: null }
  }

  /** One model with its tensors (for the estimate); 404 when no model of the library has the id. */
  async get(id: string): Promise<{ model: LibraryModel; info: GgufInfo | null }> {
    for (const f of this.files()) {
      if (modelId(f.path) !== id) continue
      const info = await this.header(f.path, f.stat)
      return { model: await this.describe(f.path, f.root, f.stat), info: info instanceof Error ? null : info }
    }
    throw new NotFound(`no model with id ${JSON.stringify(id.slice(0, 40))} in the library (GET /api/v1/models/library lists them)`)
  }

  /** The header of a model file an instance names, when it is a GGUF llamactl can read; else null. */
  async headerOf(path: string): Promise<GgufInfo | null> {
    let st: Stats
    try {
      st = statSync(path)
    } catch {
      return null
    }
    if (!st.isFile()) return null
    const info = await this.header(resolve(path), st)
    return info instanceof Error ? null : info
  }
}
