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

/** The cache key of a binary (its path, size and mtime, and the arguments before --help), or null when it cannot be found. */
function binaryKey(argv0: string, args: string[]): { path: string; key: string } | null {
  const path = argv0.includes('/') ? argv0 : Bun.which(argv0)
  if (!path) return null
  try {
    const st = statSync(path)
    return { path, key: JSON.stringify([path, st.size, st.mtimeMs, args]) }
  } catch {
    return null
  }
}

/**
 * The flags `argv0 ...args --help` lists, as far as they have been learnt (learnFlags); null
 * when they cannot be, or not yet.
 */
export function understoodBy(argv0: string, args: string[] = []): Understood {
  const b = binaryKey(argv0, args)
  return b ? (cache.get(b.key) ?? null) : null
}

const learning = new Map<string, Promise<void>>()

/**
 * Runs `argv0 ...args --help` once per binary, without blocking the event loop, and keeps what
 * it lists for understoodBy. Callers await it before validating or building a command line;
 * concurrent callers share one run.
 */
export function learnFlags(argv0: string, args: string[] = []): Promise<void> {
  const b = binaryKey(argv0, args)
  if (!b || cache.has(b.key)) return Promise.resolve()
  const running = learning.get(b.key)
  if (running) return running
  const run = (async () => {
    let understood: Understood = null
    try {
      const proc = Bun.spawn([b.path, ...args, '--help'], { stdout: 'pipe', stderr: 'ignore', stdin: 'ignore', timeout: HELP_TIMEOUT_MS, killSignal: 'SIGKILL' })
      const [text] = await Promise.all([new Response(proc.stdout).text(), proc.exited])
      const found = helpSpellings(text)
      // An answer without llama-server's own flags is not its help (a wrapper script, an error).
      if (found.has('--model') && found.has('--port')) understood = found
    } catch {
      understood = null
    }
    cache.set(b.key, understood)
  })().finally(() => learning.delete(b.key))
  learning.set(b.key, run)
  return run
}
