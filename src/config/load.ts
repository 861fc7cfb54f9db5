/**
 * Configuration: built-in defaults, then a YAML file, then LLAMACTL_* variables, then flags.
 * Any bad value stops start-up with one line naming the key and where it came from; nothing
 * falls back to a default silently.
 */
import { existsSync, readFileSync } from 'node:fs'
import { homedir, platform } from 'node:os'
import { isAbsolute, join, resolve } from 'node:path'
import { ConfigError } from '../errors'
import { type BackendKey, type Kind, SETTINGS, SETTINGS_BY_KEY, type Setting } from './settings'

export interface BackendConfig {
  command: string
  args: string[]
  environment: Record<string, string>
  docker: { enabled: boolean; image: string; args: string[]; environment: Record<string, string>; command: string }
  response_headers: Record<string, string>
}

export interface Config {
  server: {
    host: string
    port: number
    allowed_origins: string[]
    allowed_hosts: string[]
    allowed_headers: string[]
    enable_swagger: boolean
    response_headers: Record<string, string>
    idle_timeout: number
    max_open_files: number
    max_body_size: number
    max_inference_body_size: number
    max_buffered_body_size: number
  }
  data_dir: string
  database: { path: string }
  backends: Record<BackendKey, BackendConfig>
  instances: {
    port_range: [number, number]
    auto_create_dirs: boolean
    max_instances: number
    max_running_instances: number
    enable_lru_eviction: boolean
    default_auto_restart: boolean
    default_max_restarts: number
    default_restart_delay: number
    default_on_demand_start: boolean
    default_idle_timeout: number
    on_demand_start_timeout: number
    startup_timeout: number
    stop_grace_period: number
    drain_timeout: number
    timeout_check_interval: number
    logs_dir: string
    log_rotation_enabled: boolean
    log_rotation_max_size: number
    log_rotation_max_files: number
    log_tail_lines: number
  }
  metrics: { enabled: boolean; public: boolean; key: string }
  log: { format: 'text' | 'json'; level: 'debug' | 'info' | 'warn' | 'error'; requests: boolean }
  auth: {
    require_management_auth: boolean
    management_keys: string[]
    require_inference_auth: boolean
    inference_keys: string[]
    max_failures: number
    failure_window: number
    failure_delay: number
  }
}

export interface LoadedConfig {
  config: Config
  /** The YAML file that was read, if any. */
  file: string | null
}

export interface LoadInput {
  /** --config PATH, if given. */
  configPath?: string
  /** Values from command-line flags, keyed by setting key. */
  flags?: Record<string, string>
  env?: Record<string, string | undefined>
  /** Where to look for ./llamactl.yaml. */
  cwd?: string
  home?: string
}

export function defaultDataDir(home = homedir(), env: Record<string, string | undefined> = process.env): string {
  if (platform() === 'darwin') return join(home, 'Library', 'Application Support', 'llamactl')
  return join(env.XDG_DATA_HOME || join(home, '.local', 'share'), 'llamactl')
}

/** The config file to read: --config, then LLAMACTL_CONFIG_PATH, then the usual places. */
export function findConfigFile(input: LoadInput): string | null {
  const env = input.env ?? process.env
  const explicit = input.configPath ?? env.LLAMACTL_CONFIG_PATH
  if (explicit) {
    if (!existsSync(explicit)) throw new ConfigError(`config file ${explicit} does not exist`)
    return explicit
  }
  const home = input.home ?? homedir()
  const candidates = [
    join(input.cwd ?? process.cwd(), 'llamactl.yaml'),
    join(home, '.config', 'llamactl', 'config.yaml'),
    '/etc/llamactl/config.yaml',
  ]
  return candidates.find((p) => existsSync(p)) ?? null
}

export function loadConfig(input: LoadInput = {}): LoadedConfig {
  const env = input.env ?? process.env
  const values = new Map<string, unknown>()
  for (const s of SETTINGS) values.set(s.key, structuredClone(s.default))

  const file = findConfigFile(input)
  if (file) {
    let doc: unknown
    try {
      doc = Bun.YAML.parse(readFileSync(file, 'utf8'))
    } catch (e) {
      throw new ConfigError(`config file ${file}: not valid YAML: ${(e as Error).message}`)
    }
    if (doc !== null && doc !== undefined) {
      if (!isPlainObject(doc)) throw new ConfigError(`config file ${file}: the top level must be a mapping of keys`)
      for (const [key, raw] of flattenYaml(doc, '', file)) {
        const s = SETTINGS_BY_KEY.get(key)!
        values.set(key, coerce(s, raw, `${file}: key '${key}'`))
      }
    }
  }

  for (const s of SETTINGS) {
    const raw = s.env ? env[s.env] : undefined
    if (raw !== undefined && raw !== '') values.set(s.key, coerce(s, raw, `environment variable ${s.env}`))
  }

  for (const [key, raw] of Object.entries(input.flags ?? {})) {
    const s = SETTINGS_BY_KEY.get(key)
    if (!s) throw new ConfigError(`unknown setting ${key}`)
    values.set(key, coerce(s, raw, `flag ${s.flag}`))
  }

  const config = {} as Record<string, unknown>
  for (const [key, value] of values) setPath(config, key, value)
  const c = config as unknown as Config
  oneOf(c.log.format, ['text', 'json'], 'log.format', file)
  oneOf(c.log.level, ['debug', 'info', 'warn', 'error'], 'log.level', file)
  if (c.server.max_inference_body_size > c.server.max_buffered_body_size) {
    throw new ConfigError(
      `server.max_inference_body_size (${c.server.max_inference_body_size}) is larger than server.max_buffered_body_size (${c.server.max_buffered_body_size}): a body that large could never be held; raise max_buffered_body_size or lower max_inference_body_size`,
    )
  }
  c.data_dir = c.data_dir ? resolve(c.data_dir) : defaultDataDir(input.home, env)
  c.database.path = resolveIn(c.data_dir, c.database.path)
  c.instances.logs_dir = resolveIn(c.data_dir, c.instances.logs_dir)
  return { config: c, file }
}

function oneOf(value: string, allowed: string[], key: string, file: string | null) {
  if (!allowed.includes(value)) {
    throw new ConfigError(`${key}: ${JSON.stringify(value)} is not one of ${allowed.join(', ')} (from ${file ?? 'the environment'})`)
  }
}

function resolveIn(dir: string, p: string): string {
  return isAbsolute(p) ? p : join(dir, p)
}

/** Walks the YAML document to setting keys. Mappings that are values (environment, …) stay whole. */
function flattenYaml(doc: Record<string, unknown>, prefix: string, file: string): [string, unknown][] {
  const out: [string, unknown][] = []
  for (const [k, v] of Object.entries(doc)) {
    const key = prefix ? `${prefix}.${k}` : k
    if (SETTINGS_BY_KEY.has(key)) {
      out.push([key, v])
    } else if (isPlainObject(v) && SETTINGS.some((s) => s.key.startsWith(`${key}.`))) {
      out.push(...flattenYaml(v, key, file))
    } else if (v === null && SETTINGS.some((s) => s.key.startsWith(`${key}.`))) {
      // an empty section ("auth:" with nothing under it) is allowed
    } else {
      const section = prefix ? ` in '${prefix}'` : ''
      const known = SETTINGS.filter((s) => s.key.startsWith(prefix ? `${prefix}.` : ''))
        .map((s) => s.key.slice(prefix ? prefix.length + 1 : 0).split('.')[0])
      const hint = [...new Set(known)].join(', ')
      throw new ConfigError(`config file ${file}: unknown key '${key}'${section}; known keys here: ${hint}`)
    }
  }
  return out
}

function setPath(obj: Record<string, unknown>, key: string, value: unknown) {
  const parts = key.split('.')
  let cur = obj
  for (const p of parts.slice(0, -1)) {
    cur[p] ??= {}
    cur = cur[p] as Record<string, unknown>
  }
  cur[parts.at(-1)!] = value
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

const kindWords: Record<Kind, string> = {
  string: 'a string',
  int: 'a whole number',
  bool: 'true or false',
  list: 'a list of strings',
  args: 'a list of strings',
  map: 'a mapping of names to strings',
  port_range: 'a port range like "8000-9000"',
}

/** Turns a YAML value or an environment/flag string into the setting's type, or throws naming `where`. */
export function coerce(s: Setting, raw: unknown, where: string): unknown {
  const bad = (detail?: string): never => {
    const shown = typeof raw === 'string' ? JSON.stringify(raw) : JSON.stringify(raw) ?? String(raw)
    throw new ConfigError(`${where}: ${shown} is not ${kindWords[s.kind]}${detail ? ` (${detail})` : ''}`)
  }
  const fromString = typeof raw === 'string'
  switch (s.kind) {
    case 'string':
      if (typeof raw === 'string') return raw
      if (typeof raw === 'number') return String(raw)
      return bad()
    case 'int': {
      const n = fromString ? (/^-?\d+$/.test(raw.trim()) ? Number(raw.trim()) : Number.NaN) : raw
      if (typeof n !== 'number' || !Number.isSafeInteger(n)) return bad()
      if (s.min !== undefined && n < s.min) return bad(`at least ${s.min}`)
      if (s.max !== undefined && n > s.max) return bad(`at most ${s.max}`)
      return n
    }
    case 'bool': {
      if (typeof raw === 'boolean') return raw
      if (fromString) {
        const v = raw.trim().toLowerCase()
        if (['true', '1', 'yes', 'on'].includes(v)) return true
        if (['false', '0', 'no', 'off'].includes(v)) return false
      }
      return bad()
    }
    case 'list':
    case 'args': {
      if (fromString) {
        const sep = s.kind === 'list' ? ',' : /\s+/
        return raw.split(sep).map((x) => x.trim()).filter(Boolean)
      }
      if (Array.isArray(raw) && raw.every((x) => typeof x === 'string' || typeof x === 'number')) return raw.map(String)
      if (raw === null) return []
      return bad()
    }
    case 'map': {
      if (fromString) {
        const out: Record<string, string> = {}
        for (const pair of raw.split(s.key.endsWith('response_headers') ? ';' : ',')) {
          if (!pair.trim()) continue
          const eq = pair.indexOf('=')
          if (eq <= 0) bad(`"${pair.trim()}" has no NAME=value`)
          out[pair.slice(0, eq).trim()] = pair.slice(eq + 1)
        }
        return out
      }
      if (raw === null) return {}
      if (isPlainObject(raw)) {
        const out: Record<string, string> = {}
        for (const [k, v] of Object.entries(raw)) {
          if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') bad(`value of ${k}`)
          out[k] = String(v)
        }
        return out
      }
      return bad()
    }
    case 'port_range': {
      let pair: unknown[] | null = null
      if (fromString) {
        const m = /^\s*(\d+)\s*[-,]\s*(\d+)\s*$/.exec(raw)
        pair = m ? [Number(m[1]), Number(m[2])] : null
      } else if (Array.isArray(raw) && raw.length === 2) {
        pair = raw
      }
      if (!pair || !pair.every((p) => Number.isInteger(p))) return bad()
      const [lo, hi] = pair as [number, number]
      if (lo < 1 || hi > 65535) return bad('ports are 1 to 65535')
      if (lo > hi) return bad('the first port must not be above the second')
      return [lo, hi]
    }
  }
}
