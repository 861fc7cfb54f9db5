/**
 * Which configured backends can run here: each backend's command found on the PATH (or in
 * Docker), said once at start-up so a missing llama-server is known before the first create.
 */
import { BACKENDS as SETTINGS_BACKENDS, type BackendKey } from '../config/settings'
import type { Config } from '../config/load'
import { inheritedEnv } from '../instances/launch'
import { runToEnd } from '../supervisor/run'
import { BACKENDS } from './index'

export interface Presence {
  /** llama-server, mlx_lm.server, vllm serve */
  label: string
  configKey: BackendKey
  command: string
  /** Where the command is; null: not found. */
  path: string | null
  /** Runs in Docker (its image), so nothing is looked for here. */
  docker: string | null
  /** How to point llamactl at it when it is missing. */
  hint: string
}

export function backendPresence(config: Config, PATH = process.env.PATH ?? ''): Presence[] {
  return BACKENDS.map((b) => {
    const bc = config.backends[b.configKey]
    const env = `LLAMACTL_${SETTINGS_BACKENDS[b.configKey].envPrefix}_COMMAND`
    const docker = bc.docker.enabled ? bc.docker.image || '(no image configured)' : null
    return {
      label: b.label,
      configKey: b.configKey,
      command: bc.command,
      path: docker ? null : Bun.which(bc.command, { PATH }),
      docker,
      hint: `set backends.${b.configKey}.command in the config or ${env} to its path`,
    }
  })
}

/** The banner's lines: each backend found (or in Docker), then one line for those missing. */
export function presenceLines(found: Presence[]): string[] {
  const lines: string[] = []
  for (const p of found) {
    if (p.docker) lines.push(`  ${p.label}: in Docker, image ${p.docker}`)
    else if (p.path) lines.push(`  ${p.label}: ${p.path}`)
  }
  const missing = found.filter((p) => !p.docker && !p.path)
  if (missing.length) {
    lines.push(
      `  not found: ${missing.map((p) => p.command).join(', ')}, so their instances cannot start; ` +
        missing.map((p) => p.hint.replace(/^set /, '')).join('; ').replace(/^/, 'set '),
    )
  }
  return lines
}

/** How llama.cpp's own log lines begin (`0.00.000.626 I srv  llama_server: …`): they are no answer to --version. */
export const LLAMA_LOG_PREFIX = String.raw`\d+\.\d+\.\d+\.\d+ [A-Z] `
const LOG_LINE = new RegExp(`^${LLAMA_LOG_PREFIX}`)

/** What a found backend says of its version (`--version`), in a line; why not, if it cannot. */
export async function backendVersion(p: Presence, config: Config, timeoutMs = 5000): Promise<string> {
  if (!p.path) return 'not found'
  const bc = config.backends[p.configKey]
  try {
    const r = await runToEnd([p.path, ...bc.args, '--version'], { ...inheritedEnv(process.env), ...bc.environment }, { timeoutMs })
    if (r.timedOut) return `no answer to --version within ${timeoutMs / 1000} s`
    const lines = `${r.stdout}\n${r.stderr}`.split('\n').map((l) => l.trim()).filter((l) => l && !LOG_LINE.test(l))
    if (r.code !== 0) return `--version exited with code ${r.code}${lines.length ? `: ${lines.at(-1)}` : ''}`
    return lines.slice(0, 2).join(', ').replace(/^version:\s*/i, '') || 'printed no version'
  } catch (e) {
    return `cannot run it: ${(e as Error).message}`
  }
}
