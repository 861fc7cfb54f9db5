/**
 * Docker-mode cleanup. A backend in Docker runs as `docker run …`: signalling that client's
 * process group may not reach the container (a client killed with SIGKILL leaves it running),
 * so every stop also asks Docker itself: `docker stop` with the grace period, then
 * `docker rm -f`, so nothing is left running or left holding the name.
 */
import { runToEnd } from './run'

export interface ContainerRef {
  /** The Docker client executable (backends.<backend>.docker.command). */
  docker: string
  name: string
}

/** Runs one Docker client command to its end (killed after timeoutMs); never throws. */
async function runDocker(argv: string[], env: Record<string, string>, timeoutMs: number): Promise<{ code: number | null; output: string }> {
  try {
    const r = await runToEnd(argv, env, { timeoutMs, maxBytes: 64 * 1024 })
    return { code: r.code, output: `${r.stdout}${r.stderr}`.trim() }
  } catch (e) {
    return { code: null, output: (e as Error).message }
  }
}

/** `docker stop -t <grace> NAME`, then `docker rm -f NAME`; each command is noted in the log. */
export async function stopContainer(c: ContainerRef, graceMs: number, env: Record<string, string>, note: (line: string) => void) {
  const grace = Math.ceil(graceMs / 1000)
  for (const argv of [[c.docker, 'stop', '-t', String(grace), c.name], [c.docker, 'rm', '-f', c.name]]) {
    const { code, output } = await runDocker(argv, env, graceMs + 10_000)
    note(`${argv.join(' ')}: ${code === 0 ? 'done' : `exit ${code ?? 'failed'}${output ? ` (${output.split('\n')[0]})` : ''}`}`)
  }
}

/** `docker rm -f NAME` before a start: a container left by an earlier run would hold the name. */
export async function removeStaleContainer(c: ContainerRef, env: Record<string, string>) {
  await runDocker([c.docker, 'rm', '-f', c.name], env, 10_000)
}
