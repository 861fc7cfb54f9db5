/**
 * The memory an instance can have, and the check made when one is created or changed: RAM from
 * /proc/meminfo (MemAvailable), GPU memory from nvidia-smi where it is installed, and the
 * user's own cap `instances.memory_limit`.
 */
import { readFileSync } from 'node:fs'
import type { Config } from '../config/load'
import { BadRequest } from '../errors'
import type { InstanceView } from '../instances/instance'
import { prepareOptions, type InstanceOptions, type InstanceOptionsInput } from '../instances/options'
import { estimate, paramsFromOptions, type Estimate } from './estimate'
import { ModelLibrary } from './library'

export interface Gpu {
  total: number
  used: number
}

/** MemAvailable of /proc/meminfo's text, in bytes; null when absent. */
export function parseMeminfo(text: string): number | null {
  const m = /^MemAvailable:\s+(\d+)\s*kB/m.exec(text)
  return m ? Number(m[1]) * 1024 : null
}

/**
 * `nvidia-smi --query-gpu=memory.total,memory.used --format=csv,noheader,nounits`: one line per
 * GPU, "total, used" in MiB. Lines that are not two numbers ("[N/A]") are skipped.
 */
export function parseNvidiaSmi(text: string): Gpu[] {
  const out: Gpu[] = []
  for (const line of text.split('\n')) {
    const m = /^\s*(\d+(?:\.\d+)?)\s*,\s*(\d+(?:\.\d+)?)\s*$/.exec(line)
    if (m) out.push({ total: Number(m[1]) * 1048576, used: Number(m[2]) * 1048576 })
  }
  return out
}

export interface MemoryReaders {
  meminfo: () => string | null
  nvidiaSmi: () => string | null
}

export const SYSTEM_READERS: MemoryReaders = {
  meminfo: () => {
    try {
      return readFileSync('/proc/meminfo', 'utf8')
    } catch {
      return null
    }
  },
  nvidiaSmi: () => {
    try {
      const r = Bun.spawnSync(['nvidia-smi', '--query-gpu=memory.total,memory.used', '--format=csv,noheader,nounits'], {
        stdout: 'pipe',
        stderr: 'ignore',
        timeout: 5000,
      })
      return r.exitCode === 0 ? r.stdout.toString() : null
    } catch {
      return null // not installed
    }
  },
}

export interface Available {
  /** Bytes of RAM free for a new instance; null when /proc/meminfo cannot say. */
  ram: number | null
  /** Bytes free on all GPUs together; null without nvidia-smi (or without a GPU). */
  gpu: number | null
  gpus: number
  /** instances.memory_limit in bytes; null when 0 (no cap). */
  limit: number | null
}

export function available(config: Config, readers: MemoryReaders = SYSTEM_READERS): Available {
  const meminfo = readers.meminfo()
  const smi = readers.nvidiaSmi()
  const gpus = smi === null ? [] : parseNvidiaSmi(smi)
  const limitMib = config.instances.memory_limit
  return {
    ram: meminfo === null ? null : parseMeminfo(meminfo),
    gpu: gpus.length ? gpus.reduce((s, g) => s + Math.max(0, g.total - g.used), 0) : null,
    gpus: gpus.length,
    limit: limitMib > 0 ? limitMib * 1048576 : null,
  }
}

const mib = (b: number) => `${(b / 1048576).toFixed(1)} MiB`

/** Why the estimate does not fit, or null when it does. */
export function overLimit(e: Estimate, a: Available): string | null {
  if (a.limit !== null && e.total > a.limit) return `the estimate (${mib(e.total)}) exceeds instances.memory_limit (${mib(a.limit)})`
  if (a.ram !== null && e.cpu > a.ram) return `the estimate's RAM part (${mib(e.cpu)}) exceeds the available RAM (MemAvailable ${mib(a.ram)})`
  if (a.gpu !== null && e.gpu > a.gpu) return `the estimate's GPU part (${mib(e.gpu)}) exceeds the free GPU memory (${mib(a.gpu)})`
  return null
}

/**
 * The check of a create or update: only a llama_cpp instance run here (not in Docker, whose
 * paths are the container's) whose `model` is a GGUF file llamactl can read. Without a GPU,
 * llama-server keeps every layer on the CPU, so the estimate is made with gpu_layers 0.
 * Returns warnings (with force) or throws BadRequest naming the estimate and the limit.
 */
export async function checkMemory(
  options: InstanceOptions,
  library: ModelLibrary,
  config: Config,
  force: boolean,
  readers: MemoryReaders = SYSTEM_READERS,
): Promise<string[]> {
  if (options.backend_type !== 'llama_cpp' || options.docker_enabled) return []
  const model = options.backend_options.model ?? options.backend_options.m
  if (typeof model !== 'string' || !model) return []
  const info = await library.headerOf(model)
  if (!info) return []
  const a = available(config, readers)
  const params = paramsFromOptions(options.backend_options)
  if (a.gpus === 0) params.gpu_layers = 0
  else if (params.gpu_layers === undefined) params.gpu_layers = info.layers + 1 // llama-server's auto offloads what fits; counted as all
  const e = estimate(info, params)
  const why = overLimit(e, a)
  if (!why) return []
  const text = `memory: ${why} (ctx_size ${e.ctx_size}, parallel ${e.parallel}, gpu_layers ${e.gpu_layers}; GET /api/v1/models/library shows the estimate)`
  if (!force) throw new BadRequest(`${text}; lower ctx_size, parallel or gpu_layers, or send "force": true to create it anyway`)
  return [text]
}

/**
 * `force` in a create or update body: not an option of the instance (never stored) but of the
 * request: create it even when its memory estimate is over what it can have.
 */
export function takeForce(body: unknown): { body: unknown; force: boolean } {
  if (!body || typeof body !== 'object' || Array.isArray(body) || !('force' in body)) return { body, force: false }
  const { force, ...rest } = body as Record<string, unknown>
  if (typeof force !== 'boolean') throw new BadRequest(`force must be true or false, got ${JSON.stringify(force)?.slice(0, 40)}`)
  return { body: rest, force }
}

/** The answer of a create or update: the instance, and what the memory check warned of (with force). */
export function withWarnings(view: InstanceView, warnings: string[]): InstanceView & { warnings?: string[] } {
  return warnings.length ? { ...view, warnings } : view
}

/**
 * What creates and updates check of models: the library that reads their GGUF headers, and
 * where the memory available is read (tests give their own readers).
 */
export class ModelChecks {
  readonly library: ModelLibrary
  readers: MemoryReaders = SYSTEM_READERS

  constructor(private config: Config) {
    this.library = new ModelLibrary(config)
  }

  /** A create's or update's body: validated, defaults filled, and its memory checked (warnings with `force`). */
  async prepare(raw: unknown): Promise<{ input: InstanceOptionsInput; options: InstanceOptions; warnings: string[] }> {
    const { body, force } = takeForce(raw)
    const { input, options } = await prepareOptions(body, this.config)
    return { input, options, warnings: await checkMemory(options, this.library, this.config, force, this.readers) }
  }
}
