/**
 * The seed's llama-server System Endpoints: GET /api/v1/server/{help,version,devices}, also at
 * the original's /api/v1/backends/llama-cpp/{help,version,devices}, run the
 * configured llama-server (its Docker form when backends.llama-cpp.docker.enabled) with
 * --help, --version or --list-devices and answer what it printed, as plain text. 500 {"error"}
 * with the reason when it cannot run, fails or takes longer than the timeout.
 */
import { Elysia } from 'elysia'
import { doc } from './openapi'
import type { Config } from '../config/load'
import { CommandFailed } from '../errors'
import { backendFor } from '../backends'
import { LLAMA_LOG_PREFIX } from '../backends/presence'
import { shownArgv } from '../backends/mask'
import { dockerRun, inheritedEnv } from '../instances/launch'
import { runToEnd } from '../supervisor/run'

export const SERVER_INFO_TIMEOUT_MS = 15_000

/** llama.cpp's own log lines (`0.00.000.626 I srv  llama_server: …`), which are not the answer. */
const LLAMA_LOG_LINE = new RegExp(`^${LLAMA_LOG_PREFIX}.*(\\n|$)`, 'gm')

export async function runLlamaServer(config: Config, flag: string, timeoutMs: number): Promise<string> {
  const bc = config.backends['llama-cpp']
  let argv: string[]
  let env: Record<string, string>
  if (bc.docker.enabled) {
    const inner = { ...bc.environment, ...bc.docker.environment }
    try {
      argv = dockerRun('llama-cpp', bc, inner, { args: [flag] })
    } catch (e) {
      throw new CommandFailed((e as Error).message)
    }
    env = { ...inheritedEnv(process.env), ...inner }
  } else {
    argv = [bc.command, ...bc.args, flag]
    env = { ...inheritedEnv(process.env), ...bc.environment }
  }
  const shown = shownArgv(argv, backendFor('llama_cpp').table)
  let r
  try {
    r = await runToEnd(argv, env, { timeoutMs })
  } catch (e) {
    throw new CommandFailed(`cannot run ${shown}: ${(e as Error).message}`)
  }
  if (r.timedOut) throw new CommandFailed(`${shown} did not finish within ${timeoutMs / 1000} s`)
  if (r.code !== 0) {
    const last = r.stderr.trim().split('\n').slice(-5).join('\n')
    throw new CommandFailed(`${shown} exited with code ${r.code}${last ? `: ${last}` : ''}`)
  }
  // llama-server prints --help and --list-devices on stdout, --version on stderr.
  return r.stdout.trim() ? r.stdout : r.stderr.replace(LLAMA_LOG_LINE, '')
}

const infoDoc = (flag: string) =>
  doc({ summary: `What the configured llama-server prints for ${flag}`, tag: 'System', ok: [200, 'text'], errors: [500] })

export function systemRoutes(config: Config, timeoutMs = SERVER_INFO_TIMEOUT_MS) {
  const text = async (flag: string) =>
    new Response(await runLlamaServer(config, flag, timeoutMs), { headers: { 'content-type': 'text/plain; charset=utf-8' } })
  // The seed's paths and the original's newer ones (its web UI calls those): one handler each.
  const routes = [
    ['help', '--help'],
    ['version', '--version'],
    ['devices', '--list-devices'],
  ] as const
  return new Elysia({ name: 'system' }).guard({ parse: 'none' }, (app) => {
    for (const [name, flag] of routes) {
      const handler = () => text(flag)
      app.get(`/api/v1/server/${name}`, handler, { detail: infoDoc(flag) })
      app.get(`/api/v1/backends/llama-cpp/${name}`, handler, { detail: infoDoc(flag) })
    }
    return app
  })
}
