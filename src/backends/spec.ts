/**
 * A backend's options are a table of flag specs; validation, argv building and (issue 4)
 * command parsing all read the same table.
 */
import { BadRequest } from '../errors'

export type OptionType = 'string' | 'int' | 'float' | 'bool' | 'list'

export interface FlagSpec {
  /** snake_case option name: the long flag without dashes. */
  name: string
  type: OptionType
  /** Every spelling the backend accepts; the first is what argv uses. */
  flags: string[]
  /** For bool options with an explicit "off" flag, e.g. --no-mmap. */
  negation?: string
}

export function flag(name: string, type: OptionType, aliases: string[] = [], negation?: string): FlagSpec {
  return { name, type, flags: [`--${name.replaceAll('_', '-')}`, ...aliases], negation }
}

export type OptionValue = string | number | boolean | (string | number)[]

/** Checks each value against its spec; unknown names are allowed as plain scalar flags. */
export function validateAgainst(specs: Map<string, FlagSpec>, options: Record<string, unknown>, backend: string) {
  for (const [key, value] of Object.entries(options)) {
    if (!/^[a-z0-9][a-z0-9_]*$/.test(key)) {
      throw new BadRequest(`backend_options.${key}: option names are snake_case long flag names, like ctx_size`)
    }
    const spec = specs.get(key)
    const where = `backend_options.${key}`
    if (value === null) throw new BadRequest(`${where}: null is not a value; leave the option out instead`)
    if (!spec) {
      const ok = ['string', 'number', 'boolean'].includes(typeof value) ||
        (Array.isArray(value) && value.every((v) => ['string', 'number'].includes(typeof v)))
      if (!ok) throw new BadRequest(`${where}: must be a string, number, boolean or a list of them`)
      continue
    }
    const wrong = (what: string) => new BadRequest(`${where}: ${backend} expects ${what}, got ${JSON.stringify(value).slice(0, 80)}`)
    switch (spec.type) {
      case 'string':
        if (typeof value !== 'string') throw wrong('a string')
        break
      case 'int':
        if (typeof value !== 'number' || !Number.isSafeInteger(value)) throw wrong('a whole number')
        break
      case 'float':
        if (typeof value !== 'number' || !Number.isFinite(value)) throw wrong('a number')
        break
      case 'bool':
        if (typeof value !== 'boolean') throw wrong('true or false')
        break
      case 'list':
        if (!(typeof value === 'string' || (Array.isArray(value) && value.every((v) => typeof v === 'string' || typeof v === 'number')))) {
          throw wrong('a string or a list of strings')
        }
        break
    }
  }
}

/** argv for options, in the spec table's order, then unknown names in alphabetical order. */
export function buildFlags(specs: Map<string, FlagSpec>, options: Record<string, unknown>): string[] {
  const argv: string[] = []
  const known = [...specs.values()].filter((s) => options[s.name] !== undefined)
  const unknown = Object.keys(options).filter((k) => !specs.has(k)).sort()
  for (const spec of known) pushFlag(argv, spec, options[spec.name] as OptionValue)
  for (const k of unknown) pushFlag(argv, flag(k, 'string'), options[k] as OptionValue)
  return argv
}

function pushFlag(argv: string[], spec: FlagSpec, value: OptionValue) {
  const name = spec.flags[0]!
  if (typeof value === 'boolean') {
    if (value) argv.push(name)
    else if (spec.negation) argv.push(spec.negation)
    return
  }
  if (Array.isArray(value)) {
    for (const v of value) argv.push(name, String(v))
    return
  }
  argv.push(name, String(value))
}
