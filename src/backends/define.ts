/** Builds a Backend from its flag table and the few things that differ between backends. */
import type { BackendKey } from '../config/settings'
import { BadRequest } from '../errors'
import { learnFlags, understoodBy } from './capabilities'
import { inOriginalShape, parseArgs } from './parse'
import { buildFlags, type Dialect, type FlagSpec, FlagTable, optionsSchema, validateAgainst } from './spec'
import { tokenize } from './tokenize'
import type { Backend, FormField, ParsedCommand } from './types'

export interface BackendDef<T extends string, K extends BackendKey> {
  type: T
  configKey: K
  label: string
  title: string
  formFields: FormField[]
  routeName: string
  seedKey: string
  flags: FlagSpec[]
  subcommand?: string[]
  /** The option given without a flag (vLLM's model). */
  positional?: string
  dialect: Dialect
  /** Whether its `--help` lists its flags in llama.cpp's layout (see capabilities.ts). */
  readsHelp?: boolean
  /** How many leading words of a command line name the program (`vllm serve`: 2); 0 when there is none. */
  programLength(words: string[]): number
  slots?: Backend['slots']
}

const ENV_ASSIGNMENT = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s

export function defineBackend<const T extends string, const K extends BackendKey>(def: BackendDef<T, K>): Backend<T, K> {
  const table = new FlagTable(def.flags, def.dialect)
  const positional = def.positional
  return {
    type: def.type,
    configKey: def.configKey,
    label: def.label,
    title: def.title,
    formFields: def.formFields,
    routeName: def.routeName,
    seedKey: def.seedKey,
    healthPath: '/health',
    ...(def.slots && { slots: def.slots }),
    table,
    schema: optionsSchema(table),
    subcommand: def.subcommand ?? [],
    validate(options) {
      validateAgainst(table, options, def.label)
    },
    buildArgs(options, { host, port }, understood = null, binary = def.label) {
      const { host: _h, port: _p, ...rest } = options
      const head: string[] = []
      // A value that would read as a flag goes as `--model=…` instead.
      if (positional && typeof rest[positional] === 'string' && !(rest[positional] as string).startsWith('-')) {
        head.push(String(rest[positional]))
        delete rest[positional]
      }
      return [...head, ...buildFlags(table, rest, def.label, understood, binary), '--host', host, '--port', String(port)]
    },
    flagsOf(argv0, args) {
      return def.readsHelp ? understoodBy(argv0, args) : null
    },
    learnFlags(argv0, args) {
      return def.readsHelp ? learnFlags(argv0, args) : Promise.resolve()
    },
    parseCommand(command): ParsedCommand {
      const words = tokenize(command)
      const environment: Record<string, string> = {}
      let at = 0
      for (let m; at < words.length && (m = ENV_ASSIGNMENT.exec(words[at]!)); at++) environment[m[1]!] = m[2]!
      const rest = words.slice(at)
      if (!rest.length) throw new BadRequest('command is empty')
      const options = parseArgs(table, rest.slice(def.programLength(rest)), def.label, positional)
      validateAgainst(table, options, def.label)
      return { options: inOriginalShape(table, options), environment }
    },
  }
}

/** The usual program detection: a first word that is not a flag is the program. */
export function firstWordIsProgram(words: string[]): number {
  return words[0] !== undefined && !words[0].startsWith('-') ? 1 : 0
}
