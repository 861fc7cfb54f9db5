/** Runs llamactl itself (`bun src/main.ts`, or the built binary) as a child process for system tests. */
import type { Subprocess } from 'bun'
import { resolve } from 'node:path'
import { BUN, FAKE_SERVER, portRange } from '../helpers'

export const MAIN = resolve(import.meta.dir, '../../src/main.ts')
export const TEST_KEY = 'test-management-key-0123456789'
export const AUTH = { authorization: `Bearer ${TEST_KEY}` }

export interface Running {
  proc: Subprocess<'ignore', 'pipe', 'pipe'>
  url: string
  output: () => string
  api<T = any>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }>
  stop(signal?: NodeJS.Signals): Promise<number>
}

export function llamactlEnv(dataDir: string, extra: Record<string, string> = {}): Record<string, string> {
  const [lo, hi] = portRange()
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: dataDir,
    LLAMACTL_DATA_DIRECTORY: dataDir,
    LLAMACTL_LLAMACPP_COMMAND: BUN,
    LLAMACTL_LLAMACPP_ARGS: FAKE_SERVER,
    LLAMACTL_INSTANCE_PORT_RANGE: `${lo}-${hi}`,
    LLAMACTL_STOP_GRACE_PERIOD: '2',
    LLAMACTL_MANAGEMENT_KEYS: TEST_KEY,
    ...extra,
  }
}

/** Starts llamactl on an ephemeral port and resolves once it is listening. */
export async function startLlamactl(
  dataDir: string,
  opts: { env?: Record<string, string>; args?: string[]; command?: string[] } = {},
): Promise<Running> {
  const command = opts.command ?? [BUN, MAIN]
  const proc = Bun.spawn([...command, '--port', '0', ...(opts.args ?? [])], {
    cwd: dataDir,
    env: llamactlEnv(dataDir, opts.env),
    stdin: 'ignore',
    stdout: 'pipe',
    stderr: 'pipe',
  })
  let out = ''
  const collect = async (s: ReadableStream<Uint8Array>) => {
    for await (const c of s) out += new TextDecoder().decode(c)
  }
  void collect(proc.stdout)
  void collect(proc.stderr)
  const deadline = Date.now() + 15000
  let url = ''
  while (!url) {
    const m = /listening on (http:\/\/[\d.]+:\d+)/.exec(out)
    if (m) url = m[1]!
    else if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`llamactl did not start:\n${out}`)
    else await Bun.sleep(10)
  }
  return {
    proc,
    url,
    output: () => out,
    async api(method, path, body) {
      const res = await fetch(url + path, {
        method,
        body: body === undefined ? undefined : JSON.stringify(body),
        headers: body === undefined ? AUTH : { 'content-type': 'application/json', ...AUTH },
      })
      const text = await res.text()
      return { status: res.status, body: text && res.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text }
    },
    async stop(signal = 'SIGTERM') {
      proc.kill(signal)
      const killer = setTimeout(() => proc.kill('SIGKILL'), 15000)
      try {
        return await proc.exited
      } finally {
        clearTimeout(killer)
      }
    },
  }
}

/** Runs llamactl to completion (for --help, bad config, …). */
export async function runLlamactl(dataDir: string, args: string[], env: Record<string, string> = {}, command = [BUN, MAIN]) {
  const proc = Bun.spawn([...command, ...args], { cwd: dataDir, env: llamactlEnv(dataDir, env), stdout: 'pipe', stderr: 'pipe' })
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited])
  return { stdout, stderr, code }
}
