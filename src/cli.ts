/**
 * The command line: the settings table's flags, a few of its own, anything else is an error with
 * the usage line. The usage text is built from the same table, so a flag cannot exist without
 * its line.
 */
import { SETTINGS } from './config/settings'
import { ConfigError } from './errors'

const OWN = [
  { flag: '--config', value: 'PATH', doc: 'YAML config file (default: ./llamactl.yaml, ./config.yaml, ~/.config/llamactl/config.yaml, /etc/llamactl/config.yaml)' },
  { flag: '--print-config', doc: 'show the effective configuration (secrets masked) and where each value came from, then exit' },
  { flag: '--help', short: '-h', doc: 'this text' },
  { flag: '--version', short: '-v', doc: 'version, commit and build time' },
] as const

/** --flag → setting key, from the table. */
const FLAGS = new Map(SETTINGS.flatMap((s) => (s.flag ? [[s.flag, s] as const] : [])))

function usage(): string {
  const valueName = (key: string) => key.split('.').at(-1)!.replace(/_/g, '-').toUpperCase()
  const lines: [string, string][] = [
    [`--config PATH`, OWN[0].doc],
    ...[...FLAGS.values()].map((s): [string, string] => [`${s.flag} ${valueName(s.key)}`, `${s.doc.split(' (')[0]} (${s.key}${s.env ? `, ${s.env}` : ''})`]),
    ...OWN.slice(1).map((o): [string, string] => [o.flag, o.doc]),
  ]
  const width = Math.max(...lines.map(([l]) => l.length)) + 2
  const head = `usage: llamactl ${lines.map(([l]) => `[${l}]`).join(' ')}`
  const envs = SETTINGS.filter((s) => s.env && !s.flag).map((s) => [s.env!, s.key] as const)
  const envWidth = Math.max(...envs.map(([e]) => e.length)) + 2
  return [
    head,
    '',
    ...lines.map(([l, d]) => `  ${l.padEnd(width)}${d}`),
    '',
    'Environment variables (each sets the YAML key beside it; a flag wins over both; see docs/configuration.md):',
    ...envs.map(([e, k]) => `  ${e.padEnd(envWidth)}${k}`),
    '',
    '  LLAMACTL_CONFIG_PATH                    the config file, as --config',
    '',
    'Also read: HOME and XDG_DATA_HOME (the default data folder), XDG_CACHE_HOME (the llama.cpp model cache),',
    'and a .env file (beside --config, in the working folder, or in a config folder) for variables the environment lacks.',
  ].join('\n')
}

export const USAGE = usage()

export type Args =
  | { kind: 'help' }
  | { kind: 'version' }
  | { kind: 'run'; configPath?: string; flags: Record<string, string>; printConfig: boolean }

export function parseArgs(argv: string[]): Args {
  const flags: Record<string, string> = {}
  let configPath: string | undefined
  let printConfig = false
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === '--help' || arg === '-h') return { kind: 'help' }
    if (arg === '--version' || arg === '-v') return { kind: 'version' }
    if (arg === '--print-config') {
      printConfig = true
      continue
    }
    const eq = arg.indexOf('=')
    const name = eq > 0 && arg.startsWith('--') ? arg.slice(0, eq) : arg
    const setting = FLAGS.get(name)
    if (name !== '--config' && !setting) throw new ConfigError(`unknown argument ${JSON.stringify(arg)}\n${USAGE.split('\n')[0]}`)
    const value = eq > 0 && arg.startsWith('--') ? arg.slice(eq + 1) : argv[++i]
    if (value === undefined) throw new ConfigError(`${name} needs a value\n${USAGE.split('\n')[0]}`)
    if (name === '--config') configPath = value
    else flags[setting!.key] = value
  }
  return { kind: 'run', configPath, flags, printConfig }
}
