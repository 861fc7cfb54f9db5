/** Command line → config → app. Nothing else. */
import { accessSync, constants, existsSync, mkdirSync } from 'node:fs'
import { loadConfig } from './config/load'
import { ConfigError } from './errors'
import { KeyRing } from './auth/keys'
import { Sessions } from './auth/sessions'
import { createApp } from './http/app'
import { guardIdleConnections, openFilesBound } from './http/connections'
import { InstanceManager } from './instances/manager'
import { Logger } from './log'
import { Store } from './store/db'
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
  const { config, file } = loadConfig({ configPath: args.configPath, flags: args.flags })
  if (!config.instances.auto_create_dirs) {
    for (const dir of [config.data_dir, config.instances.logs_dir]) {
      if (!existsSync(dir)) {
        throw new ConfigError(`${dir} does not exist and instances.auto_create_dirs is off`)
      }
    }
  }
  for (const [dir, mode] of [[config.data_dir, 0o700], [config.instances.logs_dir, 0o755]] as const) writableDir(dir, mode)
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
  const server = Bun.serve({
    hostname: config.server.host,
    port: config.server.port,
    maxRequestBodySize: config.server.max_inference_body_size,
    idleTimeout: config.server.idle_timeout,
    fetch: (req, srv) => app.handle(req, srv),
  })
  const stopGuard = guardIdleConnections(server, openFilesBound(config.server.max_open_files), logger)
  // One write, "listening" last: whoever waits for that line has the whole banner.
  const banner = [
    `llamactl ${BUILD.version}`,
    `  data: ${config.data_dir}`,
    `  config: ${file ?? 'none (built-in defaults)'}`,
    ...(orphansEnded ? [`  ended ${orphansEnded} backend(s) left by an earlier run`] : []),
    `  management key: ${keys.generatedKeyFile ? `in ${keys.generatedKeyFile}` : config.auth.require_management_auth ? 'from the config' : 'not required (auth.require_management_auth is off)'}`,
    `  listening on http://${config.server.host}:${server.port}`,
  ]
  console.log(banner.join('\n'))
  let stopping = false
  const shutdown = async (signal: string) => {
    if (stopping) return
    stopping = true
    console.log(`llamactl: ${signal}, stopping instances`)
    stopGuard()
    server.stop(true)
    await manager.shutdown()
    store.close()
    logger.flush()
    process.exit(0)
  }
  process.on('SIGTERM', () => void shutdown('SIGTERM'))
  process.on('SIGINT', () => void shutdown('SIGINT'))
  // A bug in one background task must not take every backend's supervisor down with it.
  process.on('unhandledRejection', (e) => console.error('llamactl: internal error (still running):', e))
}

/** Creates the folder if needed and checks llamactl can write there, or stops with one line saying why. */
function writableDir(dir: string, mode: number) {
  try {
    mkdirSync(dir, { recursive: true, mode })
    accessSync(dir, constants.W_OK)
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
