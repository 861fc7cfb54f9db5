/** The command line: a few flags, anything else is an error with the usage line. */
import { ConfigError } from './errors'

export const USAGE = `usage: llamactl [--config PATH] [--host HOST] [--port PORT] [--data-dir DIR] [--help] [--version]

  --config PATH    YAML config file (default: ./llamactl.yaml, ~/.config/llamactl/config.yaml, /etc/llamactl/config.yaml)
  --host HOST      address to listen on (server.host)
  --port PORT      port to listen on (server.port)
  --data-dir DIR   folder for the database and logs (data_dir)
  --help           this text
  --version        version, commit and build time`

const FLAGS: Record<string, string> = { '--host': 'server.host', '--port': 'server.port', '--data-dir': 'data_dir' }

export type Args =
  | { kind: 'help' }
  | { kind: 'version' }
  | { kind: 'run'; configPath?: string; flags: Record<string, string> }

export function parseArgs(argv: string[]): Args {
  const flags: Record<string, string> = {}
  let configPath: string | undefined
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === '--help' || arg === '-h') return { kind: 'help' }
    if (arg === '--version' || arg === '-v') return { kind: 'version' }
    const eq = arg.indexOf('=')
    const name = eq > 0 && arg.startsWith('--') ? arg.slice(0, eq) : arg
    const takesValue = name === '--config' || name in FLAGS
    if (!takesValue) throw new ConfigError(`unknown argument ${JSON.stringify(arg)}\n${USAGE.split('\n')[0]}`)
    const value = eq > 0 && arg.startsWith('--') ? arg.slice(eq + 1) : argv[++i]
    if (value === undefined) throw new ConfigError(`${name} needs a value\n${USAGE.split('\n')[0]}`)
    if (name === '--config') configPath = value
    else flags[FLAGS[name]!] = value
  }
  return { kind: 'run', configPath, flags }
}
