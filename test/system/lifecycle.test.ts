import { afterEach, describe, expect, test } from 'bun:test'
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Store } from '../../src/store/db'
import { isAlive, processStartTime } from '../../src/supervisor/os-process'
import { BUN, tempDir, waitFor } from '../helpers'
import { AUTH, MAIN, type Running, runLlamactl, startLlamactl } from './process'

const started: Running[] = []
afterEach(async () => {
  // SIGTERM: llamactl stops its backends before it exits, so no test leaves one running.
  for (const r of started.splice(0)) if (r.proc.exitCode === null) await r.stop('SIGTERM')
})

async function start(dir: string, opts?: Parameters<typeof startLlamactl>[1]) {
  const r = await startLlamactl(dir, opts)
  started.push(r)
  return r
}

describe('llamactl as a process', () => {
  test('instances persist across a restart; running ones resume, stopped ones stay stopped', async () => {
    const dir = tempDir()
    const a = await start(dir)
    expect((await a.api('POST', '/api/v1/instances/keep-running?wait=ready', { backend_options: { model: 'x' } })).status).toBe(201)
    expect((await a.api('POST', '/api/v1/instances/keep-stopped?wait=ready', { backend_options: { model: 'x' } })).status).toBe(201)
    expect((await a.api('POST', '/api/v1/instances/keep-stopped/stop')).body.status).toBe('stopped')
    const port = (await a.api('GET', '/api/v1/instances/keep-running')).body.port
    expect(await a.stop('SIGTERM')).toBe(0)
    // SIGTERM stopped the backend before llamactl exited
    await expect(fetch(`http://127.0.0.1:${port}/health`)).rejects.toThrow()

    const b = await start(dir)
    const list = (await b.api('GET', '/api/v1/instances')).body
    expect(list.map((i: any) => i.name).sort()).toEqual(['keep-running', 'keep-stopped'])
    await waitFor(async () => (await b.api('GET', '/api/v1/instances/keep-running')).body.status === 'running', 10000)
    expect((await b.api('GET', '/api/v1/instances/keep-stopped')).body.status).toBe('stopped')
  })

  test('instances stopped for being idle stay stopped after a restart; one started on demand comes back', async () => {
    const dir = tempDir()
    const a = await start(dir)
    await a.api('POST', '/api/v1/instances/idler?wait=ready', { backend_options: { model: 'x' }, idle_timeout: 0.005 })
    await a.api('POST', '/api/v1/instances/ondemand?wait=ready', { backend_options: { model: 'x' }, on_demand_start: true })
    await a.api('POST', '/api/v1/instances/ondemand/stop')
    const chat = await fetch(`${a.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...AUTH },
      body: JSON.stringify({ model: 'ondemand', messages: [] }),
    })
    expect(chat.status).toBe(200)
    await waitFor(async () => (await a.api('GET', '/api/v1/instances/idler')).body.status === 'stopped', 5000)
    expect(await a.stop('SIGTERM')).toBe(0)
    const b = await start(dir)
    await waitFor(async () => (await b.api('GET', '/api/v1/instances/ondemand')).body.status === 'running', 10000)
    expect((await b.api('GET', '/api/v1/instances/idler')).body.status).toBe('stopped')
  })

  test('after llamactl is SIGKILLed, the next start ends the old backends and resumes the instances', async () => {
    const dir = tempDir()
    const a = await start(dir)
    await a.api('POST', '/api/v1/instances/orphan?wait=ready', { backend_options: { model: 'x' } })
    const store = new Store(join(dir, 'llamactl.db'))
    const [rec] = store.backendProcesses()
    store.close()
    expect(rec).toBeDefined()
    await a.stop('SIGKILL')
    expect(isAlive(rec!.pid)).toBe(true) // the backend outlived llamactl

    const b = await start(dir)
    expect(processStartTime(rec!.pid)).toBeNull()
    expect(b.output()).toContain('ended 1 backend(s) left by an earlier run')
    await waitFor(async () => (await b.api('GET', '/api/v1/instances/orphan')).body.status === 'running', 10000)
  })

  test('a recorded pid that now belongs to another process is left alone', async () => {
    const dir = tempDir()
    const bystander = Bun.spawn(['sleep', '30'])
    try {
      const store = new Store(join(dir, 'llamactl.db'))
      store.recordBackendProcess({ instance: 'ghost', pid: bystander.pid, start_time: '1' })
      store.close()
      const b = await start(dir)
      expect(b.output()).not.toContain('ended')
      expect(isAlive(bystander.pid)).toBe(true)
      expect(bystander.exitCode).toBeNull()
    } finally {
      bystander.kill('SIGKILL')
    }
  })

  test('a bad config stops start-up with one line naming the key and the file', async () => {
    const dir = tempDir()
    writeFileSync(join(dir, 'llamactl.yaml'), 'instances:\n  port_range: "9000-8000"\n')
    const r = await runLlamactl(dir, [], { LLAMACTL_INSTANCE_PORT_RANGE: '' })
    expect(r.code).toBe(1)
    expect(r.stderr.trim().split('\n')).toHaveLength(1)
    expect(r.stderr).toContain("llamactl.yaml: key 'instances.port_range'")
  })

  test('a data folder that cannot be written stops start-up with one line saying why', async () => {
    const dir = tempDir()
    writeFileSync(join(dir, 'a-file'), '')
    const r = await runLlamactl(dir, ['--data-dir', join(dir, 'a-file', 'data')])
    expect(r.code).toBe(1)
    expect(r.stderr.trim().split('\n')).toHaveLength(1)
    expect(r.stderr).toContain(`llamactl: cannot write to ${join(dir, 'a-file', 'data')} (`)
    expect(r.stderr).toContain('choose another folder with --data-dir')
  })

  test('files it writes are 0600 and its folders 0700 whatever the umask and their mode; a data folder open to others is warned about', async () => {
    const dir = tempDir()
    const logs = join(dir, 'logs')
    mkdirSync(logs)
    const db = join(dir, 'llamactl.db')
    // what an older llamactl left, under umask 022
    new Store(db).close()
    for (const [p, m] of [[dir, 0o755], [logs, 0o755], [db, 0o644]] as const) chmodSync(p, m)
    const r = await start(dir, { command: ['/bin/sh', '-c', 'umask 022; exec "$@"', 'sh', BUN, MAIN] })
    expect((await r.api('POST', '/api/v1/instances/p?wait=ready', { backend_options: { model: 'x' } })).status).toBe(201)
    const mode = (p: string) => [p.slice(dir.length), (statSync(p).mode & 0o777).toString(8)]
    expect([dir, logs].map(mode)).toEqual([['', '700'], ['/logs', '700']])
    expect([db, `${db}-wal`, `${db}-shm`, join(logs, 'p.log')].map(mode)).toEqual([
      ['/llamactl.db', '600'], ['/llamactl.db-wal', '600'], ['/llamactl.db-shm', '600'], ['/logs/p.log', '600'],
    ])
    expect(r.output()).toContain(`llamactl: warning: the data folder ${dir} was open to other users (mode 0755)`)

    // a private folder: no warning
    await r.stop('SIGTERM')
    const again = await start(dir)
    expect(again.output()).not.toContain('warning')
  })

  test('a backend does not inherit llamactl\'s LLAMACTL_* variables (its management key)', async () => {
    const r = await start(tempDir())
    const res = await r.api('POST', '/api/v1/instances/env?wait=ready', { backend_options: { model: 'x' }, environment: { FAKE_PRINT_ENV: 'LLAMACTL_MANAGEMENT_KEYS' } })
    expect(res.status).toBe(201)
    const logs = (await r.api('GET', '/api/v1/instances/env/logs')).body as string
    expect(logs).toContain('env LLAMACTL_MANAGEMENT_KEYS=undefined')
  })

  test('--help, --version and unknown flags', async () => {
    const dir = tempDir()
    const help = await runLlamactl(dir, ['--help'])
    expect(help.code).toBe(0)
    expect(help.stdout).toContain('usage: llamactl')
    // Every setting's variable is listed with the key it sets; a flag's beside the flag.
    expect(help.stdout).toMatch(/^  LLAMACTL_MAX_RUNNING_INSTANCES +instances\.max_running_instances$/m)
    expect(help.stdout).toContain('--port PORT')
    expect(help.stdout).toContain('LLAMACTL_PORT')
    expect(help.stdout).toContain('LLAMACTL_CONFIG_PATH')
    const version = await runLlamactl(dir, ['--version'])
    expect(version.code).toBe(0)
    expect(version.stdout).toMatch(/^llamactl \d+\.\d+\.\d+/)
    const bad = await runLlamactl(dir, ['--frobnicate'])
    expect(bad.code).toBe(1)
    expect(bad.stderr).toContain('unknown argument "--frobnicate"')
    expect(bad.stderr).toContain('usage: llamactl')
  })

  test('the banner says which backends were found and their versions, and how to set one that was not', async () => {
    const found = await startLlamactl(tempDir(), { env: { LLAMACTL_VLLM_COMMAND: '/nonexistent/vllm' } })
    try {
      // The fake llama-server runs as `bun fake-llama-server.ts`: bun is the command found, the fake answers --version.
      expect(found.output()).toContain(`  llama-server: ${BUN}`)
      expect(found.output()).toMatch(/not found: mlx_lm\.server, \/nonexistent\/vllm, so their instances cannot start; set backends\.mlx\.command in the config or LLAMACTL_MLX_COMMAND to its path; backends\.vllm\.command in the config or LLAMACTL_VLLM_COMMAND to its path/)
      await waitFor(() => found.output().includes('llama-server version: '), 10000)
      expect(found.output()).toContain("llama-server version: 0.0.0-fake (build 1, commit fake), built with bun for the fast suite")
    } finally {
      await found.stop()
    }
  })

  test('the request log loses nothing on a clean stop: every request answered before SIGTERM has its line', async () => {
    const r = await startLlamactl(tempDir(), { env: { LLAMACTL_LOG_REQUESTS: 'true' } })
    const n = 50
    for (let i = 0; i < n; i++) expect((await fetch(`${r.url}/api/v1/version?i=${i}`, { headers: AUTH })).status).toBe(200)
    // At once: the lines are still in the buffer (it is written every 100 ms).
    expect(await r.stop('SIGTERM')).toBe(0)
    const count = () => r.output().split('\n').filter((l) => / info request method=GET path=\/api\/v1\/version /.test(l)).length
    for (const until = Date.now() + 3000; count() < n && Date.now() < until; ) await Bun.sleep(20) // the pipe read to its end
    expect(count()).toBe(n)
  })

  test('a port in use: exit 1 with how to choose another, and no instance left running', async () => {
    const dir = tempDir()
    // An instance that was running, so the next start resumes it before it binds the port.
    const model = `/models/port-in-use-${process.pid}-${Date.now()}`
    const first = await startLlamactl(dir)
    expect((await first.api('POST', '/api/v1/instances/resumed?wait=ready', { backend_options: { model } })).status).toBe(201)
    await first.stop()
    const running = () => Bun.spawnSync(['pgrep', '-f', model]).stdout.toString().trim()
    const holder = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data() {} } })
    try {
      const res = await runLlamactl(dir, ['--port', String(holder.port)])
      expect(running()).toBe('')
      expect(res.code).toBe(1)
      expect(res.stderr).toContain(`cannot listen on 127.0.0.1:${holder.port}: the port is in use`)
      expect(res.stderr).toContain('--port 8091')
      expect(res.stderr).not.toContain('    at ')
    } finally {
      holder.stop(true)
    }
  })

  test('--data-dir and --host flags are used', async () => {
    const dir = tempDir()
    const other = tempDir()
    // 127.0.0.2: a loopback address that is not the default, so the flag is seen to be used
    const r = await start(dir, { args: ['--data-dir', other, '--host', '127.0.0.2'] })
    expect(r.output()).toContain(`data: ${other}`)
    expect(r.url.startsWith('http://127.0.0.2:')).toBe(true)
    expect((await r.api('GET', '/api/v1/instances')).status).toBe(200)
    expect(existsSync(join(other, 'llamactl.db'))).toBe(true)
    expect(existsSync(join(dir, 'llamactl.db'))).toBe(false)
  })
})

describe('the management key on first start', () => {
  test('is generated, its place printed (never the key), and it opens the API', async () => {
    const dir = tempDir()
    const r = await start(dir, { env: { LLAMACTL_MANAGEMENT_KEYS: '' } })
    const file = join(dir, 'management.key')
    expect(r.output()).toContain(`management key: in ${file}`)
    const key = readFileSync(file, 'utf8').trim()
    expect(r.output()).not.toContain(key)
    expect((await fetch(`${r.url}/api/v1/instances`)).status).toBe(401)
    expect((await fetch(`${r.url}/api/v1/instances`, { headers: { authorization: `Bearer ${key}` } })).status).toBe(200)
    expect(r.output()).not.toContain(key)
  })
})
