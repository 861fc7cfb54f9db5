/**
 * A command line as llamactl shows it (its log, the logs endpoint, error messages): every value
 * of every secret-bearing flag replaced by `***`.
 *
 * A flag bears a secret when a part of its name (between `-` and `_`) ends in key, token,
 * secret, password, passwd, passphrase or credential(s) (`--api-key`, `--hf-token`,
 * `--x_secret`; not `--max-tokens` or `--tokenizer`), or when it is a spelling of such an option
 * of the backend's table (`-hft` is `--hf-token`). Options the table types as numbers or
 * switches carry no secret. Docker's `-e NAME=value` and `--env NAME=value` values are masked
 * whatever the name: llamactl itself passes only names there.
 *
 * Which words are a secret flag's values:
 * - `--flag=value`: the attached value;
 * - else the next word, whatever it looks like (llama-server takes `--api-key -x` as the key),
 *   unless it is one of the backend's own flags and the backend would read it as one: always
 *   for argparse backends (a bare `--hf-token` before `--port`), and for a flag llama-server
 *   does not know (it stops at that flag);
 * - and, for a list (vLLM's `--api-key a b c`) or a flag the table does not know, every
 *   following word up to the next one that starts with `-`.
 */
import { lookup } from './parse'
import type { FlagSpec, FlagTable } from './spec'

const SECRET_PART = /(key|token|secret|password|passwd|passphrase|credentials?)$/i
const ENV_FLAGS = new Set(['-e', '--env'])
const ENV_ASSIGNMENT = /^([A-Za-z_][A-Za-z0-9_]*)=/s

export const MASK = '***'

/** Whether a flag's name (dashes and any `=value` ignored) names a secret. */
export function isSecretName(flag: string): boolean {
  const name = flag.replace(/^-+/, '').split('=')[0]!
  return name.split(/[-_]/).some((part) => SECRET_PART.test(part))
}

/** How many values a flag spelled `word` takes, if it bears a secret: none, one, or a run of them; and whether the table knows it. */
function secretValues(table: FlagTable, word: string): { values: 'none' | 'one' | 'run'; known: boolean } {
  const hit = lookup(table, word)
  if (!hit) return { values: isSecretName(word) ? 'run' : 'none', known: false }
  if (!isSecretName(hit.spec.name) && !isSecretName(hit.spelling)) return { values: 'none', known: true }
  return { values: valuesOf(hit.spec), known: true }
}

function valuesOf(spec: FlagSpec): 'none' | 'one' | 'run' {
  switch (spec.type) {
    case 'string':
    case 'int_or_string':
    case 'bool_or_string':
      return 'one'
    case 'list':
      return spec.list === 'nargs' ? 'run' : 'one'
    default:
      return 'none'
  }
}

/** The argv with secret values replaced by MASK (same length, same order). */
export function maskArgv(argv: string[], table: FlagTable): string[] {
  const out = [...argv]
  const llama = table.dialect.style === 'llama'
  /** Whether the word right after a secret flag is its value. */
  const firstIsValue = (known: boolean, next: string) => (llama && known) || lookup(table, next) === null
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i]!
    if (!word.startsWith('-')) continue
    if (ENV_FLAGS.has(word) && i + 1 < argv.length && ENV_ASSIGNMENT.test(argv[i + 1]!)) {
      out[++i] = `${ENV_ASSIGNMENT.exec(argv[i]!)![1]}=${MASK}`
      continue
    }
    const eq = word.indexOf('=')
    if (eq > 0) {
      const flag = word.slice(0, eq)
      if (flag === '--env' && ENV_ASSIGNMENT.test(word.slice(eq + 1))) {
        out[i] = `--env=${ENV_ASSIGNMENT.exec(word.slice(eq + 1))![1]}=${MASK}`
      } else if (secretValues(table, flag).values !== 'none') {
        out[i] = `${flag}=${MASK}`
      }
      continue
    }
    const { values, known } = secretValues(table, word)
    if (values === 'none' || i + 1 >= argv.length || !firstIsValue(known, argv[i + 1]!)) continue
    out[++i] = MASK
    if (values === 'run') while (i + 1 < argv.length && !argv[i + 1]!.startsWith('-')) out[++i] = MASK
  }
  return out
}

/** The argv as one line for the log: masked, each word quoted for a POSIX shell when it needs it. */
export function shownArgv(argv: string[], table: FlagTable): string {
  // A masked word is shown as it is: `***` and `--flag=***` are for reading, not for a shell.
  return maskArgv(argv, table)
    .map((a, i) => (a !== argv[i] || /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", "'\\''")}'`))
    .join(' ')
}
