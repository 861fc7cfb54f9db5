import { describe, expect, test } from 'bun:test'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { loadConfig } from '../../src/config/load'
import { SETTINGS } from '../../src/config/settings'
import { ConfigError } from '../../src/errors'
import { tempDir } from '../helpers'

function load(yaml: string | null, env: Record<string, string> = {}, flags: Record<string, string> = {}) {
  const dir = tempDir()
  if (yaml !== null) writeFileSync(join(dir, 'llamactl.yaml'), yaml)
  return { dir, ...loadConfig({ env, flags, cwd: dir, home: dir }) }
}

describe('config', () => {
  test('built-in defaults', () => {
    const { config, file, dir } = load(null)
    expect(file).toBeNull()
    expect(config.server.port).toBe(8080)
    expect(config.server.host).toBe('127.0.0.1')
    expect(config.instances.port_range).toEqual([8000, 9000])
    expect(config.data_dir).toBe(join(dir, '.local', 'share', 'llamactl'))
    expect(config.database.path).toBe(join(config.data_dir, 'llamactl.db'))
    expect(config.backends['llama-cpp'].command).toBe('llama-server')
    expect(config.auth.require_management_auth).toBe(true)
  })

  test('YAML, then environment, then flags, each overriding the last', () => {
    const yaml = 'server:\n  port: 9001\n  host: 0.0.0.0\ninstances:\n  port_range: [7000, 7100]\n  max_running_instances: 2\n'
    const a = load(yaml)
    expect(a.config.server.port).toBe(9001)
    expect(a.config.server.host).toBe('0.0.0.0')
    expect(a.config.instances.port_range).toEqual([7000, 7100])
    expect(a.config.instances.max_running_instances).toBe(2)
    const b = load(yaml, { LLAMACTL_PORT: '9002', LLAMACTL_INSTANCE_PORT_RANGE: '7200-7300' })
    expect(b.config.server.port).toBe(9002)
    expect(b.config.instances.port_range).toEqual([7200, 7300])
    const c = load(yaml, { LLAMACTL_PORT: '9002' }, { 'server.port': '9003', data_dir: '/tmp/x' })
    expect(c.config.server.port).toBe(9003)
    expect(c.config.data_dir).toBe('/tmp/x')
  })

  test('llamactl-style backend settings and list variables', () => {
    const yaml = `backends:\n  llama-cpp:\n    command: /opt/llama-server\n    args: ["--verbose"]\n    environment:\n      CUDA_VISIBLE_DEVICES: "0"\n  vllm:\n    docker:\n      enabled: true\n      image: vllm/vllm-openai\nauth:\n  management_keys: [a, b]\n`
    const { config } = load(yaml, { LLAMACTL_INFERENCE_KEYS: 'k1,k2', LLAMACTL_MLX_ENV: 'A=1,B=x=y' })
    expect(config.backends['llama-cpp'].command).toBe('/opt/llama-server')
    expect(config.backends['llama-cpp'].args).toEqual(['--verbose'])
    expect(config.backends['llama-cpp'].environment).toEqual({ CUDA_VISIBLE_DEVICES: '0' })
    expect(config.backends.vllm.docker.enabled).toBe(true)
    expect(config.backends.vllm.docker.image).toBe('vllm/vllm-openai')
    expect(config.auth.management_keys).toEqual(['a', 'b'])
    expect(config.auth.inference_keys).toEqual(['k1', 'k2'])
    expect(config.backends.mlx.environment).toEqual({ A: '1', B: 'x=y' })
  })

  test('--config and LLAMACTL_CONFIG_PATH pick the file', () => {
    const dir = tempDir()
    const p = join(dir, 'custom.yaml')
    writeFileSync(p, 'server:\n  port: 1234\n')
    expect(loadConfig({ configPath: p, env: {}, cwd: dir, home: dir }).config.server.port).toBe(1234)
    expect(loadConfig({ env: { LLAMACTL_CONFIG_PATH: p }, cwd: dir, home: dir }).file).toBe(p)
    expect(() => loadConfig({ configPath: join(dir, 'missing.yaml'), env: {}, cwd: dir, home: dir })).toThrow('does not exist')
  })

  test('~/.config/llamactl/config.yaml is found', () => {
    const dir = tempDir()
    mkdirSync(join(dir, '.config', 'llamactl'), { recursive: true })
    writeFileSync(join(dir, '.config', 'llamactl', 'config.yaml'), 'server:\n  port: 4321\n')
    expect(loadConfig({ env: {}, cwd: tempDir(), home: dir }).config.server.port).toBe(4321)
  })

  const bad: [string, string | null, Record<string, string>, RegExp][] = [
    ['unparseable YAML', 'server: [unclosed', {}, /not valid YAML/],
    ['a reversed port range', 'instances:\n  port_range: "9000-8000"\n', {}, /key 'instances.port_range'.*"9000-8000".*must not be above/],
    ['an unknown backend key', 'backends:\n  llama-cpp:\n    comand: x\n', {}, /unknown key 'backends.llama-cpp.comand'/],
    ['an unknown backend', 'backends:\n  ollama:\n    command: x\n', {}, /unknown key 'backends.ollama'/],
    ['an unknown top-level key', 'sever:\n  port: 1\n', {}, /unknown key 'sever'/],
    ['a port that is not a number', 'server:\n  port: eighty\n', {}, /key 'server.port'.*whole number/],
    ['a port out of range', 'server:\n  port: 70000\n', {}, /at most 65535/],
    ['a bad boolean variable', null, { LLAMACTL_ENABLE_LRU_EVICTION: 'maybe' }, /LLAMACTL_ENABLE_LRU_EVICTION.*true or false/],
    ['a bad port variable', null, { LLAMACTL_PORT: '80a' }, /LLAMACTL_PORT/],
    ['a bad port range variable', null, { LLAMACTL_INSTANCE_PORT_RANGE: '9000' }, /LLAMACTL_INSTANCE_PORT_RANGE/],
    ['a mapping where a list belongs', 'auth:\n  management_keys:\n    a: b\n', {}, /auth.management_keys/],
    ['a per-request body limit above the buffered-bodies budget', null, { LLAMACTL_MAX_INFERENCE_BODY_SIZE: '2000000', LLAMACTL_MAX_BUFFERED_BODY_SIZE: '1000000' }, /max_inference_body_size \(2000000\) is larger than server.max_buffered_body_size/],
  ]
  for (const [what, yaml, env, message] of bad) {
    test(`${what} stops start-up naming the key and the source`, () => {
      let err: unknown
      try {
        load(yaml, env)
      } catch (e) {
        err = e
      }
      expect(err).toBeInstanceOf(ConfigError)
      expect((err as Error).message).toMatch(message)
      if (yaml !== null) expect((err as Error).message).toContain('llamactl.yaml')
    })
  }

  test('every setting has a doc line and a unique variable', () => {
    const envs = SETTINGS.flatMap((s) => (s.env ? [s.env] : []))
    expect(new Set(envs).size).toBe(envs.length)
    for (const s of SETTINGS) expect(s.doc.length).toBeGreaterThan(5)
  })
})

test('docs/configuration.md is generated from the settings table and up to date', async () => {
  const { renderConfigDoc } = await import('../../scripts/config-doc')
  const doc = await Bun.file(new URL('../../docs/configuration.md', import.meta.url)).text()
  expect(doc).toBe(renderConfigDoc())
})
