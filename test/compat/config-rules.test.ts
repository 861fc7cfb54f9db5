/**
 * The rules behind the original's config forms: `${VAR}` expansion and `.env` as its tests pin
 * them, where files are looked for, what start-up says about old spellings and keys with nothing
 * to do yet, credentials that must never be a placeholder or empty, --print-config, the command
 * line and GET /api/v1/config.
 */
import { describe, expect, test } from 'bun:test'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs, USAGE } from '../../src/cli'
import { expandVars, loadConfig, parseDotEnv } from '../../src/config/load'
import { ALIASES, SETTINGS, SETTINGS_BY_KEY } from '../../src/config/settings'
import { printConfig } from '../../src/config/view'
import { ConfigError } from '../../src/errors'
import { harness, tempDir } from '../helpers'

function dirs() {
  const home = tempDir()
  const cwd = join(home, 'work')
  mkdirSync(cwd)
  return { home, cwd }
}

function load(yaml: string | null, env: Record<string, string> = {}, extra: { dotenv?: string; flags?: Record<string, string> } = {}) {
  const { home, cwd } = dirs()
  if (yaml !== null) writeFileSync(join(cwd, 'llamactl.yaml'), yaml)
  if (extra.dotenv !== undefined) writeFileSync(join(cwd, '.env'), extra.dotenv)
  return { home, cwd, ...loadConfig({ env, cwd, home, flags: extra.flags }) }
}

function failure(f: () => unknown): string {
  try {
    f()
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError)
    return (e as Error).message
  }
  throw new Error('expected a ConfigError')
}

describe('${VAR} expansion, as the original\'s expansion cases', () => {
  const cases: [string, Record<string, string>, string][] = [
    ['host: ${MY_HOST}', { MY_HOST: 'localhost' }, 'host: localhost'],
    ['host: ${UNSET_VAR}', {}, 'host: ${UNSET_VAR}'],
    ['port: ${MY_PORT:-8080}', {}, 'port: 8080'],
    ['port: ${MY_PORT:-8080}', { MY_PORT: '9090' }, 'port: 9090'],
    ['val: ${MY_VAR:-}', {}, 'val: '],
    ['val: ${MY_VAR:-fallback}', { MY_VAR: '' }, 'val: fallback'],
    ['host: $MY_HOST', { MY_HOST: 'localhost' }, 'host: $MY_HOST'],
    ['${HOST}:${PORT}', { HOST: 'localhost', PORT: '8080' }, 'localhost:8080'],
    ['url: http://${HOST}:${PORT}/api', { HOST: 'example.com', PORT: '443' }, 'url: http://example.com:443/api'],
    ['val: ${VAR:-/usr/local/bin}', {}, 'val: /usr/local/bin'],
    ['', {}, ''],
    ['just a normal string', {}, 'just a normal string'],
    ['${MY_LONG_VAR_NAME:-default}', { MY_LONG_VAR_NAME: 'value' }, 'value'],
    ['${_PRIVATE_VAR}', { _PRIVATE_VAR: 'secret' }, 'secret'],
  ]
  for (const [input, env, expected] of cases) {
    test(`${JSON.stringify(input)} with ${JSON.stringify(env)}`, () => {
      expect(expandVars(input, env)).toBe(expected)
    })
  }

  test('in flow lists too, since it happens before the YAML is read', () => {
    const { config } = load('instances:\n  port_range: [${LO:-7000}, ${HI:-7100}]\n', { HI: '7200' })
    expect(config.instances.port_range).toEqual([7000, 7200])
  })
})

describe('.env, as the original reads it', () => {
  const cases: [string, string, Record<string, string>][] = [
    ['basic pairs', 'API_KEY=sk-abc123\nDB_HOST=localhost\nDB_PORT=5432\n', { API_KEY: 'sk-abc123', DB_HOST: 'localhost', DB_PORT: '5432' }],
    ['comments and blank lines', '# comment\n\nAPI_KEY=value\n# another comment\n', { API_KEY: 'value' }],
    ['an empty value', 'EMPTY_VAR=\n', { EMPTY_VAR: '' }],
    ['double quotes', 'QUOTED_VAR="hello world"\n', { QUOTED_VAR: 'hello world' }],
    ['single quotes', "SINGLE_QUOTED='literal text'\n", { SINGLE_QUOTED: 'literal text' }],
    ['export prefix', 'export EXPORTED_VAR=value\n', { EXPORTED_VAR: 'value' }],
    ['leading spaces', '  KEY1=val1\n  KEY2=val2\n', { KEY1: 'val1', KEY2: 'val2' }],
    ['no inline comments', 'KEY=val # comment\n', { KEY: 'val # comment' }],
    ['trimming around =', '  KEY  =  value  \n', { KEY: 'value' }],
    ['a line without =', 'NOEQUALS\nKEY=val\n', { KEY: 'val' }],
  ]
  for (const [what, text, expected] of cases) {
    test(what, () => {
      expect(parseDotEnv(text)).toEqual(expected)
    })
  }

  test('beside an explicitly named config, before the working directory\'s', () => {
    const { home, cwd } = dirs()
    const other = join(home, 'etc')
    mkdirSync(other)
    writeFileSync(join(other, 'my.yaml'), 'server:\n  host: ${WHERE}\n')
    writeFileSync(join(other, '.env'), 'WHERE=beside\n')
    writeFileSync(join(cwd, '.env'), 'WHERE=cwd\n')
    const r = loadConfig({ configPath: join(other, 'my.yaml'), env: {}, cwd, home })
    expect(r.config.server.host).toBe('beside')
    expect(r.dotenv).toEqual({ file: join(other, '.env'), vars: { WHERE: 'beside' } })
  })

  test('in the config folder, and its LLAMACTL_* variables count as the environment', () => {
    const { home, cwd } = dirs()
    mkdirSync(join(home, '.config', 'llamactl'), { recursive: true })
    writeFileSync(join(home, '.config', 'llamactl', '.env'), 'LLAMACTL_PORT=7777\n')
    const r = loadConfig({ env: {}, cwd, home })
    expect(r.config.server.port).toBe(7777)
    expect(printConfig(r)).toMatch(/server\.port = 7777 +# env LLAMACTL_PORT \(from .*\.config\/llamactl\/\.env\)/)
  })

  test('never over a variable already set', () => {
    const r = load('server:\n  host: ${H}\n', { H: 'env', LLAMACTL_PORT: '1111' }, { dotenv: 'H=dotenv\nLLAMACTL_PORT=2222\n' })
    expect([r.config.server.host, r.config.server.port]).toEqual(['env', 1111])
    expect(r.dotenv!.vars).toEqual({})
  })
})

describe('where the config file is looked for', () => {
  test('./llamactl.yaml, then ./config.yaml, then ~/.config/llamactl/config.yaml', () => {
    const { home, cwd } = dirs()
    mkdirSync(join(home, '.config', 'llamactl'), { recursive: true })
    writeFileSync(join(home, '.config', 'llamactl', 'config.yaml'), 'server:\n  port: 3\n')
    expect(loadConfig({ env: {}, cwd, home }).config.server.port).toBe(3)
    writeFileSync(join(cwd, 'config.yaml'), 'server:\n  port: 2\n')
    expect(loadConfig({ env: {}, cwd, home }).config.server.port).toBe(2)
    writeFileSync(join(cwd, 'llamactl.yaml'), 'server:\n  port: 1\n')
    expect(loadConfig({ env: {}, cwd, home }).config.server.port).toBe(1)
  })
})

describe('~ in paths', () => {
  test('is the home folder in data_dir, logs_dir, database.path and commands, never a folder named ~', () => {
    const r = load('data_dir: ~/x\ninstances:\n  logs_dir: ~/logs\ndatabase:\n  path: ~/db/l.db\nbackends:\n  llama-cpp:\n    command: ~/llama.cpp/build/bin/llama-server\n')
    expect(r.config.data_dir).toBe(join(r.home, 'x'))
    expect(r.config.instances.logs_dir).toBe(join(r.home, 'logs'))
    expect(r.config.database.path).toBe(join(r.home, 'db', 'l.db'))
    expect(r.config.backends['llama-cpp'].command).toBe(join(r.home, 'llama.cpp/build/bin/llama-server'))
    for (const p of [r.config.data_dir, r.config.instances.logs_dir, r.config.database.path]) expect(p).not.toContain('~')
  })
})

describe('credentials', () => {
  const unset: [string, string][] = [
    ['a management key', 'auth:\n  management_keys:\n    - ${OPENAI_API_KEY}\n'],
    ['an inference key', 'auth:\n  inference_keys: ["${INFER_KEY}"]\n'],
    ['the metrics key', 'metrics:\n  key: ${METRICS_KEY}\n'],
    ['a node\'s api_key', 'nodes:\n  w:\n    address: http://w:8080\n    api_key: ${W_KEY}\n'],
  ]
  for (const [what, yaml] of unset) {
    test(`${what} whose variable is unset stops start-up, naming the key, the placeholder and the file`, () => {
      const r = (() => {
        const { home, cwd } = dirs()
        writeFileSync(join(cwd, 'llamactl.yaml'), yaml)
        return { msg: failure(() => loadConfig({ env: {}, cwd, home })), file: join(cwd, 'llamactl.yaml') }
      })()
      expect(r.msg).toMatch(/(auth\.\w+_keys|metrics\.key|nodes\.w\.api_key): \$\{\w+\} was not replaced/)
      expect(r.msg).toContain(r.file)
      expect(r.msg.split('\n')).toHaveLength(1)
    })
  }

  test('an entry that expands to nothing is no key, and start-up says so', () => {
    const r = load('auth:\n  management_keys:\n    - ${MK:-}\n    - "  "\n    - real-key\n  inference_keys: ["${IK:-}"]\nmetrics:\n  key: ${MET:-}\n')
    expect(r.config.auth.management_keys).toEqual(['real-key'])
    expect(r.config.auth.inference_keys).toEqual([])
    expect(r.config.metrics.key).toBe('')
    expect(r.notes.some((n) => n.startsWith('auth.management_keys: 2 empty entries are not a key'))).toBe(true)
  })

  test('with only empty management keys, llamactl makes one of its own: the empty string never lets anyone in', async () => {
    const h = await harness({ LLAMACTL_REQUIRE_MANAGEMENT_AUTH: 'true', LLAMACTL_MANAGEMENT_KEYS: ',' })
    try {
      expect(h.keys.generatedKeyFile).not.toBeNull()
      expect((await h.request('GET', '/api/v1/instances', undefined, { authorization: 'Bearer ' })).status).toBe(401)
      expect((await h.request('GET', '/api/v1/instances', undefined, { authorization: 'Bearer ${OPENAI_API_KEY}' })).status).toBe(401)
    } finally {
      await h.close()
    }
  })
})

describe('start-up lines', () => {
  test('none for an empty config', () => {
    expect(load(null).notes).toEqual([])
    expect(load('').notes).toEqual([])
  })

  test('an old spelling works and is named with its new one, once', () => {
    const r = load('instances:\n  llama_executable: /x/llama-server\n', { LLAMACTL_VLLM_EXECUTABLE: '/x/vllm' })
    expect(r.notes).toEqual([
      `${r.file}: 'instances.llama_executable' is the old name of 'backends.llama-cpp.command'; it still works, but rename it`,
      'environment variable LLAMACTL_VLLM_EXECUTABLE is the old name of LLAMACTL_VLLM_COMMAND; it still works, but rename it',
    ])
  })

  test('an old and a new spelling that disagree stop start-up; the new variable wins over the old', () => {
    expect(failure(() => load('instances:\n  logs_dir: /a\n  log_directory: /b\n'))).toMatch(/key 'instances.log_directory'.*'instances.logs_dir' is also set/)
    expect(load('instances:\n  logs_dir: /a\n  log_directory: /a\n').config.instances.logs_dir).toBe('/a')
    expect(load(null, { LLAMACTL_LOG_DIR: '/old', LLAMACTL_LOGS_DIR: '/new' }).config.instances.logs_dir).toBe('/new')
    expect(load(null, { LLAMA_CACHE: '/a', LLAMACTL_LLAMACPP_CACHE_DIR: '/b' }).config.backends['llama-cpp'].cache_dir).toBe('/b')
  })

  test('each key set whose feature is not built says so; the pool keys say they have no effect', () => {
    const r = load(`
instances:
  group_limits: {large: 1}
  configs_dir: /srv/inst
  log_rotation_compress: true
  timeout_check_interval: 5
database:
  max_open_connections: 10
  max_idle_connections: 2
  connection_max_lifetime: 1h
backends:
  llama-cpp:
    cache_dir: /models
nodes:
  main:
  worker1:
    address: http://10.0.0.2:8080
`)
    const about = (key: string) => r.notes.filter((n) => n.startsWith(`${key} `))
    // Groups, model downloads, remote nodes, the model library (the cache) and router presets
    // (instances_dir) are built: their keys are used, so nothing is said about them.
    for (const key of ['instances.group_limits', 'backends.llama-cpp.cache_dir', 'nodes', 'instances.instances_dir']) expect(about(key)).toEqual([])
    expect(r.notes.filter((n) => n.includes('is read and checked but not used yet'))).toEqual([])
    for (const key of ['database.max_open_connections', 'database.max_idle_connections', 'database.connection_max_lifetime', 'instances.timeout_check_interval']) {
      expect(about(key)).toHaveLength(1)
      expect(about(key)[0]).toContain('has no effect')
    }
    expect(about('instances.log_rotation_compress')).toEqual([])
  })

  test('nodes naming only this llamactl, or values equal to the defaults, are nothing to warn about', () => {
    expect(load('local_node: main\nnodes:\n  main:\n    address: ""\n').notes).toEqual([])
    expect(load('instances:\n  group_limits: {}\ndatabase:\n  max_open_connections: 25\n  connection_max_lifetime: 5m\n').notes).toEqual([])
  })

  test('an unset ${VAR} outside credentials stays as written, and start-up names it', () => {
    const r = load('backends:\n  llama-cpp:\n    environment:\n      HF_TOKEN: ${TEST_HF_TOKEN}\n')
    expect(r.config.backends['llama-cpp'].environment.HF_TOKEN).toBe('${TEST_HF_TOKEN}')
    expect(r.notes).toEqual([`${r.file}: \${TEST_HF_TOKEN} stays as written: the variable TEST_HF_TOKEN is not set (write \${TEST_HF_TOKEN:-} for an empty value)`])
  })
})

describe('keys of later features are checked now: one line naming the key and the file', () => {
  const bad: [string, string, RegExp][] = [
    ['a group limit that is not a number', 'instances:\n  group_limits:\n    large: many\n', /key 'instances.group_limits'.*value of large|key 'instances.group_limits'.*whole number/],
    ['a negative group limit', 'instances:\n  group_limits:\n    large: -1\n', /key 'instances.group_limits'.*at least 0/],
    ['a node address that is not a URL', 'nodes:\n  w:\n    address: 10.0.0.2:8080\n', /key 'nodes.w'.*not an http/],
    ['an unknown key in a node', 'nodes:\n  w:\n    adress: http://w\n', /key 'nodes.w'.*unknown key 'adress'.*address, api_key, ca_file/],
    ['a node address with a password in it', 'nodes:\n  w:\n    address: http://u:secret@w:8080\n', /key 'nodes.w'.*user or password.*api_key/],
    ['a node ca_file that is not a string', 'nodes:\n  w:\n    address: https://w\n    ca_file: [a]\n', /key 'nodes.w'.*ca_file is not a string/],
    ['a node check interval of zero', 'node_health_check_interval: 0\n', /key 'node_health_check_interval'.*at least/],
    ['a duration that is not one', 'database:\n  connection_max_lifetime: soon\n', /key 'database.connection_max_lifetime'.*duration/],
    ['a download timeout of zero', 'backends:\n  llama-cpp:\n    download_timeout: 0s\n', /key 'backends.llama-cpp.download_timeout'.*at least 1s/],
    ['a pool size that is not a number', 'database:\n  max_open_connections: lots\n', /key 'database.max_open_connections'.*whole number/],
    ['a compress flag that is not a boolean', 'instances:\n  log_rotation_compress: gzip\n', /key 'instances.log_rotation_compress'.*true or false/],
  ]
  for (const [what, yaml, message] of bad) {
    test(what, () => {
      const { home, cwd } = dirs()
      writeFileSync(join(cwd, 'llamactl.yaml'), yaml)
      const msg = failure(() => loadConfig({ env: {}, cwd, home }))
      expect(msg).toMatch(message)
      expect(msg).toContain(join(cwd, 'llamactl.yaml'))
      expect(msg.split('\n')).toHaveLength(1)
    })
  }
})

describe('--print-config', () => {
  test('masks every secret and says where each value came from', () => {
    const r = load(
      'auth:\n  management_keys: [mk-secret-1]\n  inference_keys: [ik-secret-2]\nmetrics:\n  key: met-secret-3\nnodes:\n  w:\n    address: http://w:8080\n    api_key: node-secret-4\n' +
        'backends:\n  llama-cpp:\n    environment: {HF_TOKEN: hf-secret-5, CUDA_VISIBLE_DEVICES: "0"}\n    args: [--api-key, api-secret-6, --threads, "4"]\n    docker:\n      args: [-e, "TOKEN=docker-secret-7"]\n',
      { LLAMACTL_PORT: '9999' },
      { flags: { 'server.host': '0.0.0.0' }, dotenv: 'LLAMACTL_MAX_INSTANCES=4\n' },
    )
    const text = printConfig(r)
    for (const secret of ['mk-secret-1', 'ik-secret-2', 'met-secret-3', 'node-secret-4', 'hf-secret-5', 'api-secret-6', 'docker-secret-7']) expect(text).not.toContain(secret)
    expect(text).toContain('backends.llama-cpp.environment = {"HF_TOKEN":"***","CUDA_VISIBLE_DEVICES":"0"}')
    expect(text).toContain('backends.llama-cpp.args = ["--api-key","***","--threads","4"]')
    expect(text).toMatch(/^auth\.management_keys = \["\(set\)"\] +# file .*llamactl\.yaml$/m)
    expect(text).toMatch(/^server\.port = 9999 +# env LLAMACTL_PORT$/m)
    expect(text).toMatch(/^server\.host = "0\.0\.0\.0" +# flag --host$/m)
    expect(text).toMatch(/^instances\.max_instances = 4 +# env LLAMACTL_MAX_INSTANCES \(from .*\.env\)$/m)
    expect(text).toMatch(/^server\.idle_timeout = 60 +# default$/m)
    // One line per key of the table.
    for (const s of SETTINGS) expect(text).toContain(`\n${s.key} = `)
  })
})

describe('the command line comes from the settings table', () => {
  test('every flag of the table is accepted, and in --help with its key and variable', () => {
    const flagged = SETTINGS.filter((s) => s.flag)
    expect(flagged.length).toBeGreaterThan(0)
    for (const s of flagged) {
      const a = parseArgs([s.flag!, 'v'])
      expect(a).toEqual({ kind: 'run', configPath: undefined, flags: { [s.key]: 'v' }, printConfig: false })
      expect(parseArgs([`${s.flag}=v`])).toEqual(a)
      expect(USAGE).toContain(s.flag!)
      expect(USAGE).toContain(`(${s.key}, ${s.env})`)
    }
    expect(parseArgs(['--print-config', '--config', 'x.yaml'])).toEqual({ kind: 'run', configPath: 'x.yaml', flags: {}, printConfig: true })
    expect(USAGE).toContain('--print-config')
    expect(() => parseArgs(['--llama-executable', 'x'])).toThrow(/unknown argument/)
  })
})

describe('GET /api/v1/config', () => {
  test('answers what the original\'s web UI reads, secrets masked as it masks them', async () => {
    const h = await harness({
      LLAMACTL_MANAGEMENT_KEYS: 'mk-hidden',
      LLAMACTL_INFERENCE_KEYS: 'ik-hidden',
      LLAMACTL_METRICS_KEY: 'met-hidden',
      LLAMACTL_DEFAULT_IDLE_TIMEOUT: '30',
      LLAMACTL_VLLM_DOCKER_IMAGE: 'vllm/vllm-openai:latest',
      LLAMACTL_VLLM_ENV: 'HF_TOKEN=hf-hidden',
    })
    try {
      const res = await h.request('GET', '/api/v1/config')
      expect(res.status).toBe(200)
      const text = await res.text()
      for (const secret of ['mk-hidden', 'ik-hidden', 'met-hidden', 'hf-hidden']) expect(text).not.toContain(secret)
      const c = JSON.parse(text)
      // What its instance form reads: the defaults and each backend's command and Docker settings.
      expect(c.instances).toMatchObject({ default_idle_timeout: 30, default_auto_restart: true, default_max_restarts: 3, default_restart_delay: 0, default_on_demand_start: true })
      expect(c.backends.vllm).toMatchObject({ command: 'vllm', docker: { enabled: false, image: 'vllm/vllm-openai:latest' } })
      expect(typeof c.backends['llama-cpp'].command).toBe('string')
      expect(c.backends.mlx.command).toBe('mlx_lm.server')
      // The rest of its AppConfig.
      expect(c.server).toMatchObject({ host: expect.any(String), port: expect.any(Number), allowed_origins: expect.any(Array), allowed_headers: expect.any(Array), enable_swagger: false })
      expect(c.instances.port_range).toHaveLength(2)
      expect(c.database).toMatchObject({ path: h.config.database.path, max_open_connections: 25, max_idle_connections: 5, connection_max_lifetime: 300e9 })
      expect(c.auth).toMatchObject({ require_inference_auth: false, require_management_auth: false, management_keys: [], inference_keys: [] })
      expect(c.metrics.key).toBe('')
      expect(c.local_node).toBe('main')
      expect(c.nodes).toEqual({ main: { address: '', api_key: '' } })
      expect(c.data_dir).toBe(h.config.data_dir)
      expect(typeof c.version).toBe('string')
      expect(typeof c.commit_hash).toBe('string')
      expect(typeof c.build_time).toBe('string')
    } finally {
      await h.close()
    }
  })

  test('is a management route', async () => {
    const h = await harness({ LLAMACTL_REQUIRE_MANAGEMENT_AUTH: 'true', LLAMACTL_MANAGEMENT_KEYS: 'mk-1' })
    try {
      expect((await h.request('GET', '/api/v1/config')).status).toBe(401)
      expect((await h.request('GET', '/api/v1/config', undefined, { authorization: 'Bearer mk-1' })).status).toBe(200)
    } finally {
      await h.close()
    }
  })
})

describe('the settings table', () => {
  test('every alias names a key of the table and takes no name of one', () => {

    const envs = new Set(SETTINGS.flatMap((s) => (s.env ? [s.env] : [])))
    for (const a of ALIASES) {
      expect(SETTINGS_BY_KEY.has(a.for)).toBe(true)
      if (a.key) expect(SETTINGS_BY_KEY.has(a.key)).toBe(false)
      if (a.env) expect(envs.has(a.env)).toBe(false)
    }
  })

  test('a loaded config has every key of the table, of its kind\'s type', () => {
    const { config } = load(null)
    const typeOf: Record<string, (v: unknown) => boolean> = {
      string: (v) => typeof v === 'string',
      path: (v) => typeof v === 'string',
      enum: (v) => typeof v === 'string',
      int: Number.isInteger,
      duration: (v) => typeof v === 'number',
      bool: (v) => typeof v === 'boolean',
      list: Array.isArray,
      args: Array.isArray,
      port_range: (v) => Array.isArray(v) && v.length === 2,
      map: (v) => typeof v === 'object' && v !== null && !Array.isArray(v),
      int_map: (v) => typeof v === 'object' && v !== null && !Array.isArray(v),
      nodes: (v) => typeof v === 'object' && v !== null && !Array.isArray(v),
    }
    for (const s of SETTINGS) {
      const v = s.key.split('.').reduce<unknown>((o, p) => (o as Record<string, unknown>)[p], config)
      expect([s.key, typeOf[s.kind]!(v)]).toEqual([s.key, true])
    }
  })
})
