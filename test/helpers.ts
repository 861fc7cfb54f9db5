/** Shared set-up for tests: a temp data folder, a config pointing at the fake llama-server, the app. */
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { type Config, loadConfig } from '../src/config/load'
import { KeyRing } from '../src/auth/keys'
import type { Logger } from '../src/log'
import { Sessions } from '../src/auth/sessions'
import { createApp } from '../src/http/app'
import { InstanceManager } from '../src/instances/manager'
import { Store } from '../src/store/db'

export const FAKE_SERVER = resolve(import.meta.dir, 'fixtures/fake-llama-server.ts')
export const BUN = process.execPath

/**
 * A model file the fast suite's instances can name: llamactl checks a .gguf path is a file
 * before it starts llama-server; the fake backend is given the path and never reads it.
 * m, m2, fake, q, demo and qwen-7b are there (test/fixtures/models).
 */
export function fixtureModel(name: 'm' | 'm2' | 'fake' | 'q' | 'demo' | 'qwen-7b'): string {
  return join(import.meta.dir, 'fixtures', 'models', `${name}.gguf`)
}

export function tempDir(prefix = 'llamactl-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix))
}

/** A free-ish port range per test file, so parallel files do not collide. */
export function portRange(): [number, number] {
  const lo = 20000 + Math.floor(Math.random() * 20000)
  return [lo, lo + 200]
}

export function testConfig(dataDir: string, overrides: Record<string, string> = {}): Config {
  const [lo, hi] = portRange()
  const { config } = loadConfig({
    env: {
      LLAMACTL_DATA_DIRECTORY: dataDir,
      LLAMACTL_LLAMACPP_COMMAND: BUN,
      LLAMACTL_LLAMACPP_ARGS: FAKE_SERVER,
      LLAMACTL_INSTANCE_PORT_RANGE: `${lo}-${hi}`,
      LLAMACTL_STOP_GRACE_PERIOD: '2',
      LLAMACTL_DEFAULT_RESTART_DELAY: '0',
      // Most tests are about other things; the auth tests turn these on.
      LLAMACTL_REQUIRE_MANAGEMENT_AUTH: 'false',
      LLAMACTL_REQUIRE_INFERENCE_AUTH: 'false',
      LLAMACTL_METRICS_PUBLIC: 'true',
      ...overrides,
    },
    cwd: dataDir,
    home: dataDir,
  })
  return config
}

export interface Harness {
  dir: string
  config: Config
  store: Store
  manager: InstanceManager
  keys: KeyRing
  app: ReturnType<typeof createApp>
  request(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<Response>
  json<T = any>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }>
  /** Serves the app on an ephemeral loopback port (for tests that need a real socket). */
  listen(): string
  close(): Promise<void>
}

export async function harness(overrides: Record<string, string> = {}, logger?: Logger): Promise<Harness> {
  const dir = tempDir()
  const config = testConfig(dir, overrides)
  const store = new Store(config.database.path)
  const manager = new InstanceManager(config, store)
  await manager.init()
  const keys = new KeyRing(config, store)
  const app = createApp({ manager, keys, sessions: new Sessions(), logger })
  const servers: ReturnType<typeof Bun.serve>[] = []
  const request = (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
    app.handle(
      new Request(`http://localhost${path}`, {
        method,
        body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
        headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
      }),
    )
  return {
    dir,
    config,
    store,
    manager,
    keys,
    app,
    request,
    async json(method, path, body) {
      const res = await request(method, path, body)
      const text = await res.text()
      return { status: res.status, body: text ? JSON.parse(text) : null }
    },
    listen() {
      const server = Bun.serve({ hostname: '127.0.0.1', port: 0, idleTimeout: config.server.idle_timeout, fetch: (req, srv) => app.handle(req, srv) })
      servers.push(server)
      return `http://127.0.0.1:${server.port}`
    },
    async close() {
      for (const s of servers) s.stop(true)
      await app.downloads.close()
      await manager.shutdown()
      keys.close()
      store.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs = 10000, stepMs = 10): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await Bun.sleep(stepMs)
  }
}

export const FAKE_DOCKER = resolve(import.meta.dir, 'fixtures/fake-docker.ts')

/** An executable that runs `exec BUN script args… "$@"`: how tests stand in for a program. */
export function wrapperScript(dir: string, name: string, script: string, ...args: string[]): string {
  const path = join(dir, name)
  const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`
  writeFileSync(path, `#!/bin/sh\nexec ${[BUN, script, ...args].map(quote).join(' ')} "$@"\n`)
  chmodSync(path, 0o755)
  return path
}

/** A fake Docker client (test/fixtures/fake-docker.ts) keeping its state in a folder of its own. */
export function fakeDocker(dir: string) {
  const state = mkdtempSync(join(dir, 'docker-'))
  const command = wrapperScript(state, 'docker', FAKE_DOCKER, state)
  return {
    command,
    /** Every call's arguments, in order. */
    calls(): string[][] {
      const log = join(state, 'calls.log')
      return existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l)) : []
    },
    /** The pid of a named container the fake still knows, else null. */
    containerPid(name: string): number | null {
      const file = join(state, `${name}.pid`)
      return existsSync(file) ? Number(readFileSync(file, 'utf8')) : null
    },
  }
}

/** How many of this process's file descriptors are open on `path`, or on files under it when it ends in '/' (Linux: /proc/self/fd). */
export function openFds(path: string): number {
  let n = 0
  for (const fd of readdirSync('/proc/self/fd')) {
    let target: string
    try {
      target = readlinkSync(`/proc/self/fd/${fd}`)
    } catch {
      continue // closed meanwhile (the one readdir used)
    }
    if (path.endsWith('/') ? target.startsWith(path) : target === path) n++
  }
  return n
}
