/**
 * How much memory llama-server will take for a model with given settings, from its GGUF header
 * alone. The formula (docs/models.md has it with its measured error):
 *
 *   weights  the tensors' bytes in the file; layer N's tensors on the GPU when N is among the
 *            last `gpu_layers` layers, the output tensors too when gpu_layers > layers,
 *            token_embd always on the CPU (llama.cpp's own placement).
 *   KV cache cells × Σ over layers (n_embd_k_gqa × bytes(K type) + n_embd_v_gqa × bytes(V type)),
 *            on the device of its layer. Cells as llama.cpp 0.5 counts them: ctx_size (0: the
 *            model's context length) rounded up to 256; without a unified cache every one of the
 *            `parallel` slots gets ctx/parallel rounded up to 256, so cells = that × parallel.
 *            `parallel` unset (-1) is llama-server's auto: 4 slots sharing one unified cache.
 *   compute  the largest buffers of one micro-batch's graph (n_ubatch = min(ubatch_size 512,
 *            ctx_size rounded up to 256) tokens), fitted on the real server (estimate.real.ts):
 *              mask + max(4 B × n_ubatch × (n_embd + 4 × n_ff),        feed-forward
 *                         4 B × n_ubatch × 7 × n_embd + scores,        attention
 *                         4 B × n_ubatch × (n_vocab + n_embd))         logits
 *            mask: the attention mask, n_ubatch × cells per slot, 2 B each (f16) with flash
 *            attention (llama-server's auto turns it on on CPUs and CUDA), 4 B with it off;
 *            scores: with flash attention off only, 4 B × n_ubatch × cells per slot × n_head.
 *            n_ff: feed_forward_length, for a mixture of experts expert_used_count × the expert's.
 *            On the GPU when any layer is offloaded.
 *   output   n_vocab × 4 bytes × slots (the logits kept for each sequence).
 */
import type { GgufInfo } from './gguf'

export interface EstimateParams {
  ctx_size?: number
  gpu_layers?: number
  parallel?: number
  kv_unified?: boolean
  cache_type_k?: string
  cache_type_v?: string
  ubatch_size?: number
  /** on, off or auto (llama-server's default, which turns it on where the device has it). */
  flash_attn?: string
}

export interface Estimate {
  /** What the estimate was made for, with llama-server's defaults filled in. */
  ctx_size: number
  gpu_layers: number
  parallel: number
  kv_unified: boolean
  cache_type_k: string
  cache_type_v: string
  /** Bytes. */
  weights: { cpu: number; gpu: number }
  kv_cache: { cpu: number; gpu: number }
  compute: { cpu: number; gpu: number }
  output: number
  cpu: number
  gpu: number
  total: number
}

/** Bytes per element of the KV cache types llama-server accepts (a block's bytes over its values). */
export const CACHE_TYPE_BYTES: Record<string, number> = {
  f32: 4,
  f16: 2,
  bf16: 2,
  q8_0: 34 / 32,
  q4_0: 18 / 32,
  q4_1: 20 / 32,
  iq4_nl: 18 / 32,
  q5_0: 22 / 32,
  q5_1: 24 / 32,
}

const pad256 = (n: number) => Math.ceil(n / 256) * 256

/** The KV cells llama.cpp allocates, and the cells one slot sees. */
export function kvCells(ctx: number, parallel: number, unified: boolean): { cells: number; perSlot: number } {
  const n = pad256(Math.max(1, ctx))
  if (unified || parallel <= 1) return { cells: n, perSlot: n }
  const perSlot = pad256(Math.floor(n / parallel))
  return { cells: perSlot * parallel, perSlot }
}

export function estimate(info: GgufInfo, p: EstimateParams = {}): Estimate {
  const layers = info.layers
  const autoParallel = p.parallel === undefined || p.parallel < 0
  const parallel = autoParallel ? 4 : Math.max(1, p.parallel!)
  const unified = p.kv_unified ?? autoParallel
  const ctx = p.ctx_size && p.ctx_size > 0 ? p.ctx_size : (info.context_length ?? 4096)
  const gpuLayers = Math.max(0, Math.min(p.gpu_layers ?? 0, layers + 1))
  const typeK = (p.cache_type_k ?? 'f16').toLowerCase()
  const typeV = (p.cache_type_v ?? 'f16').toLowerCase()
  const bytesK = CACHE_TYPE_BYTES[typeK] ?? 2
  const bytesV = CACHE_TYPE_BYTES[typeV] ?? 2
  const firstGpuLayer = layers - Math.min(gpuLayers, layers)
  const onGpu = (layer: number | null, tensor: string) =>
    layer !== null ? layer >= firstGpuLayer && gpuLayers > 0 : !tensor.startsWith('token_embd') && gpuLayers > layers

  const weights = { cpu: 0, gpu: 0 }
  for (const t of info.tensors) weights[onGpu(t.layer, t.name) ? 'gpu' : 'cpu'] += t.bytes

  const { cells, perSlot } = kvCells(ctx, parallel, unified)
  const kv = { cpu: 0, gpu: 0 }
  for (let l = 0; l < layers; l++) {
    const hkv = Array.isArray(info.head_count_kv) ? (info.head_count_kv[l] ?? 0) : info.head_count_kv
    const perCell = hkv * info.key_length * bytesK + hkv * info.value_length * bytesV
    kv[onGpu(l, '') ? 'gpu' : 'cpu'] += cells * perCell
  }

  const ubatch = Math.min(p.ubatch_size && p.ubatch_size > 0 ? p.ubatch_size : 512, pad256(Math.max(1, ctx)))
  const ff = info.expert_count > 0 ? info.expert_used_count * (info.expert_feed_forward_length || info.feed_forward_length) : info.feed_forward_length
  const fa = p.flash_attn !== 'off'
  const mask = (fa ? 2 : 4) * ubatch * perSlot
  const scores = fa ? 0 : 4 * ubatch * perSlot * info.head_count
  const feedForward = 4 * ubatch * (info.embedding_length + 4 * ff)
  const attention = 4 * ubatch * 7 * info.embedding_length + scores
  const logits = 4 * ubatch * (info.vocab_size + info.embedding_length)
  const computeBytes = mask + Math.max(feedForward, attention, logits)
  const compute = gpuLayers > 0 ? { cpu: 0, gpu: computeBytes } : { cpu: computeBytes, gpu: 0 }
  const output = info.vocab_size * 4 * parallel
  const cpu = Math.round(weights.cpu + kv.cpu + compute.cpu + output)
  const gpu = Math.round(weights.gpu + kv.gpu + compute.gpu)
  return {
    ctx_size: cells,
    gpu_layers: gpuLayers,
    parallel,
    kv_unified: unified,
    cache_type_k: typeK,
    cache_type_v: typeV,
    weights,
    kv_cache: { cpu: Math.round(kv.cpu), gpu: Math.round(kv.gpu) },
    compute,
    output,
    cpu,
    gpu,
    total: cpu + gpu,
  }
}

/** The estimate's inputs from an instance's llama-server options (names as the flag table's). */
export function paramsFromOptions(o: Record<string, unknown>): EstimateParams {
  const int = (...keys: string[]) => {
    for (const k of keys) {
      const v = o[k]
      if (typeof v === 'number' && Number.isFinite(v)) return v
      if (typeof v === 'string' && /^-?\d+$/.test(v)) return Number(v)
      if (v === 'all') return 1e9
    }
    return undefined
  }
  const str = (...keys: string[]) => {
    for (const k of keys) if (typeof o[k] === 'string') return o[k] as string
    return undefined
  }
  const unified = o.kv_unified ?? (o.no_kv_unified === true ? false : undefined)
  return {
    ctx_size: int('ctx_size', 'c'),
    gpu_layers: int('gpu_layers', 'n_gpu_layers', 'ngl'),
    parallel: int('parallel', 'np'),
    kv_unified: typeof unified === 'boolean' ? unified : undefined,
    cache_type_k: str('cache_type_k', 'ctk'),
    cache_type_v: str('cache_type_v', 'ctv'),
    ubatch_size: int('ubatch_size', 'ub'),
    flash_attn: flashAttn(o.flash_attn ?? o.fa),
  }
}

/** The flash_attn option as given (a word, or a switch), as on, off or auto. */
function flashAttn(v: unknown): string | undefined {
  if (v === true || v === 'on' || v === 'true') return 'on'
  if (v === false || v === 'off' || v === 'false') return 'off'
  return v === 'auto' ? 'auto' : undefined
}
