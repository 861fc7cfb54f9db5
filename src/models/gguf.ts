/**
 * What a GGUF file's header says, read with @huggingface/gguf on the local file. The parser
 * reads the file in 2 MB pieces until the header is parsed (at most 50 MB), never the tensor
 * data: a model of many gigabytes costs one or two reads of 2 MB.
 *
 * A model split in several files (`name-00001-of-00003.gguf`) is read file by file: the first
 * holds the metadata, every file holds some of the tensors.
 */
import { statSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { gguf, GGMLFileQuantizationType, GGMLQuantizationType, parseGgufShardFilename } from '@huggingface/gguf'

/** One tensor: its name, the layer it belongs to (`blk.N.`), and its bytes in the file. */
export interface TensorSize {
  name: string
  layer: number | null
  bytes: number
}

/** The header fields the library shows and the estimate needs. */
export interface GgufInfo {
  architecture: string
  name: string | null
  parameters: number
  /** The file type (`general.file_type`), else the type most of the weights have. */
  quantization: string
  context_length: number | null
  layers: number
  embedding_length: number
  head_count: number
  /** Per layer where the header gives a list (some models vary it). */
  head_count_kv: number | number[]
  key_length: number
  value_length: number
  sliding_window: number
  /** The largest of the layers' feed-forward sizes. */
  feed_forward_length: number
  expert_count: number
  expert_used_count: number
  /** One expert's feed-forward size (0: the same as feed_forward_length). */
  expert_feed_forward_length: number
  vocab_size: number
  chat_template: boolean
  /** The files of the model in order (one unless split), and their bytes together. */
  files: string[]
  file_size: number
  tensors: TensorSize[]
}

const num = (v: unknown): number | null => (typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : null)

/** A number, or the largest of a per-layer list; 0 when absent. */
function maxOf(v: unknown): number {
  if (Array.isArray(v)) return v.reduce((m: number, x) => Math.max(m, num(x) ?? 0), 0)
  return num(v) ?? 0
}

/** `blk.12.attn_q.weight` → 12. */
function layerOf(tensor: string): number | null {
  const m = /^blk\.(\d+)\./.exec(tensor)
  return m ? Number(m[1]) : null
}

interface OneFile {
  metadata: Record<string, unknown>
  tensors: TensorSize[]
  dtypes: Map<number, number>
  parameters: number
  size: number
}

async function readOne(path: string): Promise<OneFile> {
  const size = statSync(path).size
  const out = await gguf(path, { allowLocalFile: true })
  // A tensor's bytes: up to the next tensor's offset (the data are in offset order, aligned);
  // the last runs to the end of the file.
  const sorted = [...out.tensorInfos].sort((a, b) => (a.offset < b.offset ? -1 : a.offset > b.offset ? 1 : 0))
  const dataStart = Number(out.tensorDataOffset)
  const tensors: TensorSize[] = []
  const dtypes = new Map<number, number>()
  let parameters = 0
  for (let i = 0; i < sorted.length; i++) {
    const t = sorted[i]!
    const end = i + 1 < sorted.length ? Number(sorted[i + 1]!.offset) : size - dataStart
    const bytes = Math.max(0, end - Number(t.offset))
    tensors.push({ name: t.name, layer: layerOf(t.name), bytes })
    const n = t.shape.reduce((acc, d) => acc * Number(d), 1)
    parameters += n
    if (t.n_dims >= 2) dtypes.set(t.dtype, (dtypes.get(t.dtype) ?? 0) + n)
  }
  return { metadata: out.metadata as unknown as Record<string, unknown>, tensors, dtypes, parameters, size }
}

/** The files of a split model, given its first; [path] when it is not split. */
export function splitFiles(path: string): string[] {
  const shard = parseGgufShardFilename(basename(path))
  if (!shard) return [path]
  const total = Number(shard.total)
  const width = shard.total.length
  return Array.from({ length: total }, (_, i) => join(dirname(path), `${basename(shard.prefix)}-${String(i + 1).padStart(width, '0')}-of-${shard.total}.gguf`))
}

/** Reads the header of a model (all its files when split). Throws when a file is not GGUF. */
export async function readGguf(path: string): Promise<GgufInfo> {
  const files = splitFiles(path)
  const parts: OneFile[] = []
  for (const f of files) parts.push(await readOne(f))
  const meta = parts[0]!.metadata
  const arch = String(meta['general.architecture'] ?? 'unknown')
  const a = (key: string) => meta[`${arch}.${key}`]
  const layers = num(a('block_count')) ?? 0
  const embedding = num(a('embedding_length')) ?? 0
  const heads = num(a('attention.head_count')) ?? 0
  const kvRaw = a('attention.head_count_kv')
  const headsKv = Array.isArray(kvRaw) ? kvRaw.map((x) => num(x) ?? 0) : (num(kvRaw) ?? heads)
  const headDim = heads > 0 ? Math.floor(embedding / heads) : 0
  const tokens = meta['tokenizer.ggml.tokens']
  const dtypes = new Map<number, number>()
  for (const p of parts) for (const [k, v] of p.dtypes) dtypes.set(k, (dtypes.get(k) ?? 0) + v)
  return {
    architecture: arch,
    name: typeof meta['general.name'] === 'string' ? (meta['general.name'] as string) : null,
    parameters: parts.reduce((s, p) => s + p.parameters, 0),
    quantization: quantization(meta, dtypes),
    context_length: num(a('context_length')),
    layers,
    embedding_length: embedding,
    head_count: heads,
    head_count_kv: headsKv,
    key_length: num(a('attention.key_length')) ?? headDim,
    value_length: num(a('attention.value_length')) ?? headDim,
    sliding_window: num(a('attention.sliding_window')) ?? 0,
    feed_forward_length: maxOf(a('feed_forward_length')),
    expert_count: num(a('expert_count')) ?? 0,
    expert_used_count: num(a('expert_used_count')) ?? 0,
    expert_feed_forward_length: maxOf(a('expert_feed_forward_length')),
    vocab_size: num(a('vocab_size')) ?? (Array.isArray(tokens) ? tokens.length : 0),
    chat_template: typeof meta['tokenizer.chat_template'] === 'string' && (meta['tokenizer.chat_template'] as string).length > 0,
    files,
    file_size: parts.reduce((s, p) => s + p.size, 0),
    tensors: parts.flatMap((p) => p.tensors),
  }
}

function quantization(meta: Record<string, unknown>, dtypes: Map<number, number>): string {
  const ft = num(meta['general.file_type'])
  if (ft !== null && GGMLFileQuantizationType[ft] !== undefined) return GGMLFileQuantizationType[ft]!
  // No file type: the type of most weights (llama.cpp says "guessed" then too).
  let best = -1
  let most = -1
  for (const [t, n] of dtypes) if (n > most) [best, most] = [t, n]
  return best >= 0 ? (GGMLQuantizationType[best] ?? `type ${best}`) : 'unknown'
}
