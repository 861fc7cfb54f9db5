import { afterAll, describe, expect, test } from 'bun:test'
import { rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { estimate, kvCells, paramsFromOptions } from '../../src/models/estimate'
import { readGguf, splitFiles } from '../../src/models/gguf'
import { available, overLimit, parseMeminfo, parseNvidiaSmi, SYSTEM_READERS } from '../../src/models/memory'
import { tinyLlama, writeGguf, writeSplit } from '../fixtures/gguf-writer'
import { tempDir, testConfig } from '../helpers'

const dir = tempDir('llamactl-gguf-')
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('GGUF headers', () => {
  test('the header fields and every tensor\'s bytes', async () => {
    const path = join(dir, 'one.gguf')
    writeGguf(path, tinyLlama({ chatTemplate: true, fileType: 7 }))
    const info = await readGguf(path)
    expect(info).toMatchObject({
      architecture: 'llama',
      name: 'tiny',
      quantization: 'Q8_0', // general.file_type 7
      context_length: 512,
      layers: 2,
      embedding_length: 64,
      head_count: 2,
      head_count_kv: 1,
      key_length: 32, // n_embd / n_head when the header has no key_length
      value_length: 32,
      vocab_size: 32,
      chat_template: true,
      files: [path],
    })
    // 2 × 64×32 embeddings/output + 64 norm + per layer: 2×64 norms, 2×64×64, 2×64×32, 2×64×96
    const perLayer = 2 * 64 + 2 * 64 * 64 + 2 * 64 * 32 + 2 * 64 * 96
    expect(info.parameters).toBe(2 * 64 * 32 + 64 + 2 * perLayer)
    expect(info.tensors.reduce((s, t) => s + t.bytes, 0)).toBe(info.parameters * 4)
    expect(info.tensors.find((t) => t.name === 'blk.1.ffn_up.weight')).toEqual({ name: 'blk.1.ffn_up.weight', layer: 1, bytes: 64 * 96 * 4 })
    expect(info.tensors.find((t) => t.name === 'output.weight')!.layer).toBeNull()
  })

  test('no file type: the type most weights have; no chat template', async () => {
    const path = join(dir, 'plain.gguf')
    writeGguf(path, tinyLlama())
    const info = await readGguf(path)
    expect(info.quantization).toBe('F32')
    expect(info.chat_template).toBe(false)
  })

  test('a split model is read across its files', async () => {
    const files = writeSplit(dir, 'split', tinyLlama({ layers: 4 }), 3)
    expect(splitFiles(files[0]!)).toEqual(files)
    const info = await readGguf(files[0]!)
    expect(info.files).toEqual(files)
    expect(info.layers).toBe(4)
    expect(info.tensors.length).toBe(3 + 4 * 8)
    expect(info.file_size).toBe(files.reduce((s, f) => s + Bun.file(f).size, 0))
  })

  test('a file that is not GGUF is an error, not a crash', async () => {
    const path = join(dir, 'bad.gguf')
    writeFileSync(path, 'not a model at all')
    await expect(readGguf(path)).rejects.toThrow()
  })
})

describe('the estimate', () => {
  test('KV cells as llama.cpp 0.5 counts them (measured on the real server)', () => {
    expect(kvCells(256, 2, false)).toEqual({ cells: 512, perSlot: 256 }) // "rounding down to 512"
    expect(kvCells(1024, 1, false)).toEqual({ cells: 1024, perSlot: 1024 })
    expect(kvCells(1024, 4, true)).toEqual({ cells: 1024, perSlot: 1024 })
    expect(kvCells(1000, 4, false)).toEqual({ cells: 1024, perSlot: 256 })
    expect(kvCells(4096, 3, false)).toEqual({ cells: 4608, perSlot: 1536 })
  })

  test('weights, KV cache and compute, split between CPU and GPU by gpu_layers', async () => {
    const path = join(dir, 'est.gguf')
    writeGguf(path, tinyLlama({ layers: 4 }))
    const info = await readGguf(path)
    const kvPerCell = 4 * (32 + 32) * 2 // 4 layers, 1 KV head of 32 for K and V, f16
    const all = estimate(info, { ctx_size: 1024, parallel: 1 })
    expect(all.weights).toEqual({ cpu: info.parameters * 4, gpu: 0 })
    expect(all.kv_cache).toEqual({ cpu: 1024 * kvPerCell, gpu: 0 })
    // mask (f16, 512 tokens × 1024 cells) + the largest of feed-forward, attention and logits
    expect(all.compute.cpu).toBe(2 * 512 * 1024 + 4 * 512 * Math.max(64 + 4 * 96, 7 * 64, 32 + 64))
    // flash attention off: an f32 mask and the scores of both heads
    expect(estimate(info, { ctx_size: 1024, parallel: 1, flash_attn: 'off' }).compute.cpu).toBe(4 * 512 * 1024 + 4 * 512 * (7 * 64) + 4 * 512 * 1024 * 2)
    expect(all.total).toBe(all.cpu + all.gpu)
    expect(all.kv_unified).toBe(false)

    // Two of four layers on the GPU: the last two, their KV cache, and the compute buffer.
    const half = estimate(info, { ctx_size: 1024, parallel: 1, gpu_layers: 2 })
    const layer = info.tensors.filter((t) => t.layer === 3).reduce((s, t) => s + t.bytes, 0)
    expect(half.weights.gpu).toBe(2 * layer)
    expect(half.kv_cache).toEqual({ cpu: 512 * kvPerCell, gpu: 512 * kvPerCell })
    expect(half.compute.cpu).toBe(0)
    // gpu_layers past the layers: the output layer too; token_embd stays on the CPU.
    const full = estimate(info, { ctx_size: 1024, parallel: 1, gpu_layers: 99 })
    expect(full.weights.cpu).toBe(info.tensors.find((t) => t.name === 'token_embd.weight')!.bytes)
    expect(full.gpu_layers).toBe(5)

    // A q8_0 cache is 34/32 bytes per value; parallel auto is 4 slots sharing a unified cache.
    expect(estimate(info, { ctx_size: 1024, cache_type_k: 'q8_0', cache_type_v: 'q8_0' }).kv_cache.cpu).toBe(1024 * 4 * 64 * (34 / 32))
    expect(estimate(info, { ctx_size: 1024 })).toMatchObject({ parallel: 4, kv_unified: true, ctx_size: 1024 })
    // No ctx_size: the model's context length.
    expect(estimate(info, {}).ctx_size).toBe(512)
  })

  test('the inputs from an instance\'s options, by any of their names', () => {
    expect(paramsFromOptions({ ctx_size: 2048, ngl: 'all', np: '2', ctk: 'q8_0', no_kv_unified: true })).toEqual({
      ctx_size: 2048,
      gpu_layers: 1e9,
      parallel: 2,
      kv_unified: false,
      cache_type_k: 'q8_0',
      cache_type_v: undefined,
      ubatch_size: undefined,
      flash_attn: undefined,
    })
    expect(paramsFromOptions({ flash_attn: 'off' }).flash_attn).toBe('off')
    expect(paramsFromOptions({ fa: true }).flash_attn).toBe('on')
  })
})

describe('available memory', () => {
  const MEMINFO = 'MemTotal:       16315104 kB\nMemFree:         1215436 kB\nMemAvailable:    9876543 kB\nBuffers:          123 kB\n'
  const SMI = '24576, 1024\n8192, 8000\n'

  test('MemAvailable from /proc/meminfo, GPUs from nvidia-smi\'s CSV', () => {
    expect(parseMeminfo(MEMINFO)).toBe(9876543 * 1024)
    expect(parseMeminfo('MemTotal: 1 kB\n')).toBeNull()
    expect(parseNvidiaSmi(SMI)).toEqual([
      { total: 24576 * 1048576, used: 1024 * 1048576 },
      { total: 8192 * 1048576, used: 8000 * 1048576 },
    ])
    expect(parseNvidiaSmi('[N/A], [N/A]\n\n')).toEqual([])
  })

  test('no nvidia-smi: no GPU; the cap from instances.memory_limit', () => {
    const config = testConfig(dir, { LLAMACTL_INSTANCE_MEMORY_LIMIT: '100' })
    const a = available(config, { meminfo: () => MEMINFO, nvidiaSmi: () => null })
    expect(a).toEqual({ ram: 9876543 * 1024, gpu: null, gpus: 0, limit: 100 * 1048576 })
    const withGpu = available(testConfig(dir), { meminfo: () => null, nvidiaSmi: () => SMI })
    expect(withGpu).toEqual({ ram: null, gpu: (24576 - 1024 + 192) * 1048576, gpus: 2, limit: null })
  })

  test('this machine: /proc/meminfo is read; nvidia-smi where it is installed, else no GPU', () => {
    expect(parseMeminfo(SYSTEM_READERS.meminfo()!)).toBeGreaterThan(0)
    const smi = SYSTEM_READERS.nvidiaSmi()
    if (Bun.which('nvidia-smi') === null) expect(smi).toBeNull()
    else expect(typeof smi).toBe('string')
    expect(available(testConfig(dir)).gpus).toBe(smi === null ? 0 : parseNvidiaSmi(smi).length)
  })

  test('what is over which limit is named', () => {
    const e = { cpu: 300 * 1048576, gpu: 50 * 1048576, total: 350 * 1048576 } as Parameters<typeof overLimit>[0]
    expect(overLimit(e, { ram: null, gpu: null, gpus: 0, limit: null })).toBeNull()
    expect(overLimit(e, { ram: null, gpu: null, gpus: 0, limit: 100 * 1048576 })).toBe('the estimate (350.0 MiB) exceeds instances.memory_limit (100.0 MiB)')
    expect(overLimit(e, { ram: 200 * 1048576, gpu: null, gpus: 0, limit: null })).toContain('RAM part (300.0 MiB) exceeds the available RAM (MemAvailable 200.0 MiB)')
    expect(overLimit(e, { ram: null, gpu: 10 * 1048576, gpus: 1, limit: null })).toContain('GPU part (50.0 MiB) exceeds the free GPU memory (10.0 MiB)')
  })
})
