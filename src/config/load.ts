/**
 * Configuration: built-in defaults, then a YAML file, then LLAMACTL_* variables, then flags.
 * Any bad value stops start-up with one line naming the key and where it came from; nothing
 * falls back to a default silently.
 *
 * As in the original llamactl: a `.env` file fills in variables the environment lacks, and
 * `${VAR}` / `${VAR:-default}` in the file are replaced before it is parsed (an unset `${VAR}`
 * stays as written). Unlike it, a credential never ends up as that placeholder or as an empty
 * string: the first stops start-up, the second is no key.
 */
import { existsSync, readFileSync } from 'node:fs'
import { homedir, platform } from 'node:os'
import { dirname, isAbsolute, join, resolve } from 'node:path'
import { BACKEND_TYPES, backendFor } from '../backends'
import { ConfigError } from '../errors'
import { ALIAS_BY_KEY, ALIASES, type Alias, type Config, type Kind, SETTINGS, SETTINGS_BY_KEY, type Setting } from './settings'

export type { BackendConfig, Config } from './settings'

/** Where a value came from, for --print-config. */
export type Source =
  | { from: 'default' }
  | { from: 'file'; file: string; as?: string }
  | { from: 'env'; name: string; dotenv?: string }
  | { from: 'flag'; flag: string }

export interface LoadedConfig {
  config: Config
  /** The YAML file that was read, if any. */
  file: string | null
  /** The `.env` file that was read, if any, and the variables it added. */
  dotenv: { file: string; vars: Record<string, string> } | null
  /** Per setting key. */
  sources: Map<string, Source>
  /** Lines for start-up: old spellings, keys with nothing to do yet, unset placeholders. */
  notes: string[]
}

export interface LoadInput {
  /** --config PATH, if given. */
  configPath?: string
  /** Values from command-line flags, keyed by setting key. */
  flags?: Record<string, string>
  env?: Record<string, string | undefined>
  /** Where to look for ./llamactl.yaml, ./config.yaml and ./.env. */
  cwd?: string
  home?: string
}

export function defaultDataDir(home = homedir(), env: Record<string, string | undefined> = process.env): string {
  if (platform() === 'darwin') return join(home, 'Library', 'Application Support', 'llamactl')
  if (platform() === 'win32') return join(env.PROGRAMDATA || env.LOCALAPPDATA || 'C:\\ProgramData', 'llamactl')
  return join(env.XDG_DATA_HOME || join(home, '.local', 'share'), 'llamactl')
}

/** llama.cpp's own model cache, which the original uses for downloads. */
function defaultLlamaCache(home: string, env: Record<string, string | undefined>): string {
  if (platform() === 'darwin') return join(home, 'Library', 'Caches', 'llama.cpp')
  if (platform() === 'win32') return join(env.LOCALAPPDATA || join(home, 'AppData', 'Local'), 'llama.cpp', 'cache')
  return join(env.XDG_CACHE_HOME || join(home, '.cache'), 'llama.cpp')
}

/** The folders, besides the working directory, that hold config.yaml (and .env), in order. */
function platformConfigDirs(home: string, env: Record<string, string | undefined>): string[] {
  if (platform() === 'darwin') return [join(home, 'Library', 'Application Support', 'llamactl'), '/Library/Application Support/llamactl']
  if (platform() === 'win32') {
    return [join(env.APPDATA || home, 'llamactl'), ...(env.PROGRAMDATA ? [join(env.PROGRAMDATA, 'llamactl')] : [])]
  }
  return [join(home, '.config', 'llamactl'), '/etc/llamactl']
}

/** The config file to read: --config, then LLAMACTL_CONFIG_PATH, then the usual places. */
export function findConfigFile(input: LoadInput, env: Record<string, string | undefined> = input.env ?? process.env): string | null {
  const explicit = input.configPath ?? env.LLAMACTL_CONFIG_PATH
  if (explicit) {
    if (!existsSync(explicit)) throw new ConfigError(`config file ${explicit} does not exist`)
    return explicit
  }
  const cwd = input.cwd ?? process.cwd()
  const candidates = [
    join(cwd, 'llamactl.yaml'),
    join(cwd, 'config.yaml'),
    ...platformConfigDirs(input.home ?? homedir(), env).map((d) => join(d, 'config.yaml')),
  ]
  return candidates.find((p) => existsSync(p)) ?? null
}

/** The `.env` to read: beside an explicitly named config, in the working directory, in the config folders. */
function findDotEnv(input: LoadInput, env: Record<string, string | undefined>): string | null {
  const explicit = input.configPath ?? env.LLAMACTL_CONFIG_PATH
  const cwd = input.cwd ?? process.cwd()
  const candidates = [
    ...(explicit ? [join(dirname(resolve(cwd, explicit)), '.env')] : []),
    join(cwd, '.env'),
    ...platformConfigDirs(input.home ?? homedir(), env).map((d) => join(d, '.env')),
  ]
  return candidates.find((p) => existsSync(p)) ?? null
}

/**
 * `NAME=value` lines, as the original reads them: `#` lines and lines without `=` skipped, an
 * `export ` prefix dropped, name and value trimmed, one pair of matching quotes around the value
 * removed; nothing else (no inline comments, no escapes, no expansion).
 */
export function parseDotEnv(text: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const raw of text.split('\n')) {
    let line = raw.trim()
    if (!line || line.startsWith('#')) continue
    if (line.startsWith('export ')) line = line.slice(7).trim()
    const eq = line.indexOf('=')
    if (eq < 0) continue
    const name = line.slice(0, eq).trim()
    let value = line.slice(eq + 1).trim()
    if (value.length >= 2 && (value[0] === '"' || value[0] === "'") && value.at(-1) === value[0]) value = value.slice(1, -1)
    out[name] = value
  }
  return out
}

const PLACEHOLDER = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g
const UNRESOLVED = /\$\{[A-Za-z_][A-Za-z0-9_]*\}/

/**
 * Replaces `${VAR}` with its value and `${VAR:-default}` with its value or, when it is unset or
 * empty, the default; an unset `${VAR}` is left as written, and its name reported. `$VAR`
 * without braces is text.
 */
export function expandVars(text: string, env: Record<string, string | undefined>, unset?: Set<string>): string {
  return text.replace(PLACEHOLDER, (whole, name: string, fallback: string | undefined) => {
    const value = env[name]
    if (fallback !== undefined) return value ? value : fallback
    if (value !== undefined) return value
    unset?.add(name)
    return whole
  })
}

export function loadConfig(input: LoadInput = {}): LoadedConfig {
  const given = input.env ?? process.env
  const home = input.home ?? homedir()
  const notes: string[] = []
  const values = new Map<string, unknown>()
  const sources = new Map<string, Source>()
  for (const s of SETTINGS) {
    values.set(s.key, structuredClone(s.default))
    sources.set(s.key, { from: 'default' })
  }

  // The .env only adds: a variable already set keeps its value.
  const env: Record<string, string | undefined> = { ...given }
  let dotenv: LoadedConfig['dotenv'] = null
  const dotenvFile = findDotEnv(input, given)
  if (dotenvFile) {
    const vars: Record<string, string> = {}
    for (const [k, v] of Object.entries(parseDotEnv(readFileSync(dotenvFile, 'utf8')))) {
      if (given[k] === undefined) env[k] = vars[k] = v
    }
    dotenv = { file: dotenvFile, vars }
  }

  // As in the original, .env cannot choose the config file: it is found beside it.
  const file = findConfigFile(input, given)
  if (file) {
    const unset = new Set<string>()
    const text = expandVars(readFileSync(file, 'utf8'), env, unset)
    let doc: unknown
    try {
      doc = Bun.YAML.parse(text)
    } catch (e) {
      throw new ConfigError(`config file ${file}: not valid YAML: ${(e as Error).message}`)
    }
    if (doc !== null && doc !== undefined) {
      if (!isPlainObject(doc)) throw new ConfigError(`config file ${file}: the top level must be a mapping of keys`)
      const seen = new Map<string, string>()
      for (const [written, raw] of flattenYaml(doc, '', file)) {
        const alias = ALIAS_BY_KEY.get(written)
        const key = alias ? alias.for : written
        const where = `${file}: key '${written}'`
        const value = coerce(SETTINGS_BY_KEY.get(key)!, raw, where)
        const before = seen.get(key)
        if (before !== undefined && !Bun.deepEquals(values.get(key), value)) {
          throw new ConfigError(`${where}: '${before}' is also set, to another value; they are one setting (${key}): keep one`)
        }
        seen.set(key, written)
        if (alias?.deprecated) notes.push(`${file}: '${written}' is the old name of '${key}'; it still works, but rename it`)
        if (before === undefined || !alias) {
          values.set(key, value)
          sources.set(key, { from: 'file', file, ...(alias ? { as: written } : {}) })
        }
      }
    }
    for (const name of unset) notes.push(`${file}: \${${name}} stays as written: the variable ${name} is not set (write \${${name}:-} for an empty value)`)
  }

  // Aliases first, so the current name wins when both are set.
  const envRows: [string, Setting, Alias | null][] = [
    ...ALIASES.flatMap((a) => (a.env ? [[a.env, SETTINGS_BY_KEY.get(a.for)!, a] as [string, Setting, Alias]] : [])),
    ...SETTINGS.flatMap((s) => (s.env ? [[s.env, s, null] as [string, Setting, null]] : [])),
  ]
  for (const [name, s, alias] of envRows) {
    const raw = env[name]
    if (raw === undefined || raw === '') continue
    values.set(s.key, coerce(s, raw, `environment variable ${name}`))
    sources.set(s.key, { from: 'env', name, ...(dotenv && name in dotenv.vars ? { dotenv: dotenv.file } : {}) })
    if (alias?.deprecated) notes.push(`environment variable ${name} is the old name of ${SETTINGS_BY_KEY.get(alias.for)!.env ?? alias.for}; it still works, but rename it`)
  }

  for (const [key, raw] of Object.entries(input.flags ?? {})) {
    const s = SETTINGS_BY_KEY.get(key)
    if (!s) throw new ConfigError(`unknown setting ${key}`)
    values.set(key, coerce(s, raw, `flag ${s.flag}`))
    sources.set(key, { from: 'flag', flag: s.flag! })
  }

  checkSecrets(values, sources, notes)
  finishPaths(values, input.cwd ?? process.cwd(), home, env)
  if (!values.get('backends.llama-cpp.cache_dir')) values.set('backends.llama-cpp.cache_dir', defaultLlamaCache(home, env))

  for (const type of BACKEND_TYPES) {
    const { configKey, subcommand } = backendFor(type)
    // The original's vLLM default is `args: ["serve"]`; here `serve` is the backend's own subcommand.
    const key = `backends.${configKey}.args`
    const args = values.get(key) as string[]
    if (subcommand.length && subcommand.every((w, i) => args[i] === w)) values.set(key, args.slice(subcommand.length))
    if (values.get(`backends.${configKey}.docker.enabled`) && !values.get(`backends.${configKey}.docker.image`)) {
      notes.push(`backends.${configKey}.docker.enabled is on but backends.${configKey}.docker.image is empty: instances of it cannot start in Docker until an image is set`)
    }
  }

  const inferenceLimit = values.get('server.max_inference_body_size') as number
  const buffered = values.get('server.max_buffered_body_size') as number
  if (inferenceLimit > buffered) {
    throw new ConfigError(
      `server.max_inference_body_size (${inferenceLimit}) is larger than server.max_buffered_body_size (${buffered}): a body that large could never be held; raise max_buffered_body_size or lower max_inference_body_size`,
    )
  }

  // As in the original, this llamactl is always one of the nodes.
  const nodes = values.get('nodes') as Config['nodes']
  const local = values.get('local_node') as string
  if (!local) throw new ConfigError(`local_node: must not be empty (from ${describe(sources.get('local_node')!)})`)
  nodes[local] ??= { address: '', api_key: '' }
  for (const [name, n] of Object.entries(nodes)) {
    if (name !== local && !n.address) notes.push(`nodes.${name} has no address, so nothing can be placed on it (only local_node, ${JSON.stringify(local)}, goes without one)`)
  }

  for (const s of SETTINGS) {
    // Said only when it would change something: `group_limits: {}` or a pool size of 25 copied
    // from the original's defaults asks for nothing that is missing.
    if (!s.use || s.use === 'yes' || sources.get(s.key)!.from === 'default' || Bun.deepEquals(values.get(s.key), s.default)) continue
    const what = s.use === 'later' ? 'is read and checked but not used yet' : 'is accepted and has no effect'
    notes.push(`${s.key} ${what}: ${s.why}`)
  }

  const config = {} as Record<string, unknown>
  for (const [key, value] of values) setPath(config, key, value)
  return { config: config as unknown as Config, file, dotenv, sources, notes }
}

export function describe(src: Source): string {
  switch (src.from) {
    case 'default':
      return 'default'
    case 'file':
      return `file ${src.file}${src.as ? ` (as ${src.as})` : ''}`
    case 'env':
      return `env ${src.name}${src.dotenv ? ` (from ${src.dotenv})` : ''}`
    case 'flag':
      return `flag ${src.flag}`
  }
}

/**
 * A credential must be one a person chose. A `${VAR}` left as written (its variable unset) would
 * make the placeholder text a working key, so it stops start-up; an empty entry (`${VAR:-}`) is
 * no key.
 */
function checkSecrets(values: Map<string, unknown>, sources: Map<string, Source>, notes: string[]) {
  for (const s of SETTINGS) {
    if (!s.secret) continue
    const where = describe(sources.get(s.key)!)
    const refuse = (v: string, at: string) => {
      const m = UNRESOLVED.exec(v)
      if (m) throw new ConfigError(`${at}: ${m[0]} was not replaced (its variable is not set), and llamactl will not take the placeholder as a key (from ${where})`)
    }
    const v = values.get(s.key)
    if (s.kind === 'list') {
      const list = v as string[]
      list.forEach((k) => refuse(k, s.key))
      const kept = list.filter((k) => k.trim() !== '')
      if (kept.length < list.length) notes.push(`${s.key}: ${list.length - kept.length} empty entr${list.length - kept.length === 1 ? 'y is' : 'ies are'} not a key (from ${where})`)
      values.set(s.key, kept)
    } else if (s.kind === 'nodes') {
      for (const [name, n] of Object.entries(v as Config['nodes'])) refuse(n.api_key, `nodes.${name}.api_key`)
    } else if (typeof v === 'string') {
      refuse(v, s.key)
      values.set(s.key, v.trim() === '' ? '' : v)
    }
  }
}

function expandHome(p: string, home: string): string {
  if (p === '~') return home
  if (p.startsWith('~/') || p.startsWith('~\\')) return join(home, p.slice(2))
  return p
}

/** `~` in every path; data_dir from the working directory; the others inside data_dir unless absolute. */
function finishPaths(values: Map<string, unknown>, cwd: string, home: string, env: Record<string, string | undefined>) {
  const dataDir = expandHome(values.get('data_dir') as string, home)
  values.set('data_dir', dataDir ? resolve(cwd, dataDir) : defaultDataDir(home, env))
  const root = values.get('data_dir') as string
  for (const s of SETTINGS) {
    if (s.kind !== 'path' || s.key === 'data_dir') continue
    let p = expandHome(values.get(s.key) as string, home)
    if (s.under === 'data_dir' && p) {
      // The original's documentation writes these defaults as `data_dir/logs`, meaning the data folder.
      if (p === 'data_dir' || p.startsWith('data_dir/')) p = p.slice('data_dir'.length).replace(/^\//, '')
      p = isAbsolute(p) ? p : join(root, p)
    }
    values.set(s.key, p)
  }
}

/** Walks the YAML document to setting keys (or their old spellings). Mappings that are values stay whole. */
function flattenYaml(doc: Record<string, unknown>, prefix: string, file: string): [string, unknown][] {
  const out: [string, unknown][] = []
  const isSection = (key: string) => SETTINGS.some((s) => s.key.startsWith(`${key}.`)) || ALIASES.some((a) => a.key?.startsWith(`${key}.`))
  for (const [k, v] of Object.entries(doc)) {
    const key = prefix ? `${prefix}.${k}` : k
    if (SETTINGS_BY_KEY.has(key) || ALIAS_BY_KEY.has(key)) {
      out.push([key, v])
    } else if (isPlainObject(v) && isSection(key)) {
      out.push(...flattenYaml(v, key, file))
    } else if (v === null && isSection(key)) {
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
  path: 'a path',
  enum: 'one of the allowed values',
  int: 'a whole number',
  bool: 'true or false',
  list: 'a list of strings',
  args: 'a list of strings',
  map: 'a mapping of names to strings',
  int_map: 'a mapping of names to whole numbers',
  port_range: 'a port range like "8000-9000"',
  duration: 'a duration like "90s", "5m" or "1h"',
  nodes: 'a mapping of node names to { address, api_key, ca_file }',
}

const DURATION_UNITS: Record<string, number> = { ns: 1e-9, us: 1e-6, µs: 1e-6, ms: 1e-3, s: 1, m: 60, h: 3600 }

/** Go's duration syntax ("1h30m", "300ms", "1.5h"), in seconds; a bare number is seconds. */
export function parseDuration(text: string): number | null {
  const t = text.trim()
  if (/^\d+(\.\d+)?$/.test(t)) return Number(t)
  if (t === '0') return 0
  if (!/^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/.test(t)) return null
  let total = 0
  for (const m of t.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)) total += Number(m[1]) * DURATION_UNITS[m[2]!]!
  return total
}

const URL_LIKE = /^https?:\/\/[^\s/]+/

/** Turns a YAML value or an environment/flag string into the setting's type, or throws naming `where`. */
export function coerce(s: Setting, raw: unknown, where: string): unknown {
  const bad = (detail?: string): never => {
    const shown = s.secret ? '(a secret value)' : (JSON.stringify(raw) ?? String(raw))
    throw new ConfigError(`${where}: ${shown} is not ${kindWords[s.kind]}${detail ? ` (${detail})` : ''}`)
  }
  const fromString = typeof raw === 'string'
  const whole = (n: unknown): number => {
    const v = typeof n === 'string' ? (/^-?\d+$/.test(n.trim()) ? Number(n.trim()) : Number.NaN) : n
    if (typeof v !== 'number' || !Number.isSafeInteger(v)) return bad()
    if (s.min !== undefined && v < s.min) return bad(`at least ${s.min}`)
    if (s.max !== undefined && v > s.max) return bad(`at most ${s.max}`)
    return v
  }
  switch (s.kind) {
    case 'string':
    case 'path':
      if (typeof raw === 'string') return raw
      if (typeof raw === 'number') return String(raw)
      if (raw === null) return ''
      return bad()
    case 'enum':
      if (typeof raw === 'string' && s.values!.includes(raw)) return raw
      return bad(`one of ${s.values!.join(', ')}`)
    case 'int':
      return whole(raw)
    case 'bool': {
      if (typeof raw === 'boolean') return raw
      if (fromString) {
        const v = raw.trim().toLowerCase()
        if (['true', '1', 'yes', 'on', 't'].includes(v)) return true
        if (['false', '0', 'no', 'off', 'f'].includes(v)) return false
      }
      return bad()
    }
    case 'duration': {
      const n = typeof raw === 'number' ? raw : fromString ? parseDuration(raw) : null
      if (n === null || !Number.isFinite(n) || n < 0) return bad()
      if (s.min !== undefined && n < s.min) return bad(`at least ${s.min}s`)
      return n
    }
    case 'list':
    case 'args': {
      if (fromString) {
        const sep = s.kind === 'list' ? ',' : /\s+/
        return raw.split(sep).map((x) => x.trim()).filter(Boolean)
      }
      if (raw === null) return []
      // An empty list item (`- ` after `${VAR:-}`) reads as null.
      if (Array.isArray(raw) && raw.every((x) => typeof x === 'string' || typeof x === 'number' || x === null)) return raw.map((x) => (x === null ? '' : String(x)))
      return bad()
    }
    case 'map':
    case 'int_map': {
      const value = (k: string, v: unknown) => (s.kind === 'int_map' ? whole(v) : String(v))
      if (fromString) {
        const out: Record<string, unknown> = {}
        for (const pair of raw.split(s.key.endsWith('response_headers') ? ';' : ',')) {
          if (!pair.trim()) continue
          const eq = pair.indexOf('=')
          if (eq <= 0) bad(`"${pair.trim()}" has no NAME=value`)
          const k = pair.slice(0, eq).trim()
          out[k] = value(k, pair.slice(eq + 1))
        }
        return out
      }
      if (raw === null) return {}
      if (isPlainObject(raw)) {
        const out: Record<string, unknown> = {}
        for (const [k, v] of Object.entries(raw)) {
          if (v === null) out[k] = s.kind === 'map' ? '' : bad(`value of ${k}`)
          else if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') bad(`value of ${k}`)
          else out[k] = value(k, v)
        }
        return out
      }
      return bad()
    }
    case 'nodes': {
      if (raw === null) return {}
      if (!isPlainObject(raw)) return bad()
      const out: Record<string, { address: string; api_key: string; ca_file?: string }> = {}
      for (const [name, node] of Object.entries(raw)) {
        const at = `${where.replace(/'$/, '')}.${name}'`
        if (node !== null && !isPlainObject(node)) throw new ConfigError(`${at}: is not a mapping with address and api_key`)
        const n = (node ?? {}) as Record<string, unknown>
        for (const k of Object.keys(n)) {
          if (k !== 'address' && k !== 'api_key' && k !== 'ca_file') throw new ConfigError(`${at}: unknown key '${k}'; known keys here: address, api_key, ca_file`)
        }
        const address = n.address ?? ''
        const apiKey = n.api_key ?? ''
        if (typeof address !== 'string' || (address !== '' && !URL_LIKE.test(address))) {
          throw new ConfigError(`${at}: address ${JSON.stringify(address)} is not an http:// or https:// URL (empty for this llamactl)`)
        }
        if (typeof apiKey !== 'string') throw new ConfigError(`${at}: api_key is not a string`)
        if (address && /^https?:\/\/[^/]*@/.test(address)) throw new ConfigError(`${at}: address has a user or password in it; give the node's key as api_key, which is sent only in a header`)
        const caFile = n.ca_file ?? ''
        if (typeof caFile !== 'string') throw new ConfigError(`${at}: ca_file is not a string`)
        out[name] = { address, api_key: apiKey, ...(caFile && { ca_file: caFile }) }
      }
      return out
    }
    case 'port_range': {
      let pair: unknown[] | null = null
      if (fromString) {
        const m = /^\s*(\d+)\s*[-,]\s*(\d+)\s*$/.exec(raw)
        pair = m ? [Number(m[1]), Number(m[2])] : null
      } else if (Array.isArray(raw) && raw.length === 2) {
        pair = raw.map((p) => (typeof p === 'string' && /^\d+$/.test(p.trim()) ? Number(p) : p))
      }
      if (!pair || !pair.every((p) => Number.isInteger(p))) return bad()
      const [lo, hi] = pair as [number, number]
      if (lo < 1 || hi > 65535) return bad('ports are 1 to 65535')
      if (lo > hi) return bad('the first port must not be above the second')
      return [lo, hi]
    }
  }
}
