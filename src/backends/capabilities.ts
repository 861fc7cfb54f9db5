/**
 * Which flags the configured llama-server understands, read from its own `--help`. llama.cpp
 * renames and drops flags between releases and users run many releases, so argv is built in
 * the spelling their binary knows (`--draft-max` or `--spec-draft-n-max`), and an option it
 * cannot take is refused when the instance is created instead of failing at start.
 *
 * The help is read once per binary: the answer is kept for the file's path, size and mtime, so
 * replacing the binary is noticed. When the binary cannot be run (missing, in Docker, no
 * answer), nothing is known and the flag table's spellings are used.
 */
import { statSync } from 'node:fs'
import type { Understood } from './spec'

/** How long --help may take; llama-server answers in milliseconds. */
const HELP_TIMEOUT_MS = 5000

const cache = new Map<string, Understood>()

/**
 * The spellings a `llama-server --help` text lists, each with whether it takes a value, less
 * those it says have been removed. Each entry starts a line with its spellings and value hint
 * in the first 40 columns (the whole line when they are longer), followed by a description
 * that may run over indented lines.
 */
export function helpSpellings(help: string): Map<string, boolean> {
  const spellings = new Map<string, boolean>()
  let entry: string[] = []
  let takesValue = false
  let description = ''
  const flush = () => {
    if (!/argument has been removed/.test(description)) for (const s of entry) spellings.set(s, takesValue)
    entry = []
    takesValue = false
    description = ''
  }
  for (const line of help.split('\n')) {
    if (line.startsWith('-') && !line.startsWith('-----')) {
      flush()
      const split = line.length > 40 && line[39] === ' ' && line[40] !== ' '
      const head = split ? line.slice(0, 40) : line
      description = split ? line.slice(40) : ''
      for (const piece of head.trim().split(/,\s+/)) {
        const [word, ...hint] = piece.trim().split(/\s+/)
        if (/^--?[A-Za-z][\w.-]*$/.test(word!)) entry.push(word!)
        if (hint.length) takesValue = true
      }
    } else {
      description += ` ${line.trim()}`
    }
  }
  flush()
  return spellings
}

/**
 * The flags `argv0 ...args --help` lists, or null when that cannot be learnt. `args` are the
 * backend's configured arguments, which come before the instance's own.
 */
export function understoodBy(argv0: string, args: string[] = []): Understood {
  const path = argv0.includes('/') ? argv0 : Bun.which(argv0)
  if (!path) return null
  let key: string
  try {
    const st = statSync(path)
    key = JSON.stringify([path, st.size, st.mtimeMs, args])
  } catch {
    return null
  }
  if (cache.has(key)) return cache.get(key)!
  let understood: Understood = null
  try {
    const proc = Bun.spawnSync([path, ...args, '--help'], { stdout: 'pipe', stderr: 'pipe', stdin: 'ignore', timeout: HELP_TIMEOUT_MS })
    const found = helpSpellings(proc.stdout.toString())
    // An answer without llama-server's own flags is not its help (a wrapper script, an error).
    if (found.has('--model') && found.has('--port')) understood = found
  } catch {
    understood = null
  }
  cache.set(key, understood)
  return understood
}
