/**
 * The effective configuration as people and the web UI see it: every key of the settings table,
 * secrets masked. `--print-config` adds where each value came from; GET /api/v1/config answers
 * the original llamactl's shape (its web UI reads that), with llamactl's own keys beside it.
 */
import { BACKEND_TYPES, backendFor } from '../backends'
import { isSecretName, MASK, maskArgv } from '../backends/mask'
import { BUILD } from '../version'
import { describe, type LoadedConfig } from './load'
import { type Config, SETTINGS, type Setting } from './settings'

const TABLES = new Map(BACKEND_TYPES.map((t) => [backendFor(t).configKey as string, backendFor(t).table]))

/**
 * Secrets inside values that are not secrets as a whole: a backend's `HF_TOKEN` in an
 * environment, an `--api-key` in its args, a `-e NAME=value` in its Docker args. Masked the way
 * instance views mask them.
 */
function maskInside(s: Setting, v: unknown): unknown {
  if (s.kind === 'map') {
    return Object.fromEntries(Object.entries(v as Record<string, string>).map(([k, x]) => [k, isSecretName(k) || k.toLowerCase() === 'authorization' ? MASK : x]))
  }
  const table = s.kind === 'args' ? TABLES.get(s.key.split('.')[1] ?? '') : undefined
  return table ? maskArgv(v as string[], table) : v
}

function valueAt(config: Config, key: string): unknown {
  let cur: unknown = config
  for (const p of key.split('.')) cur = (cur as Record<string, unknown>)[p]
  return cur
}

/** What a secret shows: that it is set, never any of it. */
function maskForPeople(s: Setting, v: unknown): unknown {
  if (!s.secret) return maskInside(s, v)
  if (Array.isArray(v)) return v.map(() => '(set)')
  if (s.kind === 'nodes') {
    return Object.fromEntries(Object.entries(v as Config['nodes']).map(([n, node]) => [n, { ...node, api_key: node.api_key ? '(set)' : '' }]))
  }
  return v ? '(set)' : ''
}

/** The original's masking, which its web UI expects: keys are empty lists, api_key empty. */
function maskForApi(s: Setting, v: unknown): unknown {
  if (!s.secret) return s.kind === 'duration' ? Math.round((v as number) * 1e9) : maskInside(s, v)
  if (Array.isArray(v)) return []
  if (s.kind === 'nodes') return Object.fromEntries(Object.entries(v as Config['nodes']).map(([n, node]) => [n, { ...node, api_key: '' }]))
  return ''
}

/** `--print-config`: one line per key, `key = value   # where it came from`. */
export function printConfig(loaded: LoadedConfig): string {
  const rows = SETTINGS.map((s) => [`${s.key} = ${JSON.stringify(maskForPeople(s, valueAt(loaded.config, s.key)))}`, describe(loaded.sources.get(s.key)!)] as const)
  const width = Math.min(80, Math.max(...rows.map(([l]) => l.length)) + 2)
  const head = [
    `# config file: ${loaded.file ?? 'none (built-in defaults)'}`,
    `# .env: ${loaded.dotenv ? `${loaded.dotenv.file} (${Object.keys(loaded.dotenv.vars).length} variable(s) added)` : 'none'}`,
    ...loaded.notes.map((n) => `# note: ${n}`),
  ]
  return [...head, ...rows.map(([l, src]) => `${l.padEnd(width)}# ${src}`)].join('\n')
}

/**
 * GET /api/v1/config: the configuration nested as in the file, secrets masked as the original
 * masks them, durations in nanoseconds as its Go encoder writes them, and its version fields.
 */
export function configView(config: Config): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const s of SETTINGS) {
    const parts = s.key.split('.')
    let cur = out
    for (const p of parts.slice(0, -1)) cur = (cur[p] ??= {}) as Record<string, unknown>
    cur[parts.at(-1)!] = structuredClone(maskForApi(s, valueAt(config, s.key)))
  }
  return { ...out, version: BUILD.version, commit_hash: BUILD.commit, build_time: BUILD.buildTime }
}
