import { afterEach, describe, expect, test } from 'bun:test'
import { chmodSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { processStartTime } from '../../src/supervisor/os-process'
import { FAKE_SERVER, fakeDocker, type Harness, harness, tempDir, waitFor } from '../helpers'

let h: Harness | undefined
afterEach(async () => {
  await h?.close()
  h = undefined
})

const logsOf = async (name: string) => (await h!.request('GET', `/api/v1/instances/${name}/logs`)).text()

describe('what an instance runs', () => {
  test('the seed\'s key for the options is accepted as backend_options and stored as such', async () => {
    h = await harness()
    const res = await h.json('POST', '/api/v1/instances/seed?wait=ready', { backend_type: 'llama_cpp', llama_server_options: { model: 'x', ctx_size: 64 } })
    expect(res.status).toBe(201)
    expect(res.body.options.backend_options).toEqual({ model: 'x', ctx_size: 64 })
    expect(res.body.options.llama_server_options).toBeUndefined()
    expect(JSON.parse(h.store.getInstance('seed')!.options)).toEqual({ backend_type: 'llama_cpp', backend_options: { model: 'x', ctx_size: 64 } })
    expect(await logsOf('seed')).toContain('--ctx-size 64')
  })

  test('the seed\'s key must match backend_type and agree with backend_options', async () => {
    h = await harness()
    const cases: [unknown, string][] = [
      [{ backend_type: 'vllm', llama_server_options: { model: 'x' } }, 'llama_server_options is for backend_type llama_cpp, but backend_type is vllm'],
      [{ mlx_server_options: { model: 'x' } }, 'mlx_server_options is for backend_type mlx_lm, but backend_type is llama_cpp'],
      [{ backend_options: { model: 'x' }, llama_server_options: { model: 'y' } }, 'backend_options and llama_server_options differ'],
      [{ llama_server_options: { ctx_size: 'big' } }, 'backend_options.ctx_size'],
    ]
    for (const [body, fragment] of cases) {
      const res = await h.json('POST', '/api/v1/instances/s?wait=ready', body)
      expect([res.status, res.body.error]).toEqual([400, expect.stringContaining(fragment)])
    }
    const same = await h.json('POST', '/api/v1/instances/s?wait=ready', { backend_options: { model: 'x' }, llama_server_options: { model: 'x' } })
    expect(same.status).toBe(201)
  })

  test('command_override runs another executable, with the configured args', async () => {
    const dir = tempDir()
    // prints a marker, then runs bun with its arguments: the configured args (the fake server) and the instance's own
    const other = join(dir, 'other-server')
    writeFileSync(other, `#!/bin/sh\necho "other executable: $*"\nexec '${process.execPath}' "$@"\n`)
    chmodSync(other, 0o755)
    h = await harness()
    const res = await h.json('POST', '/api/v1/instances/o?wait=ready', { backend_options: { model: 'x' }, command_override: other })
    expect(res.status).toBe(201)
    expect(res.body.options.command_override).toBe(other)
    const logs = await logsOf('o')
    expect(logs).toContain(`starting: ${other} ${FAKE_SERVER} --model x`)
    expect(logs).toContain(`other executable: ${FAKE_SERVER} --model x`)
    expect(logs).toContain('fake-llama-server: model x')
  })

  test('llamactl\'s own LLAMACTL_* variables (its keys) do not reach a backend, unless the instance or backend sets them', async () => {
    const saved = { m: process.env.LLAMACTL_MANAGEMENT_KEYS, i: process.env.LLAMACTL_INFERENCE_KEYS }
    process.env.LLAMACTL_MANAGEMENT_KEYS = 'mk-inherited'
    process.env.LLAMACTL_INFERENCE_KEYS = 'ik-inherited'
    try {
      h = await harness({ LLAMACTL_LLAMACPP_ENV: 'LLAMACTL_FROM_BACKEND=set-in-config' })
      const printing = async (name: string, variable: string, environment: Record<string, string> = {}) => {
        const res = await h!.json('POST', `/api/v1/instances/${name}?wait=ready`, { backend_options: { model: 'x' }, environment: { FAKE_PRINT_ENV: variable, ...environment } })
        expect(res.status).toBe(201)
        return logsOf(name)
      }
      expect(await printing('m', 'LLAMACTL_MANAGEMENT_KEYS')).toContain('env LLAMACTL_MANAGEMENT_KEYS=undefined')
      expect(await printing('i', 'LLAMACTL_INFERENCE_KEYS')).toContain('env LLAMACTL_INFERENCE_KEYS=undefined')
      expect(await printing('own', 'LLAMACTL_INFERENCE_KEYS', { LLAMACTL_INFERENCE_KEYS: 'given-by-instance' })).toContain('env LLAMACTL_INFERENCE_KEYS=given-by-instance')
      expect(await printing('cfg', 'LLAMACTL_FROM_BACKEND')).toContain('env LLAMACTL_FROM_BACKEND=set-in-config')
      // the rest of llamactl's environment still passes
      expect(await printing('path', 'PATH')).toContain(`env PATH=${process.env.PATH}`)
    } finally {
      for (const [k, v] of [['LLAMACTL_MANAGEMENT_KEYS', saved.m], ['LLAMACTL_INFERENCE_KEYS', saved.i]] as const) {
        if (v === undefined) delete process.env[k]
        else process.env[k] = v
      }
    }
  })

  test('a bad command_override is 400', async () => {
    h = await harness()
    const res = await h.json('POST', '/api/v1/instances/o?wait=ready', { backend_options: { model: 'x' }, command_override: '' })
    expect(res.status).toBe(400)
    expect(res.body.error).toContain('command_override')
  })

  test('docker_enabled without a configured image is 400 and stores nothing', async () => {
    h = await harness()
    const res = await h.json('POST', '/api/v1/instances/d?wait=ready', { backend_options: { model: 'x' }, docker_enabled: true })
    expect(res.status).toBe(400)
    expect(res.body.error).toBe('docker_enabled: backends.llama-cpp.docker.image is not set in the configuration, so there is no image to run')
    expect(h.store.countInstances()).toBe(0)
  })
})

describe('Docker mode', () => {
  async function dockerHarness(extra: Record<string, string> = {}) {
    const dir = tempDir()
    const docker = fakeDocker(dir)
    h = await harness({
      LLAMACTL_LLAMACPP_ARGS: '',
      LLAMACTL_LLAMACPP_DOCKER_COMMAND: docker.command,
      LLAMACTL_LLAMACPP_DOCKER_IMAGE: 'ghcr.io/example/llama:server',
      LLAMACTL_LLAMACPP_DOCKER_ARGS: 'run --gpus all',
      LLAMACTL_LLAMACPP_DOCKER_ENV: 'FROM_DOCKER_CONFIG=1',
      ...extra,
    })
    return docker
  }

  test('docker run with the image and args, -e for the environment, named after the instance; stop leaves nothing running', async () => {
    const docker = await dockerHarness()
    const res = await h!.json('POST', '/api/v1/instances/d1?wait=ready', {
      backend_options: { model: 'x' },
      docker_enabled: true,
      environment: { FAKE_PRINT_ENV: 'MY_VAR', MY_VAR: 'inside the container' },
    })
    expect(res.status).toBe(201)
    expect(res.body.status).toBe('running')
    expect(res.body.options.docker_enabled).toBe(true)
    const port = res.body.port
    expect((await fetch(`http://127.0.0.1:${port}/health`)).status).toBe(200)

    const calls = docker.calls()
    // a container left by an earlier run would hold the name: removed first
    expect(calls[0]).toEqual(['rm', '-f', 'llamactl-d1'])
    expect(calls[1]).toEqual([
      'run', '--rm', '--name', 'llamactl-d1', '--network', 'host', '--gpus', 'all',
      '-e', 'FROM_DOCKER_CONFIG', '-e', 'FAKE_PRINT_ENV', '-e', 'MY_VAR',
      'ghcr.io/example/llama:server', '--model', 'x', '--host', '127.0.0.1', '--port', String(port),
    ])
    const logs = await logsOf('d1')
    expect(logs).toContain('env MY_VAR=inside the container')
    // values travel in the client's environment, not on its command line
    expect(logs).not.toContain('MY_VAR=inside the container -')

    const container = docker.containerPid('llamactl-d1')!
    expect(processStartTime(container)).not.toBeNull()
    const stopped = await h!.json('POST', '/api/v1/instances/d1/stop')
    expect(stopped.body.status).toBe('stopped')
    expect(docker.calls().slice(2)).toEqual([['stop', '-t', '2', 'llamactl-d1'], ['rm', '-f', 'llamactl-d1']])
    await waitFor(() => processStartTime(container) === null, 3000)
    expect(docker.containerPid('llamactl-d1')).toBeNull()
    await expect(fetch(`http://127.0.0.1:${port}/health`)).rejects.toThrow()
    expect(await logsOf('d1')).toContain('stop -t 2 llamactl-d1: done')
  })

  test('the backend\'s docker.enabled applies unless the instance says otherwise', async () => {
    const docker = await dockerHarness({ LLAMACTL_LLAMACPP_DOCKER_ENABLED: 'true', LLAMACTL_LLAMACPP_ARGS: FAKE_SERVER })
    const inDocker = await h!.json('POST', '/api/v1/instances/in?wait=ready', { backend_options: { model: 'x' } })
    expect([inDocker.status, inDocker.body.status]).toEqual([201, 'running'])
    expect(inDocker.body.options.docker_enabled).toBe(true)
    expect(docker.calls().some((c) => c[0] === 'run' && c.includes('llamactl-in'))).toBe(true)
    const native = await h!.json('POST', '/api/v1/instances/out?wait=ready', { backend_options: { model: 'x' }, docker_enabled: false })
    expect(native.status).toBe(201)
    expect(docker.calls().some((c) => c.includes('llamactl-out'))).toBe(false)
    expect(await logsOf('out')).toContain(`starting: ${process.execPath} ${FAKE_SERVER} --model x`)
  })

  test('command_override becomes the container\'s entrypoint', async () => {
    const docker = await dockerHarness()
    await h!.json('POST', '/api/v1/instances/ep?wait=ready', { backend_options: { model: 'x' }, docker_enabled: true, command_override: process.execPath })
    const run = docker.calls().find((c) => c[0] === 'run')!
    expect(run.slice(run.indexOf('--entrypoint'), run.indexOf('--entrypoint') + 3)).toEqual(['--entrypoint', process.execPath, 'ghcr.io/example/llama:server'])
  })

  test('a container that outlives a crashed start is stopped and removed too', async () => {
    const docker = await dockerHarness()
    const res = await h!.json('POST', '/api/v1/instances/bad?wait=ready', { backend_options: { model: 'crash-on-load' }, docker_enabled: true })
    expect(res.status).toBe(500)
    expect(docker.calls().slice(-2)).toEqual([['stop', '-t', '2', 'llamactl-bad'], ['rm', '-f', 'llamactl-bad']])
    expect(docker.containerPid('llamactl-bad')).toBeNull()
  })
})
