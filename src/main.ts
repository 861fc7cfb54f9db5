/** Command line → config → app. Nothing else. */
import { backendPresence, backendVersion, presenceLines } from './backends/presence'
import { existsSync } from 'node:fs'
import { loadConfig } from './config/load'
import { printConfig } from './config/view'
import { ConfigError } from './errors'
import { KeyRing } from './auth/keys'
import { Sessions } from './auth/sessions'
import { createApp } from './http/app'
import { errorResponse } from './http/errors'
import { guardIdleConnections, openFilesBound } from './http/connections'
import { InstanceManager } from './instances/manager'
import { Logger } from './log'
import { Store } from './store/db'
import { privateDir } from './store/private'
import { parseArgs, USAGE } from './cli'
import { BUILD } from './version'

async function main() {
  const args = parseArgs(process.argv.slice(2))
  if (args.kind === 'help') {
    console.log(USAGE)
    return
  }
  if (args.kind === 'version') {
    console.log(`llamactl ${BUILD.version} (commit ${BUILD.commit}, built ${BUILD.buildTime})`)
    return
  }
  const loaded = loadConfig({ configPath: args.configPath, flags: args.flags })
  if (args.printConfig) {
    console.log(printConfig(loaded))
    return
  }
  const { config, file, dotenv, notes } = loaded
  // As in the original, what .env adds is llamactl's environment, which backends inherit.
  for (const [k, v] of Object.entries(dotenv?.vars ?? {})) process.env[k] ??= v
  for (const note of notes) console.error(`llamactl: ${note}`)
  if (!config.instances.auto_create_dirs) {
    for (const dir of [config.data_dir, config.instances.logs_dir]) {
      if (!existsSync(dir)) {
        throw new ConfigError(`${dir} does not exist and instances.auto_create_dirs is off`)
      }
    }
  }
  for (const [dir, what] of [[config.data_dir, 'data folder'], [config.instances.logs_dir, 'logs folder']] as const) {
    const warning = writableDir(dir, what)
    if (warning) console.error(warning)
  }
  let store: Store
  try {
    store = new Store(config.database.path)
  } catch (e) {
    throw new ConfigError(`cannot open the database ${config.database.path}: ${(e as Error).message}`)
  }
  const manager = new InstanceManager(config, store)
  const { orphansEnded } = await manager.init()
  const keys = new KeyRing(config, store)
  const logger = new Logger({ format: config.log.format, level: config.log.level })
  const app = createApp({ manager, keys, sessions: new Sessions(), logger })
  let server: ReturnType<typeof Bun.serve>
  try {
    server = Bun.serve({
      hostname: config.server.host,
      port: config.server.port,
      maxRequestBodySize: config.server.max_inference_body_size,
      idleTimeout: config.server.idle_timeout,
      // Never Bun's debug page (a stack, the working directory, source lines) to a client.
      development: false,
      fetch: (req, srv) => app.handle(req, srv),
      error: serverError,
    })
  } catch (e) {
    // The instances resumed above go again: nothing is left running by a llamactl that could not start.
    await manager.shutdown()
    const where = `${config.server.host}:${config.server.port}`
    if ((e as NodeJS.ErrnoException).code === 'EADDRINUSE' || /in use/i.test((e as Error).message)) {
      throw new ConfigError(`cannot listen on ${where}: the port is in use (another llamactl?). Choose another with --port 8091 (npm start -- --port 8091), server.port in the config or LLAMACTL_PORT; --port 0 picks a free one`)
    }
    throw new ConfigError(`cannot listen on ${where}: ${(e as Error).message}`)
  }
  const stopGuard = guardIdleConnections(server, openFilesBound(config.server.max_open_files), logger)
  const backends = backendPresence(config)
  // One write, "listening" last: whoever waits for that line has the whole banner.
  const banner = [
    `llamactl ${BUILD.version}`,
    `  data: ${config.data_dir}`,
    `  config: ${file ?? 'none (built-in defaults)'}`,
    ...(dotenv ? [`  .env: ${dotenv.file}`] : []),
    ...(orphansEnded ? [`  ended ${orphansEnded} backend(s) left by an earlier run`] : []),
    ...presenceLines(backends),
    ...(manager.remote.registry.nodes.size ? [`  nodes: ${[...manager.remote.registry.nodes.values()].map((n) => `${n.name} (${n.address})`).join(', ')}`] : []),
    `  management key: ${keys.generatedKeyFile ? `in ${keys.generatedKeyFile}` : config.auth.require_management_auth ? 'from the config' : 'not required (auth.require_management_auth is off)'}`,
    `  listening on http://${config.server.host}:${server.port}`,
  ]
  console.log(banner.join('\n'))
  // The versions after it, so a slow --version (vLLM imports for seconds) never delays listening.
  void Promise.all(backends.filter((b) => b.path).map(async (b) => `  ${b.label} version: ${await backendVersion(b, config)}`)).then((lines) => {
    if (lines.length && !stopping) console.log(lines.join('\n'))
  })
  let stopping = false
  const shutdown = async (signal: string) => {
    if (stopping) return
    stopping = true
    console.log(`llamactl: ${signal}, stopping instances`)
    stopGuard()
    server.stop(true)
    await app.downloads.close()
    await manager.shutdown()
    keys.close()
    store.close()
    logger.flush()
    process.exit(0)
  }
  process.on('SIGTERM', () => void shutdown('SIGTERM'))
  process.on('SIGINT', () => void shutdown('SIGINT'))
  // A bug in one background task must not take every backend's supervisor down with it.
  process.on('unhandledRejection', (e) => console.error('llamactl: internal error (still running):', e))
}

/** Whatever escaped the app: one line in the log, a plain JSON 500 to the client. */
function serverError(error: Error): Response {
  console.error(`llamactl: internal error: ${error?.message ?? error}`)
  return errorResponse(500, 'internal error; see the llamactl log')
}

/**
 * Creates the folder if needed, makes it 0700 and checks llamactl can write there, or stops with
 * one line saying why. Returns a warning when the folder was open to other users.
 */
function writableDir(dir: string, what: string): string | null {
  try {
    return privateDir(dir, what)
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    const why = code === 'EROFS' ? 'it is on a read-only file system' : code === 'EACCES' ? 'permission denied' : (e as Error).message
    throw new ConfigError(`cannot write to ${dir} (${why}): llamactl keeps its database and logs there; make it writable or choose another folder with --data-dir`)
  }
}

main().catch((e) => {
  if (e instanceof ConfigError) {
    console.error(`llamactl: ${e.message}`)
  } else {
    console.error('llamactl: cannot start:', e instanceof Error ? e.message : e)
  }
  process.exit(1)
})
