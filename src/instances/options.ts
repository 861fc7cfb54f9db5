/**
 * Instance names and options: the TypeBox schemas are the single source for validation,
 * TypeScript types and the OpenAPI document.
 */
import { type Static, Type as T } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import type { Config } from '../config/load'
import { statSync } from 'node:fs'
import { resolve } from 'node:path'
import { BadRequest } from '../errors'
import { backendFor, BACKEND_TYPES, type BackendType } from '../backends'

export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/

/** Refuses anything that could become a path or is not a plain name. */
export function checkName(name: string): string {
  if (typeof name !== 'string' || !NAME_PATTERN.test(name) || name === '.' || name === '..' || name.includes('..')) {
    throw new BadRequest(
      `invalid instance name ${JSON.stringify(String(name).slice(0, 80))}: use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit`,
    )
  }
  return name
}

const NODE_NAME = '^[A-Za-z0-9][A-Za-z0-9._-]*$'

const EnvName = T.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$', maxLength: 256 })
const BackendOptions = (description: string) => T.Optional(T.Record(T.String(), T.Unknown(), { description }))

/** The queue's bounds where an instance names none (they matter only with max_concurrent_requests). */
export const QUEUE_DEFAULTS = { max_queued_requests: 100, queue_timeout: 60 }

/**
 * How many requests an instance serves at once: its own setting, else the slots the running
 * backend says it has (llama-server's /props), else its `parallel` option; 0: no limit.
 */
export function concurrencyOf(o: InstanceOptions, slots: number | null = null): number {
  if (o.max_concurrent_requests !== undefined) return o.max_concurrent_requests
  if (slots !== null) return slots
  const parallel = o.backend_options.parallel
  return typeof parallel === 'number' && parallel > 0 ? parallel : 0
}

export const InstanceOptionsSchema = T.Object(
  {
    backend_type: T.Optional(T.Union(BACKEND_TYPES.map((b) => T.Literal(b)), { description: `one of ${BACKEND_TYPES.join(', ')}; default ${BACKEND_TYPES[0]}` })),
    backend_options: BackendOptions(
      'the backend\'s own flags by long name in snake_case; extra_args: a list of arguments added after them, as they are',
    ),
    // What parse-command answers carries the options under these names too (the seed's), so
    // that answer can be POSTed as it is.
    llama_server_options: BackendOptions('backend_options of a llama_cpp instance, under the name parse-command answers with'),
    mlx_server_options: BackendOptions('backend_options of an mlx_lm instance, under the name parse-command answers with'),
    vllm_server_options: BackendOptions('backend_options of a vllm instance, under the name parse-command answers with'),
    command_override: T.Optional(
      T.String({ minLength: 1, maxLength: 4096, description: 'executable run instead of backends.<backend>.command (in Docker: the container\'s entrypoint)' }),
    ),
    docker_enabled: T.Optional(T.Boolean({ description: 'run the backend in Docker (default: backends.<backend>.docker.enabled)' })),
    auto_restart: T.Optional(T.Boolean({ description: 'restart after an unexpected exit' })),
    max_restarts: T.Optional(T.Integer({ minimum: -1, description: 'restarts before giving up (-1: no limit)' })),
    restart_delay: T.Optional(T.Number({ minimum: 0, maximum: 86400, description: 'seconds between an exit and the restart' })),
    on_demand_start: T.Optional(T.Boolean({ description: 'start when a request names this instance' })),
    idle_timeout: T.Optional(T.Number({ minimum: 0, description: 'minutes without requests before stopping (0: never); fractions allowed' })),
    max_concurrent_requests: T.Optional(T.Integer({ minimum: 0, maximum: 100000, description: `requests forwarded at once; more wait in a queue (0: no limit; default: the slots the running backend reports (llama-server\'s /props total_slots), else backend_options.parallel, else no limit)` })),
    max_queued_requests: T.Optional(T.Integer({ minimum: 0, maximum: 100000, description: `requests waiting past max_concurrent_requests; more are answered 429 (default ${QUEUE_DEFAULTS.max_queued_requests})` })),
    queue_timeout: T.Optional(T.Number({ minimum: 0, maximum: 86400, description: `seconds a request may wait in the queue before it is answered 429 (default ${QUEUE_DEFAULTS.queue_timeout})` })),
    environment: T.Optional(
      T.Record(EnvName, T.String({ maxLength: 65536 }), { description: 'environment variables', additionalProperties: false }),
    ),
    // The original llamactl's instance fields for features still to come here (llama-server
    // router presets): their shapes are checked and they are kept, so its instance JSON and web
    // UI work unchanged.
    nodes: T.Optional(
      T.Array(T.String({ pattern: NODE_NAME, maxLength: 64 }), {
        minItems: 1,
        maxItems: 64,
        description: 'the node the instance runs on (local_node, default "main", or one of `nodes`); several: the one of them with the most free room, chosen at create. Absent: this llamactl',
      }),
    ),
    group: T.Optional(T.String({ pattern: NODE_NAME, maxLength: 64, description: 'the instance group: instances.group_limits bounds how many of a group run at once (a group not named there has no limit)' })),
    preset_ini: T.Optional(
      T.String({ maxLength: 262144, description: 'llama-server models presets, INI text: written to <instances_dir>/<name>/preset.ini (0600) and given as --models-preset, unless backend_options.models_preset names a file (router mode, docs/models.md)' }),
    ),
    aliases: T.Optional(
      T.Array(T.String({ pattern: NAME_PATTERN.source, maxLength: 64 }), {
        maxItems: 64,
        description: 'other names a request\'s "model" may use for this instance; unique across every instance name and alias',
      }),
    ),
  },
  { additionalProperties: false },
)
export type InstanceOptionsInput = Static<typeof InstanceOptionsSchema>

/** Options with every default filled in: what the supervisor runs. */
export const FilledOptionsSchema = T.Object({
  backend_type: T.Union(BACKEND_TYPES.map((b) => T.Literal(b))),
  backend_options: T.Record(T.String(), T.Unknown()),
  auto_restart: T.Boolean(),
  max_restarts: T.Integer(),
  restart_delay: T.Number(),
  on_demand_start: T.Boolean(),
  idle_timeout: T.Number(),
  environment: T.Record(T.String(), T.String()),
  command_override: T.Union([T.String(), T.Null()], { description: 'the executable instead of the configured command' }),
  docker_enabled: T.Boolean(),
  max_concurrent_requests: T.Optional(T.Integer()),
  max_queued_requests: T.Optional(T.Integer()),
  queue_timeout: T.Optional(T.Number()),
  nodes: T.Optional(T.Array(T.String())),
  group: T.Optional(T.String()),
  preset_ini: T.Optional(T.String()),
  aliases: T.Optional(T.Array(T.String())),
})
export type InstanceOptions = Static<typeof FilledOptionsSchema> & { backend_type: BackendType }

export const STATUSES = ['stopped', 'starting', 'running', 'stopping', 'restarting', 'failed'] as const

/**
 * The `status` the API answers: the seed's three (`running` only once the backend is ready)
 * and, while it changes, the two words the original llamactl and its web UI know. A start is
 * `restarting` (that UI shows a spinner, and a starting instance there is only ever one
 * restarting or one whose health check has not passed yet); a stop is `shutting_down`.
 * `state` carries our own six, for clients that tell a first start from a restart.
 */
export const API_STATUSES = ['stopped', 'running', 'failed', 'restarting', 'shutting_down'] as const
export type ApiStatus = (typeof API_STATUSES)[number]
export function apiStatus(state: (typeof STATUSES)[number]): ApiStatus {
  if (state === 'starting') return 'restarting'
  if (state === 'stopping') return 'shutting_down'
  return state
}

/** An instance as the API answers it. */
export const InstanceViewSchema = T.Object({
  id: T.Integer({ description: 'a stable number, never reused; the original llamactl\'s keys and web UI use it' }),
  name: T.String(),
  status: T.Union([...API_STATUSES, 'unknown'].map((s) => T.Literal(s)), {
    description: 'stopped, running (ready for requests) or failed; restarting while it starts, shutting_down while it stops; unknown: it is on a node that is not answering (the other fields are as last seen, `error` says why)',
  }),
  state: T.Union([...STATUSES, 'unknown'].map((s) => T.Literal(s)), { description: 'the same, telling a first start (starting) from a restart' }),
  node: T.String({ description: 'the node it runs on: local_node for this llamactl' }),
  created: T.Integer({ description: 'unix seconds' }),
  options: FilledOptionsSchema,
  port: T.Union([T.Integer(), T.Null()], { description: "the backend's port while it runs" }),
  restarts: T.Integer({ description: 'automatic restarts since the last start' }),
  error: T.Union([T.String(), T.Null()], { description: 'why it failed' }),
  pid: T.Union([T.Integer(), T.Null()], { description: "the backend's process id while it runs" }),
  uptime: T.Union([T.Number(), T.Null()], { description: 'seconds since it became ready, while it is running' }),
  last_request: T.Union([T.Integer(), T.Null()], { description: 'unix seconds of the last /v1 or proxy request (its start or end); null: none since llamactl started' }),
  requests: T.Object(
    {
      in_flight: T.Integer({ description: 'being forwarded to the backend now' }),
      queued: T.Integer({ description: 'waiting in its queue for a free slot' }),
      max_concurrent: T.Integer({ description: 'its limit now: max_concurrent_requests, else the slots the backend reports, else backend_options.parallel; 0: none' }),
    },
    { description: 'its requests at this moment' },
  ),
})
export type InstanceView = Static<typeof InstanceViewSchema>

const checkOptions = TypeCompiler.Compile(InstanceOptionsSchema)

/** Validates a request body; throws BadRequest naming the first field that is wrong. */
export function parseOptions(body: unknown): InstanceOptionsInput {
  if (body === undefined || body === null) return {}
  if (typeof body !== 'object' || Array.isArray(body)) throw new BadRequest('the request body must be a JSON object')
  if (!checkOptions.Check(body)) {
    const err = checkOptions.Errors(body).First()!
    const field = err.path ? err.path.slice(1).replaceAll('/', '.') : 'body'
    if (err.type === 45 /* required */) throw new BadRequest(`${field}: missing`)
    const known = Object.keys(InstanceOptionsSchema.properties)
    const unknownKey = Object.keys(body).find((k) => !known.includes(k))
    if (unknownKey !== undefined) {
      throw new BadRequest(`unknown field ${JSON.stringify(unknownKey)}; known fields: ${known.join(', ')}`)
    }
    throw new BadRequest(`${field}: ${err.message.toLowerCase()}${'value' in err && err.value !== undefined ? `, got ${JSON.stringify(err.value)?.slice(0, 80)}` : ''}`)
  }
  const opts = { ...(body as InstanceOptionsInput) }
  const backend = backendFor(opts.backend_type ?? 'llama_cpp')
  // backend_options may come under the seed's name for the backend; the stored form has only backend_options.
  for (const type of BACKEND_TYPES) {
    const key = backendFor(type).seedKey as SeedKey
    const given = opts[key]
    delete opts[key]
    if (given === undefined) continue
    if (type !== backend.type) throw new BadRequest(`${key} is for backend_type ${type}, but backend_type is ${backend.type}`)
    if (opts.backend_options !== undefined && !Bun.deepEquals(opts.backend_options, given)) {
      throw new BadRequest(`backend_options and ${key} differ; give one of them`)
    }
    opts.backend_options = given
  }
  // Names are kept as given (`no_mmap`, `webui`, `ngl`), so a client reads back what it wrote.
  backend.validate(opts.backend_options ?? {})
  if (opts.nodes !== undefined && new Set(opts.nodes).size < opts.nodes.length) throw new BadRequest('nodes: a node is given twice')
  if (opts.preset_ini !== undefined) checkIni(opts.preset_ini)
  if (opts.aliases !== undefined) checkAliases(opts.aliases)
  return opts
}

/** Aliases are names like any other (the pattern alone lets '..' through), each given once. */
function checkAliases(aliases: string[]) {
  const seen = new Set<string>()
  for (const a of aliases) {
    try {
      checkName(a)
    } catch (e) {
      throw new BadRequest(`aliases: ${(e as Error).message.replace('instance name', 'alias')}`)
    }
    if (seen.has(a)) throw new BadRequest(`aliases: ${JSON.stringify(a)} is given twice`)
    seen.add(a)
  }
}

/** INI as llama-server's --models-preset reads it: sections, `key = value` lines, comments. */
function checkIni(text: string) {
  const lines = text.split(/\r?\n/)
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim()
    if (line === '' || line.startsWith(';') || line.startsWith('#') || /^\[[^\]]+\]$/.test(line) || /^[^=\[\]]+=/.test(line)) continue
    throw new BadRequest(`preset_ini: line ${i + 1} is neither a [section], a key = value line nor a comment: ${JSON.stringify(line.slice(0, 80))}`)
  }
}

type SeedKey = 'llama_server_options' | 'mlx_server_options' | 'vllm_server_options'

/**
 * What only the configuration and the configured binary can tell: refused with 400 when
 * creating or updating. The binary's own --help says which flags it understands, so an option
 * its release lacks is refused here, naming the difference, rather than failing the start.
 */
/** A create's or update's body: validated, with the defaults filled in, and checked against the config. */
export async function prepareOptions(body: unknown, config: Config): Promise<{ input: InstanceOptionsInput; options: InstanceOptions }> {
  const input = parseOptions(body)
  const options = withDefaults(input, config)
  await checkAgainstConfig(options, config)
  return { input, options }
}

/**
 * A llama.cpp model file that is not there is a 400 naming the path, before anything is made
 * (llama-server would only fail to load it, and the failed instance would keep the name). Only
 * a `.gguf` path, run here: a Docker instance's paths are the container's, and other models
 * (repos, ids) are the backend's to find.
 */
function checkModelFile(options: InstanceOptions) {
  if (options.backend_type !== 'llama_cpp') return
  for (const key of ['model'] as const) {
    const path = options.backend_options[key]
    if (typeof path !== 'string' || !/\.gguf$/i.test(path)) continue
    // As llama-server will open it: relative to the working folder llamactl and its backends share.
    const full = resolve(path)
    let ok = false
    try {
      ok = statSync(full).isFile()
    } catch {
      // not there, or not readable: said below
    }
    if (!ok) throw new BadRequest(`backend_options.${key}: ${JSON.stringify(path)} is not a file llamactl can see${full !== path ? ` (${full})` : ''}; give the path of a .gguf file on this machine`)
  }
}

export async function checkAgainstConfig(options: InstanceOptions, config: Config) {
  // Placement (src/nodes/) has chosen this llamactl by now: any other node here is a mistake.
  const other = options.nodes?.find((n) => n !== config.local_node)
  if (other !== undefined) throw new BadRequest(`nodes: ${JSON.stringify(other)} is not this node (${JSON.stringify(config.local_node)})`)
  const backend = backendFor(options.backend_type)
  const key = backend.configKey
  const bc = config.backends[key]
  if (options.docker_enabled && !bc.docker.image) {
    throw new BadRequest(`docker_enabled: backends.${key}.docker.image is not set in the configuration, so there is no image to run`)
  }
  if (!options.docker_enabled) {
    checkModelFile(options)
    const argv0 = options.command_override ?? bc.command
    await backend.learnFlags(argv0, bc.args)
    const understood = backend.flagsOf(argv0, bc.args)
    if (understood) backend.buildArgs(options.backend_options, { host: '127.0.0.1', port: 1 }, understood, argv0)
  }
}

/** Fills what the user left out from the configured defaults (copied, never shared). */
export function withDefaults(input: InstanceOptionsInput, config: Config): InstanceOptions {
  const d = config.instances
  return {
    backend_type: input.backend_type ?? 'llama_cpp',
    backend_options: structuredClone(input.backend_options ?? {}),
    auto_restart: input.auto_restart ?? d.default_auto_restart,
    max_restarts: input.max_restarts ?? d.default_max_restarts,
    restart_delay: input.restart_delay ?? d.default_restart_delay,
    on_demand_start: input.on_demand_start ?? d.default_on_demand_start,
    idle_timeout: input.idle_timeout ?? d.default_idle_timeout,
    environment: { ...(input.environment ?? {}) },
    command_override: input.command_override ?? null,
    docker_enabled: input.docker_enabled ?? config.backends[backendFor(input.backend_type ?? 'llama_cpp').configKey].docker.enabled,
    ...(input.nodes !== undefined && { nodes: [...input.nodes] }),
    ...(input.group !== undefined && { group: input.group }),
    ...(input.max_concurrent_requests !== undefined && { max_concurrent_requests: input.max_concurrent_requests }),
    ...(input.max_queued_requests !== undefined && { max_queued_requests: input.max_queued_requests }),
    ...(input.queue_timeout !== undefined && { queue_timeout: input.queue_timeout }),
    ...(input.preset_ini !== undefined && { preset_ini: input.preset_ini }),
    ...(input.aliases !== undefined && input.aliases.length > 0 && { aliases: [...input.aliases] }),
  }
}
