/**
 * A backend's options are a table of flag specs. Validation, argv building, command parsing
 * and the TypeBox schema all read the same table, so they cannot disagree.
 *
 * Option names are the backend's long flag name in snake_case (`--ctx-size` → `ctx_size`);
 * every other spelling of the flag (`-c`, `--n-gpu-layers`, `-nkvo`, …) is an alias that
 * command parsing understands.
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

/**
 * How a list reaches argv: `repeat` gives the flag once per item (`--middleware a --middleware b`),
 * `csv` gives it once with the items joined by commas (`--lora a,b`: what llama-server wants,
 * it warns about repeated flags), `nargs` gives the flag once followed by every item
 * (`--served-model-name a b`: argparse's nargs='+').
 */
export type ListMode = 'repeat' | 'csv' | 'nargs'

export interface FlagSpec {
  /** snake_case option name: the first long spelling without its dashes. */
  name: string
  type: OptionType
  /** Every spelling that turns the option on or takes its value; the first is what argv uses. */
  flags: string[]
  /** Spellings that turn a bool option off (`--no-mmap`); the first is what argv uses. */
  negations: string[]
  list?: ListMode
}

/**
 * A spec from the backend's own help line: `opt('-c, --ctx-size', 'int')`,
 * `opt('-kvo, --kv-offload / -nkvo, --no-kv-offload', 'bool')`. The option's name comes from
 * the first long spelling, which argv then uses.
 */
export function opt(spellings: string, type: OptionType, list?: ListMode): FlagSpec {
  const [on, off = ''] = spellings.split(' / ')
  const split = (s: string) => s.split(',').map((x) => x.trim()).filter(Boolean)
  const flags = split(on!)
  const negations = split(off)
  const long = flags.find((f) => f.startsWith('--'))
  if (!long) throw new Error(`flag spec ${spellings}: needs a long spelling`)
  if (negations.length && type !== 'bool') throw new Error(`flag spec ${spellings}: only bool options have negations`)
  if ((type === 'list') !== (list !== undefined)) throw new Error(`flag spec ${spellings}: list options need a list mode`)
  const canonical = [long, ...flags.filter((f) => f !== long)]
  const negCanonical = negations.filter((f) => f.startsWith('--')).concat(negations.filter((f) => !f.startsWith('--')))
  return { name: long.slice(2).replaceAll('-', '_'), type, flags: canonical, negations: negCanonical, list }
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

/** A backend's flags, looked up by option name or by any spelling. */
export class FlagTable {
  readonly specs: FlagSpec[]
  readonly byName = new Map<string, FlagSpec>()
  /** Spelling → the spec and whether this spelling turns it off. */
  readonly bySpelling = new Map<string, { spec: FlagSpec; negative: boolean }>()

  constructor(
    specs: FlagSpec[],
    readonly dialect: Dialect,
  ) {
    this.specs = specs
    for (const s of specs) {
      if (this.byName.has(s.name)) throw new Error(`duplicate option ${s.name}`)
      this.byName.set(s.name, s)
      for (const f of s.flags) this.add(f, s, false)
      for (const f of s.negations) this.add(f, s, true)
    }
  }

  private add(spelling: string, spec: FlagSpec, negative: boolean) {
    if (this.bySpelling.has(spelling)) throw new Error(`duplicate spelling ${spelling}`)
    this.bySpelling.set(spelling, { spec, negative })
  }
}

export type OptionValue = string | number | boolean | string[] | [number, number]

/** Options that name no flag but change how the command line is built. */
export const EXTRA_ARGS = 'extra_args'

/**
 * Checks every value against its spec; throws BadRequest naming the option. An unknown name is
 * refused, with the right name when it is another spelling of a known flag, else with a
 * pointer to extra_args.
 */
export function validateAgainst(table: FlagTable, options: Record<string, unknown>, backend: string) {
  for (const [key, value] of Object.entries(options)) {
    const where = `backend_options.${key}`
    if (!/^[a-z0-9][a-z0-9_.]*$/.test(key)) {
      throw new BadRequest(`${where}: option names are long flag names in snake_case, like ctx_size`)
    }
    if (value === null) throw new BadRequest(`${where}: null is not a value; leave the option out instead`)
    if (key === EXTRA_ARGS) {
      if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) {
        throw new BadRequest(`${where}: must be a list of strings, the extra command-line arguments as they are, e.g. ["--new-flag", "1"]`)
      }
      continue
    }
    const spec = table.byName.get(key)
    if (!spec) throw new BadRequest(unknownOption(table, key, backend))
    const wrong = (what: string) => new BadRequest(`${where}: ${backend} expects ${what}, got ${JSON.stringify(value).slice(0, 80)}`)
    switch (spec.type) {
      case 'string':
        if (typeof value !== 'string') throw wrong('a string')
        break
      case 'int':
        if (!isInt(value)) throw wrong('a whole number')
        // port 0 (as in the original llamactl) asks llamactl to pick one from instances.port_range
        if (isPortOption(spec) && (value < (spec.name === 'port' ? 0 : 1) || value > 65535)) {
          throw wrong(spec.name === 'port' ? 'a port number from 1 to 65535 (or 0: llamactl picks one)' : 'a port number from 1 to 65535')
        }
        break
      case 'float':
        if (typeof value !== 'number' || !Number.isFinite(value)) throw wrong('a number')
        break
      case 'bool':
        if (typeof value !== 'boolean') throw wrong('true or false')
        break
      case 'int_or_string':
        if (!isInt(value) && !(typeof value === 'string' && value !== '')) throw wrong('a whole number or a word')
        break
      case 'bool_or_string':
        if (typeof value !== 'boolean' && typeof value !== 'string') throw wrong('true, false or a string')
        break
      case 'int_pair':
        if (!(Array.isArray(value) && value.length === 2 && value.every(isInt))) throw wrong('two whole numbers, like [0, 31]')
        break
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
        break
      }
    }
  }
}

/** A whole-number option that names a TCP port (`port`, `data_parallel_rpc_port`): 1 to 65535 only. */
export function isPortOption(spec: FlagSpec): boolean {
  return spec.type === 'int' && (spec.name === 'port' || spec.name.endsWith('_port'))
}

function isInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v)
}

/**
 * Options named by another long spelling of their flag (`embeddings` for `--embedding`,
 * `n_gpu_layers` for `--gpu-layers`) renamed to the table's name; both spellings at once is 400.
 */
export function canonicalNames(table: FlagTable, options: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(options)) {
    const alias = key === EXTRA_ARGS || table.byName.has(key) ? null : table.bySpelling.get(`--${key.replaceAll('_', '-')}`)
    const name = alias && !alias.negative ? alias.spec.name : key
    if (name in out || (name !== key && name in options)) {
      throw new BadRequest(`backend_options: ${key} and ${name} are the same option; give one of them`)
    }
    out[name] = value
  }
  return out
}

/** The 400 message for an option name the table does not have. */
export function unknownOption(table: FlagTable, key: string, backend: string): string {
  const asFlag = `--${key.replaceAll('_', '-')}`
  const alias = table.bySpelling.get(asFlag) ?? table.bySpelling.get(`-${key.replaceAll('_', '-')}`)
  const hint = alias
    ? `; it is spelled ${alias.spec.name}${alias.negative ? ' (false)' : ''} here`
    : `; for flags llamactl does not know yet use "extra_args": ["${asFlag}", "value"]`
  return `backend_options.${key}: ${backend} has no option ${key}${hint}`
}

/** argv for validated options: in the table's order, then extra_args as they are. */
export function buildFlags(table: FlagTable, options: Record<string, unknown>): string[] {
  const argv: string[] = []
  for (const spec of table.specs) {
    const value = options[spec.name]
    if (value !== undefined) pushFlag(argv, spec, value as OptionValue, table.dialect)
  }
  const extra = options[EXTRA_ARGS]
  if (Array.isArray(extra)) argv.push(...(extra as string[]))
  return argv
}

function pushFlag(argv: string[], spec: FlagSpec, value: OptionValue, dialect: Dialect) {
  const name = spec.flags[0]!
  /** The flag and one value; argparse needs a value that starts with '-' attached. */
  const withValue = (v: string) => (dialect.style === 'argparse' && v.startsWith('-') ? [`${name}=${v}`] : [name, v])
  if (typeof value === 'boolean') {
    if (value) argv.push(name)
    else if (spec.negations.length) argv.push(spec.negations[0]!)
    return
  }
  if (spec.type === 'int_pair') {
    const [a, b] = value as [number, number]
    argv.push(name, String(a), String(b))
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
  props[EXTRA_ARGS] = T.Optional(T.Array(T.String(), { description: 'arguments added after the known flags, as they are' }))
  return T.Object(props, { additionalProperties: false })
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
      return T.Tuple([T.Integer(), T.Integer()], { description })
    case 'list':
      return T.Union([T.String(), T.Array(T.String())], { description })
  }
}
