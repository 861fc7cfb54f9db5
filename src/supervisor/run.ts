/**
 * Running a short command to its end: the Docker client's stop and rm, llama-server --help.
 * The command runs in its own process group, which is killed whole when it takes too long;
 * output beyond maxBytes per stream is dropped.
 */
import { signalGroup } from './os-process'

export interface RunResult {
  code: number | null
  stdout: string
  stderr: string
  /** It was killed after timeoutMs. */
  timedOut: boolean
}

/** Throws when the executable cannot be started (the message names it). */
export async function runToEnd(
  argv: string[],
  env: Record<string, string>,
  { timeoutMs, maxBytes = 4 * 1024 * 1024 }: { timeoutMs: number; maxBytes?: number },
): Promise<RunResult> {
  let proc
  try {
    proc = Bun.spawn(argv, { env, stdin: 'ignore', stdout: 'pipe', stderr: 'pipe', detached: true })
  } catch (e) {
    const err = e as NodeJS.ErrnoException
    throw new Error(err.code === 'ENOENT' ? `executable not found: ${argv[0]}` : `cannot run ${argv[0]}: ${err.message}`)
  }
  let timedOut = false
  const timer = setTimeout(() => {
    timedOut = true
    signalGroup(proc.pid, 'SIGKILL')
  }, timeoutMs)
  const out = { stdout: '', stderr: '' }
  const reading = Promise.all([readCapped(proc.stdout, maxBytes, (t) => (out.stdout += t)), readCapped(proc.stderr, maxBytes, (t) => (out.stderr += t))])
  const code = await proc.exited
  clearTimeout(timer)
  // Something it started in the background may hold the pipes open: don't wait on that for long.
  await Promise.race([reading, Bun.sleep(500)])
  return { code: timedOut ? null : code, stdout: out.stdout, stderr: out.stderr, timedOut }
}

async function readCapped(stream: ReadableStream<Uint8Array>, maxBytes: number, add: (text: string) => void) {
  const decoder = new TextDecoder()
  let size = 0
  for await (const chunk of stream) {
    if (size < maxBytes) add(decoder.decode(chunk.subarray(0, maxBytes - size), { stream: true }))
    size += chunk.byteLength
  }
  add(decoder.decode())
}
