/**
 * Reading a backend's argv back into options: the inverse of buildFlags. Values get the
 * table's types; flags the table does not know go, with their value, to extra_args.
 */
import { BadRequest } from '../errors'
import { EXTRA_ARGS, type FlagSpec, type FlagTable } from './spec'

interface Hit {
  spec: FlagSpec
  negative: boolean
  /** The spelling as written (for messages). */
  spelling: string
  /** A value attached to the flag: `--flag=value` or `-qvalue`. */
  inline?: string
}

/** argparse's idea of a negative number (a value, not a flag); also good enough for llama.cpp. */
const NUMBER_LIKE = /^-\.?\d/
const INT = /^[+-]?\d+$/
const FLOAT = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/

/** The flag a word names, with any attached value; null when it names none of the table's. */
export function lookup(table: FlagTable, word: string): Hit | null {
  if (!word.startsWith('-') || word === '-' || word === '--' || NUMBER_LIKE.test(word)) return null
  let name = word
  let inline: string | undefined
  const eq = word.indexOf('=')
  if (word.startsWith('--') && eq > 0) {
    name = word.slice(0, eq)
    inline = word.slice(eq + 1)
  }
  if (table.dialect.underscores && name.startsWith('--')) name = name.replaceAll('_', '-')
  const hit = table.bySpelling.get(name)
  if (hit) return { ...hit, spelling: name, inline }
  if (table.dialect.attachedShort && !word.startsWith('--') && word.length > 2) {
    const short = table.bySpelling.get(word.slice(0, 2))
    if (short && short.spec.type !== 'bool') return { ...short, spelling: word.slice(0, 2), inline: word.slice(2) }
  }
  return null
}

/**
 * Whether the word after a flag is its value. llama.cpp would take any word, but one that is
 * itself a llama-server flag almost certainly means the value was forgotten. argparse takes
 * no word that starts with '-' (other than a negative number).
 */
export function isValueWord(table: FlagTable, word: string | undefined): boolean {
  if (word === undefined) return false
  if (table.dialect.style === 'llama') return lookup(table, word) === null
  return !(word.startsWith('-') && word.length > 1 && !NUMBER_LIKE.test(word))
}

export function parseArgs(table: FlagTable, words: string[], backend: string, positional?: string): Record<string, unknown> {
  const options: Record<string, unknown> = {}
  const extra: string[] = []
  let i = 0
  let onlyPositional = false
  let positionalSet = false
  while (i < words.length) {
    const word = words[i++]!
    if (!onlyPositional && word === '--' && table.dialect.style === 'argparse') {
      onlyPositional = true
      continue
    }
    if (!onlyPositional && word.startsWith('---')) throw new BadRequest(`malformed flag ${JSON.stringify(word.slice(0, 80))}: flags start with one or two dashes`)
    const hit = onlyPositional ? null : lookup(table, word)
    if (!hit) {
      if (!onlyPositional && word.startsWith('-') && word.length > 1 && !NUMBER_LIKE.test(word)) {
        // A flag we do not know: keep it, and the word after it unless that looks like a flag too.
        extra.push(word)
        const next = words[i]
        if (!word.includes('=') && next !== undefined && !(next.startsWith('-') && next.length > 1 && !NUMBER_LIKE.test(next))) extra.push(words[i++]!)
        continue
      }
      if (positional && !positionalSet) {
        options[positional] = word
        positionalSet = true
        continue
      }
      throw new BadRequest(
        positional
          ? `unexpected argument ${JSON.stringify(word)}: ${backend} takes only the ${positional} without a flag`
          : `unexpected argument ${JSON.stringify(word)}: ${backend} takes no arguments without a flag`,
      )
    }

    const { spec, spelling } = hit
    const attached = hit.inline !== undefined
    /** The value: attached to the flag, else the next word. */
    const take = (): string => {
      if (hit.inline !== undefined) {
        const v = hit.inline
        hit.inline = undefined
        return v
      }
      if (!isValueWord(table, words[i])) throw new BadRequest(`${spelling} needs a value`)
      return words[i++]!
    }

    switch (spec.type) {
      case 'bool':
        if (attached) throw new BadRequest(`${spelling} takes no value, got ${JSON.stringify(word)}`)
        options[spec.name] = !hit.negative
        break
      case 'bool_or_string':
        options[spec.name] = attached || isValueWord(table, words[i]) ? take() : true
        break
      case 'int_pair':
        options[spec.name] = [toInt(spelling, take()), toInt(spelling, take())]
        break
      case 'list': {
        const items = (options[spec.name] as string[] | undefined) ?? []
        if (spec.list === 'nargs') {
          items.push(take())
          while (!attached && isValueWord(table, words[i])) items.push(words[i++]!)
        } else if (spec.list === 'csv') {
          items.push(...take().split(','))
        } else {
          items.push(take())
        }
        options[spec.name] = items
        break
      }
      case 'int':
        options[spec.name] = toInt(spelling, take())
        break
      case 'float':
        options[spec.name] = toFloat(spelling, take())
        break
      case 'int_or_string': {
        const v = take()
        options[spec.name] = INT.test(v) ? toInt(spelling, v) : v
        break
      }
      case 'string':
      case 'json_list':
        options[spec.name] = take()
        break
    }
  }
  if (extra.length) options[EXTRA_ARGS] = extra
  return options
}

function toInt(flag: string, v: string): number {
  const n = Number(v)
  if (!INT.test(v) || !Number.isSafeInteger(n)) throw new BadRequest(`${flag} expects a whole number, got ${JSON.stringify(v)}`)
  return n
}

function toFloat(flag: string, v: string): number {
  const n = Number(v)
  if (!FLOAT.test(v) || !Number.isFinite(n)) throw new BadRequest(`${flag} expects a number, got ${JSON.stringify(v)}`)
  return n
}

/**
 * Parsed options as the original llamactl answers them, so its web UI shows them in its own
 * fields: a negation as `no_<option>: true` where that name exists (`no_mmap`, `no_webui`),
 * and extra_args as its map `{"flag": "value"}` when each unknown flag has at most one value
 * and appears once (a list otherwise, which says more).
 */
export function inOriginalShape(table: FlagTable, options: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(options)) {
    if (key === EXTRA_ARGS) {
      out[key] = extraArgsMap(value as string[]) ?? value
      continue
    }
    const negation = `no_${key}`
    const meaning = table.resolve(negation)
    if (value === false && meaning?.negative && meaning.spec.name === key) out[negation] = true
    else out[key] = value
  }
  return out
}

function extraArgsMap(words: string[]): Record<string, string> | null {
  const map: Record<string, string> = {}
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!
    if (!word.startsWith('-') || NUMBER_LIKE.test(word)) return null
    const eq = word.indexOf('=')
    let key = word.startsWith('--') ? word.slice(2) : word
    let value = ''
    if (word.startsWith('--') && eq > 0) {
      key = word.slice(2, eq)
      value = word.slice(eq + 1)
    } else if (words[i + 1] !== undefined && (!words[i + 1]!.startsWith('-') || NUMBER_LIKE.test(words[i + 1]!))) {
      value = words[++i]!
    }
    // A value the map would lose or change: an empty one, one that reads as a flag, a key given twice.
    if (key in map || (eq > 0 && value === '')) return null
    map[key] = value
  }
  return map
}
