/**
 * A backend's options are a table of flag specs. Validation, argv building, command parsing
 * and the TypeBox schema all read the same table, so they cannot disagree.
 *
 * An option's name is its long flag name in snake_case (`--ctx-size` → `ctx_size`) or the
 * original llamactl's name for it. Every other spelling of the flag (`-c`, `--n-gpu-layers`,
 * `-nkvo`, another release's `--draft-max`) is understood in command lines and, in snake_case
 * without its dashes, is a name for the option too (`ngl`, `no_kv_offload`), as in the
 * original: aliases are spellings in the rows, never cases in code.
 */
import { type TSchema, Type as T } from '@sinclair/typebox'
import { BadRequest } from '../errors'

export type OptionType =
  | 'string'
  | 'int'
  | 'float'
  | 'bool' // true: the flag; false: its negation (`--no-x`) if it has one, else nothing
  | 'list' // strings; how they reach argv: see ListMode
  | 'int_or_string' // a whole number or a word: `--gpu-layers 99` or `--gpu-layers all`
  | 'int_pair' // two whole numbers after one flag: `--control-vector-layer-range 0 31`
  | 'bool_or_string' // a bare flag (true) or the flag with a value: vLLM's `--hf-token [TOKEN]`
  | 'json_list' // strings sent as one JSON array: vLLM's `--allowed-origins '["a", "b"]'`

/**
 * How a list reaches argv: `repeat` gives the flag once per item (`--middleware a --middleware b`),
 * `csv` gives it once with the items joined by commas (`--lora a,b`: what llama-server wants,
 * it warns about repeated flags), `nargs` gives the flag once followed by every item
 * (`--served-model-name a b`: argparse's nargs='+').
 */
export type ListMode = 'repeat' | 'csv' | 'nargs'

export interface FlagSpec {
  /**
   * The option's name: the first long spelling in snake_case, unless the row names it (the
   * original llamactl's name where it has one, so its clients read back what they know).
   */
  name: string
  type: OptionType
  /** Every spelling that turns the option on or takes its value; the first is what argv uses. */
  flags: string[]
  /** Spellings that turn a bool option off (`--no-mmap`); the first is what argv uses. */
  negations: string[]
  list?: ListMode
  /**
   * Spellings of other releases of the backend (`--draft-max` before `--spec-draft-n-max`):
   * understood in command lines, and used for argv when the binary knows none of `flags`.
   */
  was: string[]
  wasNegations: string[]
  /** Option names no spelling gives (`fim_qwen_1b`): the original llamactl's, kept as aliases. */
  names: string[]
  /**
   * Set on options the table's release no longer has: why, and the options that mean the same
   * on a binary without the flag (`mmap: false` is `load_mode: "none"` there).
   */
  removed?: { note: string; on?: Record<string, OptionValue>; off?: Record<string, OptionValue> }
  /** For a value flag that other releases have as a bare switch: which values mean it on (true) or off (false). */
  asSwitch?: Record<string, boolean>
}

/** What a row may add to its spellings and type. */
export interface RowExtras {
  list?: ListMode
  /** The option's name when it is not the first long spelling's. */
  name?: string
  /** Spellings of other releases, in the spellings' syntax: `--draft-max, --draft / --no-x`. */
  was?: string
  /** Other option names, comma-separated. */
  names?: string
  removed?: FlagSpec['removed']
  asSwitch?: FlagSpec['asSwitch']
}

/**
 * A spec from the backend's own help line: `opt('-c, --ctx-size', 'int')`,
 * `opt('-kvo, --kv-offload / -nkvo, --no-kv-offload', 'bool')`. The option's name comes from
 * the first long spelling, which argv then uses.
 */
export function opt(spellings: string, type: OptionType, extras?: ListMode | RowExtras): FlagSpec {
  const more: RowExtras = typeof extras === 'string' ? { list: extras } : (extras ?? {})
  const list = more.list
  const [on, off = ''] = spellings.split(' / ')
  const split = (s: string) => s.split(',').map((x) => x.trim()).filter(Boolean)
  const flags = split(on!)
  const negations = split(off)
  const long = flags.find((f) => f.startsWith('--'))
  if (!long) throw new Error(`flag spec ${spellings}: needs a long spelling`)
  const [wasOn, wasOff = ''] = (more.was ?? '').split(' / ')
  const wasNegations = split(wasOff)
  if ((negations.length || wasNegations.length) && type !== 'bool') throw new Error(`flag spec ${spellings}: only bool options have negations`)
  if ((type === 'list') !== (list !== undefined)) throw new Error(`flag spec ${spellings}: list options need a list mode`)
  const longFirst = (fs: string[]) => fs.filter((f) => f.startsWith('--')).concat(fs.filter((f) => !f.startsWith('--')))
  const canonical = [long, ...flags.filter((f) => f !== long)]
  return {
    name: more.name ?? long.slice(2).replaceAll('-', '_'),
    type,
    flags: canonical,
    negations: longFirst(negations),
    list,
    was: longFirst(split(wasOn!)),
    wasNegations: longFirst(wasNegations),
    names: split(more.names ?? ''),
    removed: more.removed,
    asSwitch: more.asSwitch,
  }
}

/**
 * How a backend reads its command line.
 * - `llama`: llama.cpp's parser takes the word after a flag as its value whatever it looks like,
 *   and knows no `--flag=value`.
 * - `argparse` (MLX-LM, vLLM): a word starting with `-` is a flag unless it is a negative number,
 *   so such a value must be attached: `--flag=-x`.
 */
export interface Dialect {
  style: 'llama' | 'argparse'
  /** `--ctx_size` is `--ctx-size` (llama.cpp and vLLM's FlexibleArgumentParser both accept this). */
  underscores: boolean
  /** `-qawq` is `-q awq` (argparse's attached short values). */
  attachedShort: boolean
}

/** What an option name or a spelling stands for: a spec, and whether it turns the spec off. */
export interface Meaning {
  spec: FlagSpec
  negative: boolean
}

/** A backend's flags, looked up by option name or by any spelling. */
export class FlagTable {
  readonly specs: FlagSpec[]
  readonly byName = new Map<string, FlagSpec>()
  /** Spelling → the spec and whether this spelling turns it off (other releases' spellings too). */
  readonly bySpelling = new Map<string, Meaning>()
  /**
   * Every option name the API takes: the table's names, the rows' `names`, and each spelling
   * without its dashes in snake_case (`n_gpu_layers`, `ngl`, `no_mmap`, `webui`), which is how
   * the original llamactl names the same options.
   */
  readonly byOptionName = new Map<string, Meaning>()

  constructor(
    specs: FlagSpec[],
    readonly dialect: Dialect,
  ) {
    this.specs = specs
    for (const s of specs) {
      if (this.byName.has(s.name)) throw new Error(`duplicate option ${s.name}`)
      this.byName.set(s.name, s)
      for (const f of [...s.flags, ...s.was]) this.add(f, s, false)
      for (const f of [...s.negations, ...s.wasNegations]) this.add(f, s, true)
    }
    // Names first, then aliases, so an alias never hides a name.
    for (const s of specs) this.byOptionName.set(s.name, { spec: s, negative: false })
    for (const s of specs) for (const n of s.names) this.alias(n, { spec: s, negative: false })
    for (const [spelling, meaning] of this.bySpelling) this.alias(spelling.replace(/^-+/, '').replaceAll('-', '_'), meaning)
  }

  private add(spelling: string, spec: FlagSpec, negative: boolean) {
    if (this.bySpelling.has(spelling)) throw new Error(`duplicate spelling ${spelling}`)
    this.bySpelling.set(spelling, { spec, negative })
  }

  private alias(name: string, meaning: Meaning) {
    if (!this.byOptionName.has(name)) this.byOptionName.set(name, meaning)
  }

  /** What an option name means, or undefined for a name the table does not know. */
  resolve(name: string): Meaning | undefined {
    return this.byOptionName.get(name)
  }
}

export type OptionValue = string | number | boolean | string[] | [number, number]

/** Options that name no flag but change how the command line is built. */
export const EXTRA_ARGS = 'extra_args'

/**
 * What options mean, keyed by the table's names: a bool option's value is true (its flag) or
 * false (its negation); an option that adds nothing (`false` for a flag with no negation,
 * `no_mmap: false`) is left out. `keys` says which of the caller's names set each option.
 */
export interface Effective {
  values: Map<string, OptionValue>
  keys: Map<string, string>
  extra: string[]
}

/**
 * Checks every value against its spec and works out what the options mean; throws BadRequest
 * naming the option. An unknown name is refused with a pointer to extra_args; two names for one
 * option are refused when they say different things.
 */
export function effectiveOptions(table: FlagTable, options: Record<string, unknown>, backend: string): Effective {
  const out: Effective = { values: new Map(), keys: new Map(), extra: [] }
  for (const [key, value] of Object.entries(options)) {
    const where = `backend_options.${key}`
    if (!/^[A-Za-z0-9][A-Za-z0-9_.]*$/.test(key)) {
      throw new BadRequest(`${where}: option names are long flag names in snake_case, like ctx_size`)
    }
    if (value === null) throw new BadRequest(`${where}: null is not a value; leave the option out instead`)
    if (key === EXTRA_ARGS) {
      out.extra = extraArgs(value, where)
      continue
    }
    const meaning = table.resolve(key)
    if (!meaning) throw new BadRequest(unknownOption(key, backend))
    const { spec } = meaning
    const v = checkValue(spec, meaning.negative, value, where, backend)
    if (v === undefined) continue
    const had = out.values.get(spec.name)
    if (had !== undefined && !Bun.deepEquals(had, v)) {
      throw new BadRequest(`backend_options: ${out.keys.get(spec.name)} and ${key} are the same option (${spec.flags[0]}) and say different things; give one of them`)
    }
    out.values.set(spec.name, v)
    if (!out.keys.has(spec.name)) out.keys.set(spec.name, key)
  }
  return out
}

/** Throws BadRequest for options the backend cannot take. */
export function validateAgainst(table: FlagTable, options: Record<string, unknown>, backend: string) {
  effectiveOptions(table, options, backend)
}

/**
 * extra_args as a list of arguments as they are, or as the original llamactl's map
 * `{"flag": "value"}`: `--flag value`, `{"flag": ""}` is the bare `--flag`, and a key that
 * starts with '-' is used as it is written.
 */
function extraArgs(value: unknown, where: string): string[] {
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value as string[]
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const argv: string[] = []
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      if (!/^-{0,2}[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(k)) {
        throw new BadRequest(`${where}.${k}: a flag name without spaces, like "log-file" (for --log-file)`)
      }
      if (typeof v !== 'string') throw new BadRequest(`${where}.${k}: must be a string, the flag's value ("" for a bare flag)`)
      argv.push(k.startsWith('-') ? k : `--${k}`)
      if (v !== '') argv.push(v)
    }
    return argv
  }
  throw new BadRequest(
    `${where}: must be a list of strings, the extra command-line arguments as they are, e.g. ["--new-flag", "1"], or a map of flags to values, e.g. {"new-flag": "1"}`,
  )
}

/** The value an option name gives its spec (undefined: it adds nothing). */
function checkValue(spec: FlagSpec, negative: boolean, value: unknown, where: string, backend: string): OptionValue | undefined {
  const wrong = (what: string) => new BadRequest(`${where}: ${backend} expects ${what}, got ${JSON.stringify(value).slice(0, 80)}`)
  if (negative) {
    // `no_mmap: true` is `mmap: false`; `no_mmap: false` asks for nothing.
    if (typeof value !== 'boolean') throw wrong('true or false')
    return value ? false : undefined
  }
  switch (spec.type) {
    case 'string':
      // The original llamactl's form sends false for a few value flags it took for switches.
      if (value === false) return undefined
      if (value === true) throw wrong(`a string: ${spec.flags[0]} takes a value`)
      if (typeof value !== 'string') throw wrong('a string')
      return value
    case 'int':
      if (!isInt(value)) throw wrong('a whole number')
      // port 0 (as in the original llamactl) asks llamactl to pick one from instances.port_range
      if (isPortOption(spec) && (value < (spec.name === 'port' ? 0 : 1) || value > 65535)) {
        throw wrong(spec.name === 'port' ? 'a port number from 1 to 65535 (or 0: llamactl picks one)' : 'a port number from 1 to 65535')
      }
      return value
    case 'float':
      if (typeof value !== 'number' || !Number.isFinite(value)) throw wrong('a number')
      return value
    case 'bool':
      if (typeof value !== 'boolean') throw wrong('true or false')
      return value || spec.negations.length || spec.wasNegations.length ? value : undefined
    case 'int_or_string':
      if (!isInt(value) && !(typeof value === 'string' && value !== '')) throw wrong('a whole number or a word')
      return value
    case 'bool_or_string':
      if (typeof value !== 'boolean' && typeof value !== 'string') throw wrong('true, false or a string')
      return value
    case 'int_pair': {
      // The original llamactl sends the two numbers as one string, "0 31".
      const pair = typeof value === 'string' && /^\s*-?\d+[\s,]+-?\d+\s*$/.test(value) ? value.trim().split(/[\s,]+/).map(Number) : value
      if (!(Array.isArray(pair) && pair.length === 2 && pair.every(isInt))) throw wrong('two whole numbers, like [0, 31]')
      return pair as [number, number]
    }
    case 'list': {
      const items = typeof value === 'string' ? [value] : value
      if (!Array.isArray(items) || !items.every((v) => typeof v === 'string')) throw wrong('a string or a list of strings')
      if (spec.list === 'nargs') {
        const bad = items.find((v) => v.startsWith('-'))
        if (bad !== undefined) throw new BadRequest(`${where}: ${backend} would read ${JSON.stringify(bad.slice(0, 80))} as a flag; list items cannot start with '-'`)
      }
      if (spec.list === 'csv') {
        const bad = items.find((v) => v.includes(','))
        if (bad !== undefined) {
          throw new BadRequest(`${where}: ${backend} splits ${spec.flags[0]} at commas; give ${JSON.stringify(bad.slice(0, 80))} as separate items`)
        }
      }
      return typeof value === 'string' ? value : (items as string[])
    }
    case 'json_list':
      if (typeof value === 'string') return value
      if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) throw wrong('a list of strings (or its JSON text)')
      return value as string[]
  }
}

/** A whole-number option that names a TCP port (`port`, `data_parallel_rpc_port`): 1 to 65535 only. */
export function isPortOption(spec: FlagSpec): boolean {
  return spec.type === 'int' && (spec.name === 'port' || spec.name.endsWith('_port'))
}

function isInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v)
}

/** The 400 message for an option name the table does not have. */
export function unknownOption(key: string, backend: string): string {
  const asFlag = `--${key.replaceAll('_', '-')}`
  return `backend_options.${key}: ${backend} has no option ${key}; for flags llamactl does not know yet use "extra_args": {"${asFlag.slice(2)}": "value"}`
}

/**
 * The flags a backend binary understands (from its --help), each with whether it takes a
 * value, or null when that is not known: then argv uses the table's spellings.
 */
export type Understood = ReadonlyMap<string, boolean> | null

/**
 * argv for options: in the table's order, then extra_args as they are. With `understood`, each
 * option gets a spelling the binary knows (another release's when that is the one it has), or
 * the options the row says replace it there; an option it cannot take is a BadRequest naming
 * the difference.
 */
export function buildFlags(table: FlagTable, options: Record<string, unknown>, backend: string, understood: Understood = null, binary = backend): string[] {
  const eff = effectiveOptions(table, options, backend)
  const values = new Map(eff.values)
  if (understood) replaceRemoved(table, eff, values, understood, binary)
  const argv: string[] = []
  for (const spec of table.specs) {
    const value = values.get(spec.name)
    if (value === undefined) continue
    const spelling = pickSpelling(spec, value === false, understood)
    if (spelling === undefined) {
      const key = eff.keys.get(spec.name) ?? spec.name
      const known = [...spec.flags, ...spec.was].filter((f) => f.startsWith('--')).join(', ')
      throw new BadRequest(
        `backend_options.${key}: ${binary} understands none of ${value === false ? [...spec.negations, ...spec.wasNegations].join(', ') : known}` +
          (spec.removed ? `: ${spec.removed.note}` : ': its release does not have the flag (flags differ between llama.cpp releases); leave the option out or run a release that has it'),
      )
    }
    if (understood?.get(spelling) === false && spec.type !== 'bool') {
      // The binary's release has this flag as a bare switch (older llama-server's --flash-attn).
      const key = eff.keys.get(spec.name) ?? spec.name
      const on = spec.asSwitch?.[String(value)]
      if (on === undefined) {
        throw new BadRequest(`backend_options.${key}: ${binary}'s ${spelling} is a switch that takes no value (its llama.cpp release predates the values); leave the option out or run a release that takes ${JSON.stringify(value)}`)
      }
      if (on) argv.push(spelling)
      continue
    }
    pushFlag(argv, spec, spelling, value, table.dialect)
  }
  argv.push(...eff.extra)
  return argv
}

function pickSpelling(spec: FlagSpec, off: boolean, understood: Understood): string | undefined {
  const all = off ? [...spec.negations, ...spec.wasNegations] : [...spec.flags, ...spec.was]
  if (!understood) return all[0]
  return all.find((f) => understood.has(f))
}

/** Options the binary has no spelling for, swapped for the ones their row says mean the same there. */
function replaceRemoved(table: FlagTable, eff: Effective, values: Map<string, OptionValue>, understood: ReadonlyMap<string, boolean>, binary: string) {
  const setBy = new Map<string, string>()
  for (const spec of table.specs) {
    const value = values.get(spec.name)
    if (value === undefined || !spec.removed || pickSpelling(spec, value === false, understood) !== undefined) continue
    const instead = value === false ? spec.removed.off : spec.removed.on
    if (!instead) continue
    values.delete(spec.name)
    const key = eff.keys.get(spec.name) ?? spec.name
    for (const [name, v] of Object.entries(instead)) {
      const had = values.get(name)
      if (had !== undefined && !Bun.deepEquals(had, v)) {
        throw new BadRequest(
          `backend_options.${key}: ${binary} has no ${spec.flags[0]}; there it is ${name}: ${JSON.stringify(v)}, which ${setBy.get(name) ?? eff.keys.get(name) ?? name} sets otherwise; give ${name} yourself`,
        )
      }
      values.set(name, v)
      setBy.set(name, key)
    }
  }
}

function pushFlag(argv: string[], spec: FlagSpec, name: string, value: OptionValue, dialect: Dialect) {
  /** The flag and one value; argparse needs a value that starts with '-' attached. */
  const withValue = (v: string) => (dialect.style === 'argparse' && v.startsWith('-') ? [`${name}=${v}`] : [name, v])
  if (typeof value === 'boolean') {
    argv.push(name)
    return
  }
  if (spec.type === 'int_pair') {
    const [a, b] = value as [number, number]
    argv.push(name, String(a), String(b))
    return
  }
  if (spec.type === 'json_list') {
    argv.push(...withValue(typeof value === 'string' ? value : JSON.stringify(value)))
    return
  }
  if (spec.type === 'list') {
    const items = typeof value === 'string' ? [value] : (value as string[])
    if (!items.length) return
    if (spec.list === 'csv') argv.push(...withValue(items.join(',')))
    else if (spec.list === 'nargs') argv.push(name, ...items)
    else for (const v of items) argv.push(...withValue(v))
    return
  }
  argv.push(...withValue(String(value)))
}

/** The TypeBox schema of a backend's options (for the OpenAPI document): one property per flag. */
export function optionsSchema(table: FlagTable): TSchema {
  const props: Record<string, TSchema> = {}
  for (const s of table.specs) {
    const description = [...s.flags, ...s.negations].join(', ')
    props[s.name] = T.Optional(schemaFor(s, description))
  }
  props[EXTRA_ARGS] = T.Optional(
    T.Union([T.Array(T.String()), T.Record(T.String(), T.String())], {
      description: 'arguments added after the known flags: a list, as they are, or a map {"flag": "value"} ("" for a bare flag)',
    }),
  )
  // Other names are taken too: every spelling in snake_case (ngl, n_gpu_layers), no_<flag> for a negation.
  return T.Object(props, { additionalProperties: true })
}

function schemaFor(s: FlagSpec, description: string): TSchema {
  switch (s.type) {
    case 'string':
      return T.String({ description })
    case 'int':
      return isPortOption(s) ? T.Integer({ description, minimum: s.name === 'port' ? 0 : 1, maximum: 65535 }) : T.Integer({ description })
    case 'float':
      return T.Number({ description })
    case 'bool':
      return T.Boolean({ description })
    case 'int_or_string':
      return T.Union([T.Integer(), T.String({ minLength: 1 })], { description })
    case 'bool_or_string':
      return T.Union([T.Boolean(), T.String()], { description })
    case 'int_pair':
      return T.Union([T.Tuple([T.Integer(), T.Integer()]), T.String({ pattern: '^\\s*-?\\d+[\\s,]+-?\\d+\\s*$' })], { description })
    case 'json_list':
    case 'list':
      return T.Union([T.String(), T.Array(T.String())], { description })
  }
}
