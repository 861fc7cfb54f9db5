/** Command line → config → app. Nothing else. */
import { existsSync, mkdirSync } from 'node:fs'
import { loadConfig } from './config/load'
import { ConfigError } from './errors'
import { KeyRing } from './auth/keys'
import { Sessions } from './auth/sessions'
import { createApp } from './http/app'
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
  mkdirSync(config.data_dir, { recursive: true, mode: 0o700 })
  mkdirSync(config.instances.logs_dir, { recursive: true })
  const store = new Store(config.database.path)
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
    server.stop(true)
    await manager.shutdown()
    store.close()
    logger.flush()
    process.exit(0)
  }
  process.on('SIGTERM', () => void shutdown('SIGTERM'))
  process.on('SIGINT', () => void shutdown('SIGINT'))
}

main().catch((e) => {
  if (e instanceof ConfigError) {
    console.error(`llamactl: ${e.message}`)
  } else {
    console.error('llamactl: cannot start:', e instanceof Error ? e.message : e)
  }
  process.exit(1)
})
