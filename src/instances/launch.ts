/**
 * What to run for an instance: the argv, its environment and, in Docker mode, the container to
 * clean up. Native: `command [args] [subcommand] <options>` with llamactl's environment (less
 * its own LLAMACTL_* variables, see inheritedEnv), the backend's and the instance's. Docker:
 * `docker run --rm --name llamactl-<instance> … IMAGE [args] <options>`, the environment passed
 * into the container with `-e NAME` (the values travel in the Docker client's environment, so
 * they appear in no process list or log).
 */
import { backendFor } from '../backends'
import type { BackendConfig } from '../config/load'
import type { ContainerRef } from '../supervisor/container'
import type { InstanceOptions } from './options'

export interface LaunchPlan {
  argv: string[]
  env: Record<string, string>
  container: ContainerRef | null
}

/**
 * What a backend (or the Docker client running it) inherits from llamactl's environment: all of
 * it but llamactl's own LLAMACTL_* variables, which are its configuration and its keys
 * (LLAMACTL_MANAGEMENT_KEYS, LLAMACTL_INFERENCE_KEYS, …). A backend gets one of those names only
 * when its backend's or instance's `environment` sets it.
 */
export function inheritedEnv(env: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(env)) if (v !== undefined && !k.startsWith('LLAMACTL_')) out[k] = v
  return out
}

export function containerName(instance: string): string {
  return `llamactl-${instance}`
}

export function launchPlan(
  name: string,
  options: InstanceOptions,
  bc: BackendConfig,
  where: { host: string; port: number },
  llamactlEnv: Record<string, string | undefined>,
): LaunchPlan {
  const backend = backendFor(options.backend_type)
  const baseEnv = inheritedEnv(llamactlEnv)
  if (!options.docker_enabled) {
    // In the spellings this binary understands (another llama.cpp release's where it has those).
    const argv0 = options.command_override ?? bc.command
    const own = backend.buildArgs(options.backend_options, where, backend.flagsOf(argv0, bc.args), argv0)
    // llama-server's `-hf` looks in LLAMA_CACHE: the cache llamactl downloads into (docs/models.md), unless set otherwise.
    const cache: Record<string, string> = options.backend_type === 'llama_cpp' && 'cache_dir' in bc && bc.cache_dir ? { LLAMA_CACHE: bc.cache_dir } : {}
    return {
      argv: [argv0, ...bc.args, ...backend.subcommand, ...own],
      env: { ...baseEnv, ...cache, ...bc.environment, ...options.environment },
      container: null,
    }
  }
  // Docker's image cannot be asked cheaply what it understands: the table's spellings.
  const own = backend.buildArgs(options.backend_options, where)
  const container = { docker: bc.docker.command, name: containerName(name) }
  const inner = { ...bc.environment, ...bc.docker.environment, ...options.environment }
  const argv = dockerRun(backend.configKey, bc, inner, {
    name: container.name,
    entrypoint: options.command_override,
    // The backend listens on the host's loopback, where llamactl checks its health.
    network: true,
    args: own,
  })
  return { argv, env: { ...baseEnv, ...inner }, container }
}

/**
 * `docker run --rm …` for a backend: the configured run arguments (a leading `run` is
 * tolerated, as older configs have it), `-e NAME` for each variable, the image, the configured
 * args, then `args`. Throws when no image is configured.
 */
export function dockerRun(
  key: string,
  bc: BackendConfig,
  inner: Record<string, string>,
  o: { name?: string; entrypoint?: string | null; network?: boolean; args: string[] },
): string[] {
  if (!bc.docker.image) throw new Error(`backends.${key}.docker.image is not set in the configuration, so there is no image to run`)
  const runArgs = bc.docker.args[0] === 'run' ? bc.docker.args.slice(1) : bc.docker.args
  const hasNetwork = runArgs.some((a) => /^--(network|net)(=|$)/.test(a))
  return [
    bc.docker.command,
    'run',
    '--rm',
    ...(o.name ? ['--name', o.name] : []),
    ...(o.network && !hasNetwork ? ['--network', 'host'] : []),
    ...runArgs,
    ...Object.keys(inner).flatMap((k) => ['-e', k]),
    ...(o.entrypoint ? ['--entrypoint', o.entrypoint] : []),
    bc.docker.image,
    ...bc.args,
    ...o.args,
  ]
}
