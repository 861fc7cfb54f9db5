/**
 * The instance form and instance options, both ways: what was typed (strings, kept as typed so
 * a refused submit loses nothing) to the options body the API takes, and stored options back
 * to a form. Values keep their meaning: an empty field is "use the default", a numeric text
 * becomes a number where the backend's flag table says the option is one, and anything the
 * server would refuse is sent as typed so the server's own message comes back.
 */
import { BACKENDS, backendFor, type BackendType, findBackend } from '../backends'
import type { FlagSpec } from '../backends/spec'
import { type CommonField, emptyForm, type FormErrors, type FormState, type TriState } from '../../views/instance-form'

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i
const SUPERVISION = ['auto_restart', 'max_restarts', 'restart_delay', 'on_demand_start', 'idle_timeout'] as const
const ALL_COMMON = new Set(BACKENDS.flatMap((b) => b.formFields.map((f) => f.name)))

function isBackend(type: string): type is BackendType {
  return findBackend(type) !== undefined
}

export function commonFieldsOf(backend: string): CommonField[] {
  return (findBackend(backend) ?? BACKENDS[0]).formFields
}

/** What the form offers for a backend: the backends to choose from and its plain fields. */
export function formChoices(backend: string) {
  return { backends: BACKENDS.map((b) => ({ type: b.type, title: b.title })), fields: commonFieldsOf(backend) }
}

/** Option names the backend knows, other than its plain fields: suggestions for the advanced rows. */
export function knownOptions(backend: string): string[] {
  if (!isBackend(backend)) return []
  const common = new Set(commonFieldsOf(backend).map((f) => f.name))
  return [...backendFor(backend).table.byName.keys()].filter((k) => !common.has(k))
}

function pairs(form: URLSearchParams, kind: 'env' | 'opt'): [string, string][] {
  const keys = form.getAll(`${kind}_key`)
  const values = form.getAll(`${kind}_value`)
  const out: [string, string][] = []
  for (let i = 0; i < Math.max(keys.length, values.length); i++) {
    const k = keys[i] ?? ''
    const v = values[i] ?? ''
    if (k.trim() !== '' || v.trim() !== '') out.push([k, v])
  }
  return out
}

function tri(value: string | null): TriState {
  return value === 'true' || value === 'false' ? value : ''
}

/**
 * Moves values between the plain fields and the advanced rows after the backend changed, so
 * that an option the new backend has no field for stays in the form as an advanced row.
 */
function settle(s: FormState): FormState {
  const shown = new Set(commonFieldsOf(s.backend_type).map((f) => f.name))
  const common: Record<string, string> = {}
  const advanced: [string, string][] = []
  for (const [k, v] of Object.entries(s.common)) {
    if (shown.has(k)) common[k] = v
    else if (v.trim() !== '') advanced.push([k, v])
  }
  const counts = new Map<string, number>()
  for (const [k] of s.advanced) counts.set(k.trim(), (counts.get(k.trim()) ?? 0) + 1)
  for (const [k, v] of s.advanced) {
    const name = k.trim()
    if (shown.has(name) && counts.get(name) === 1 && (common[name] ?? '').trim() === '') common[name] = v
    else advanced.push([k, v])
  }
  return { ...s, common, advanced }
}

/** The form as posted. */
export function formFromParams(form: URLSearchParams): FormState {
  const common: Record<string, string> = {}
  for (const name of ALL_COMMON) {
    const v = form.get(name)
    if (v !== null) common[name] = v
  }
  return settle({
    name: form.get('name') ?? '',
    backend_type: form.get('backend_type') ?? 'llama_cpp',
    common,
    advanced: pairs(form, 'opt'),
    environment: pairs(form, 'env'),
    auto_restart: tri(form.get('auto_restart')),
    max_restarts: form.get('max_restarts') ?? '',
    restart_delay: form.get('restart_delay') ?? '',
    on_demand_start: tri(form.get('on_demand_start')),
    idle_timeout: form.get('idle_timeout') ?? '',
    group: form.get('group') ?? '',
    aliases: form.get('aliases') ?? '',
    node: form.get('node') ?? '',
    command: form.get('command') ?? '',
  })
}

function text(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value) ?? ''
}

/**
 * A form showing options (an instance's own, without the defaults filled in, or what
 * parse-command made of a command line). Fields the options do not have are left as in `base`.
 */
export function formFromOptions(options: Record<string, unknown>, base: FormState = emptyForm()): FormState {
  const s: FormState = { ...base }
  if (typeof options.backend_type === 'string') s.backend_type = options.backend_type
  if (options.backend_options && typeof options.backend_options === 'object') {
    s.common = {}
    s.advanced = []
    for (const [k, v] of Object.entries(options.backend_options as Record<string, unknown>)) {
      // extra_args as the original llamactl's map {"flag": "value"}: its argv words, one row each
      if (k === 'extra_args' && v && typeof v === 'object' && !Array.isArray(v)) {
        for (const [flag, value] of Object.entries(v as Record<string, unknown>)) {
          s.advanced.push([k, flag.startsWith('-') ? flag : `--${flag}`])
          if (value !== '') s.advanced.push([k, text(value)])
        }
      } else if (Array.isArray(v)) for (const item of v) s.advanced.push([k, text(item)])
      else if (v === true) s.advanced.push([k, ''])
      else s.advanced.push([k, text(v)])
    }
  }
  if (options.environment && typeof options.environment === 'object') {
    s.environment = Object.entries(options.environment as Record<string, unknown>).map(([k, v]) => [k, text(v)])
  }
  for (const key of SUPERVISION) {
    const v = options[key]
    if (v === undefined || v === null) continue
    if (key === 'auto_restart' || key === 'on_demand_start') s[key] = v === true ? 'true' : v === false ? 'false' : ''
    else s[key] = text(v)
  }
  if (typeof options.group === 'string') s.group = options.group
  if (Array.isArray(options.aliases)) s.aliases = options.aliases.map(text).join(', ')
  if (Array.isArray(options.nodes) && typeof options.nodes[0] === 'string') s.node = options.nodes[0]
  return settle(s)
}

/** A typed value for a backend option: as its flag table says, or guessed for flags it does not list. */
function optionValue(raw: string, spec: FlagSpec | undefined): unknown {
  const v = raw.trim()
  switch (spec?.type) {
    case 'int':
    case 'float':
      return NUMBER.test(v) ? Number(v) : v
    case 'bool':
      return v === '' || v === 'true' ? true : v === 'false' ? false : v
    case 'string':
    case 'list':
      return v === '' ? true : v
    default:
      if (v === '' || v === 'true') return true
      if (v === 'false') return false
      return NUMBER.test(v) ? Number(v) : v
  }
}

function numberOrText(raw: string): unknown {
  const v = raw.trim()
  return NUMBER.test(v) ? Number(v) : v
}

/** The options body for POST/PUT /api/v1/instances/{name}. */
export function optionsFromForm(s: FormState): Record<string, unknown> {
  const table = backendFor(isBackend(s.backend_type) ? s.backend_type : 'llama_cpp').table
  const body: Record<string, unknown> = { backend_type: s.backend_type }
  const opts: Record<string, unknown> = {}
  const add = (name: string, raw: string) => {
    // any name of an option types its value: `ngl` as gpu_layers, `no_mmap` as a switch
    const meaning = table.resolve(name)
    const value = optionValue(raw, meaning?.negative ? { ...meaning.spec, type: 'bool' } : meaning?.spec)
    const had = opts[name]
    opts[name] = had === undefined ? value : Array.isArray(had) ? [...had, value] : [had, value]
  }
  for (const f of commonFieldsOf(s.backend_type)) {
    const v = s.common[f.name] ?? ''
    if (v.trim() !== '') add(f.name, v)
  }
  for (const [k, v] of s.advanced) add(k.trim(), v)
  if (Object.keys(opts).length) body.backend_options = opts
  const env: Record<string, string> = {}
  for (const [k, v] of s.environment) env[k.trim()] = v
  if (Object.keys(env).length) body.environment = env
  if (s.group.trim() !== '') body.group = s.group.trim()
  if (s.node.trim() !== '') body.nodes = [s.node.trim()]
  const aliases = s.aliases.split(/[\s,]+/).filter((a) => a !== '')
  if (aliases.length) body.aliases = aliases
  for (const key of SUPERVISION) {
    const v = s[key]
    if (v.trim() === '') continue
    body[key] = key === 'auto_restart' || key === 'on_demand_start' ? v === 'true' : numberOrText(v)
  }
  return body
}

/**
 * Checks the server cannot make for the page: the port is a whole number (the form's text
 * would otherwise reach the API as a string; the API itself refuses ports outside 1-65535).
 */
export function checkForm(s: FormState): FormErrors {
  const errors: FormErrors = {}
  const port = (s.common.port ?? '').trim()
  if (port !== '' && !/^\d{1,5}$/.test(port)) errors.port = `port: a whole number from 1 to 65535, got ${JSON.stringify(port.slice(0, 40))}`
  return errors
}

/**
 * Which field a refused option belongs to. The options parser names the field first
 * ("backend_options.ctx_size: …", "max_restarts: …"); anything else is about the whole form.
 */
export function fieldOfError(message: string, s: FormState): string {
  const m = /^([a-z_]+)(?:\.([^:\s]*))?:/.exec(message)
  if (!m) return 'form'
  const [, top, sub] = m
  if (top === 'backend_options') {
    return sub && commonFieldsOf(s.backend_type).some((f) => f.name === sub) ? sub : 'advanced'
  }
  if (top === 'nodes') return 'node'
  if (top === 'backend_type' || top === 'environment' || top === 'group' || top === 'aliases' || (SUPERVISION as readonly string[]).includes(top!)) return top!
  return 'form'
}
