import { Sessions } from '../../src/auth/sessions'
import { afterEach, describe, expect, test } from 'bun:test'
import { chmodSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createApp } from '../../src/http/app'
import { processStartTime } from '../../src/supervisor/os-process'
import { fakeDocker, type Harness, harness, tempDir } from '../helpers'

let h: Harness | undefined
afterEach(async () => {
  await h?.close()
  h = undefined
})

function script(body: string): string {
  const path = join(tempDir(), 'llama-server')
  writeFileSync(path, `#!/bin/sh\n${body}\n`)
  chmodSync(path, 0o755)
  return path
}

describe('GET /api/v1/server/{help,version,devices}', () => {
  test('run the configured llama-server and answer its plain text', async () => {
    h = await harness()
    const help = await h.request('GET', '/api/v1/server/help')
    expect(help.status).toBe(200)
    expect(help.headers.get('content-type')).toContain('text/plain')
    const text = await help.text()
    expect(text.startsWith('----- common params -----\n\n-h,    --help, --usage                  print usage and exit\n')).toBe(true)
    expect(text).toContain('\n--model, -m N                           model\n')

    // --version prints on stderr, after a log line that is left out
    const version = await h.request('GET', '/api/v1/server/version')
    expect(version.status).toBe(200)
    expect(await version.text()).toBe('version: 0.0.0-fake (build 1, commit fake)\nbuilt with bun for the fast suite\n')

    const devices = await h.request('GET', '/api/v1/server/devices')
    expect(devices.status).toBe(200)
    expect(await devices.text()).toBe('Available devices:\n  FAKE0: Fake GPU (1024 MiB, 1024 MiB free)\n')
  })

  test('the original\'s paths, /api/v1/backends/llama-cpp/{help,version,devices}, answer the same', async () => {
    h = await harness()
    for (const name of ['help', 'version', 'devices']) {
      const seed = await h.request('GET', `/api/v1/server/${name}`)
      const original = await h.request('GET', `/api/v1/backends/llama-cpp/${name}`)
      expect([name, original.status, original.headers.get('content-type')]).toEqual([name, 200, seed.headers.get('content-type')])
      expect(await original.text()).toBe(await seed.text())
    }
    // A failure is the same error on both.
    await h.close()
    h = await harness({ LLAMACTL_LLAMACPP_COMMAND: '/nonexistent/llama-server', LLAMACTL_LLAMACPP_ARGS: '' })
    const res = await h.json('GET', '/api/v1/backends/llama-cpp/version')
    expect(res.status).toBe(500)
    expect(res.body.error).toContain('/nonexistent/llama-server')
  })

  test('the backend\'s configured args and environment are used', async () => {
    const cmd = script('echo "args: $*"; echo "env: $LLAMA_TEST_VAR"')
    h = await harness({ LLAMACTL_LLAMACPP_COMMAND: cmd, LLAMACTL_LLAMACPP_ARGS: '--a1 --a2', LLAMACTL_LLAMACPP_ENV: 'LLAMA_TEST_VAR=configured' })
    expect(await (await h.request('GET', '/api/v1/server/devices')).text()).toBe('args: --a1 --a2 --list-devices\nenv: configured\n')
  })

  test('llamactl\'s own LLAMACTL_* variables do not reach it', async () => {
    const cmd = script('echo "keys: ${LLAMACTL_MANAGEMENT_KEYS:-none}"')
    const saved = process.env.LLAMACTL_MANAGEMENT_KEYS
    process.env.LLAMACTL_MANAGEMENT_KEYS = 'mk-inherited'
    try {
      h = await harness({ LLAMACTL_LLAMACPP_COMMAND: cmd, LLAMACTL_LLAMACPP_ARGS: '' })
      expect(await (await h.request('GET', '/api/v1/server/devices')).text()).toBe('keys: none\n')
    } finally {
      if (saved === undefined) delete process.env.LLAMACTL_MANAGEMENT_KEYS
      else process.env.LLAMACTL_MANAGEMENT_KEYS = saved
    }
  })

  test('500 {"error"} when the executable is missing', async () => {
    h = await harness({ LLAMACTL_LLAMACPP_COMMAND: '/nonexistent/llama-server', LLAMACTL_LLAMACPP_ARGS: '' })
    const res = await h.json('GET', '/api/v1/server/version')
    expect(res.status).toBe(500)
    expect(res.body).toEqual({ error: 'cannot run /nonexistent/llama-server --version: executable not found: /nonexistent/llama-server' })
  })

  test('secret flags in the configured args are masked in its errors', async () => {
    h = await harness({ LLAMACTL_LLAMACPP_COMMAND: '/nonexistent/llama-server', LLAMACTL_LLAMACPP_ARGS: '--api-key -sk-conf-1 --hf-token=hf-conf-2' })
    const res = await h.json('GET', '/api/v1/server/version')
    expect(res.status).toBe(500)
    expect(res.body.error).toStartWith('cannot run /nonexistent/llama-server --api-key *** --hf-token=*** --version: ')
    expect(res.body.error).not.toContain('conf-')
  })

  test('500 {"error"} with its last words when it fails', async () => {
    h = await harness({ LLAMACTL_LLAMACPP_COMMAND: script('echo "error: unknown argument" >&2; exit 3'), LLAMACTL_LLAMACPP_ARGS: '' })
    const res = await h.json('GET', '/api/v1/server/help')
    expect(res.status).toBe(500)
    expect(res.body.error).toMatch(/llama-server --help exited with code 3: error: unknown argument$/)
  })

  test('500 {"error"} after the timeout, and the command is killed', async () => {
    const pidFile = join(tempDir(), 'pid')
    h = await harness({ LLAMACTL_LLAMACPP_COMMAND: script(`echo $$ > ${pidFile}; exec sleep 30`), LLAMACTL_LLAMACPP_ARGS: '' })
    const app = createApp({ manager: h.manager, keys: h.keys, sessions: new Sessions(), serverInfoTimeoutMs: 300 })
    const started = Date.now()
    const res = await app.handle(new Request('http://localhost/api/v1/server/devices'))
    expect(res.status).toBe(500)
    expect((await res.json()).error).toMatch(/llama-server --list-devices did not finish within 0.3 s$/)
    expect(Date.now() - started).toBeLessThan(3000)
    const pid = Number(await Bun.file(pidFile).text())
    expect(processStartTime(pid)).toBeNull()
  })

  test('in Docker mode, `docker run --rm` with the image', async () => {
    const docker = fakeDocker(tempDir())
    h = await harness({
      LLAMACTL_LLAMACPP_ARGS: '',
      LLAMACTL_LLAMACPP_DOCKER_ENABLED: 'true',
      LLAMACTL_LLAMACPP_DOCKER_COMMAND: docker.command,
      LLAMACTL_LLAMACPP_DOCKER_IMAGE: 'ghcr.io/example/llama:server',
      LLAMACTL_LLAMACPP_DOCKER_ARGS: '--gpus all',
    })
    const res = await h.request('GET', '/api/v1/server/devices')
    expect(res.status).toBe(200)
    expect(await res.text()).toContain('FAKE0: Fake GPU')
    expect(docker.calls()).toEqual([['run', '--rm', '--gpus', 'all', 'ghcr.io/example/llama:server', '--list-devices']])
  })

  test('in Docker mode without an image: 500 saying so', async () => {
    h = await harness({ LLAMACTL_LLAMACPP_DOCKER_ENABLED: 'true' })
    const res = await h.json('GET', '/api/v1/server/help')
    expect(res.status).toBe(500)
    expect(res.body.error).toContain('backends.llama-cpp.docker.image is not set')
  })
})
