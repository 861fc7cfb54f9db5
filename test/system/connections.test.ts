/**
 * Idle keep-alive connections are bounded: past server.max_open_files llamactl closes the idle
 * ones (requests in flight are untouched). llamactl runs as a process and the clients in
 * another, so file descriptors are counted for llamactl alone.
 */
import { afterEach, describe, expect, test } from 'bun:test'
import { readdirSync } from 'node:fs'
import { resolve } from 'node:path'
import type { Subprocess } from 'bun'
import { BUN, tempDir, waitFor } from '../helpers'
import { AUTH, type Running, startLlamactl } from './process'

const CLIENTS = resolve(import.meta.dir, '../fixtures/idle-clients.ts')
const started: Running[] = []
const clients: Subprocess[] = []
afterEach(async () => {
  for (const c of clients.splice(0)) {
    c.kill('SIGKILL')
    await c.exited
  }
  for (const r of started.splice(0)) if (r.proc.exitCode === null) await r.stop('SIGTERM')
})

const fds = (pid: number) => readdirSync(`/proc/${pid}/fd`).length

/** Runs idle-clients.ts against `url`; `status()` is its last line as numbers. */
function idleClients(url: string, count: number) {
  const port = new URL(url).port
  const proc = Bun.spawn([BUN, CLIENTS, port, String(count), '/api/v1/version', AUTH.authorization, '60000'], { stdin: 'pipe', stdout: 'pipe', stderr: 'inherit' })
  clients.push(proc)
  let out = ''
  void (async () => {
    for await (const c of proc.stdout) out += new TextDecoder().decode(c)
  })()
  return {
    status() {
      const m = [...out.matchAll(/open (\d+) answered (\d+) closed (\d+)\n/g)].at(-1)
      return m ? { open: Number(m[1]), answered: Number(m[2]), closed: Number(m[3]) } : { open: 0, answered: 0, closed: 0 }
    },
  }
}

describe('idle keep-alive connections', () => {
  test('past server.max_open_files the idle ones are closed, a stream in flight is not, and llamactl keeps serving', async () => {
    const dir = tempDir()
    const ll = await startLlamactl(dir, { env: { LLAMACTL_MAX_OPEN_FILES: '150' } })
    started.push(ll)
    expect((await ll.api('POST', '/api/v1/instances/s?wait=ready', { backend_options: { model: 'x' }, environment: { FAKE_TOKEN_DELAY_MS: '100' } })).status).toBe(201)
    const base = fds(ll.proc.pid)
    expect(base).toBeLessThan(100)

    // A stream of 60 tokens, 100 ms apart, in flight through the whole flood: its first event
    // has arrived before the flood begins.
    const res = await fetch(`${ll.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...AUTH },
      body: JSON.stringify({ model: 's', stream: true, max_tokens: 60, messages: [{ role: 'user', content: 'hi' }] }),
    })
    const reader = res.body!.getReader()
    let first = new TextDecoder().decode((await reader.read()).value)
    const stream = (async () => {
      for (;;) {
        const { done, value } = await reader.read()
        if (done) return first
        first += new TextDecoder().decode(value)
      }
    })()
    stream.catch(() => {}) // awaited below; a failure before then must not be reported twice

    // 600 keep-alive connections, each answered once and then idle (server.idle_timeout is 60 s).
    const flood = idleClients(ll.url, 600)
    await waitFor(() => flood.status().answered === 600, 20000)
    // The idle ones are closed once llamactl holds more than 150 files: the client sees its
    // connections closed, and llamactl's own count comes back under the bound.
    await waitFor(() => flood.status().closed >= 600 - 150, 15000)
    await waitFor(() => fds(ll.proc.pid) <= 150, 15000)
    // llamactl's log says so (its lines are flushed every 100 ms)
    await waitFor(() => /more than server.max_open_files \(150\): closed \d+ idle keep-alive connection/.test(ll.output()), 5000)

    // The stream was in flight, not idle: it ends whole.
    const text = await stream
    expect(text).toContain('tok59')
    expect(text).toContain('data: [DONE]')
    // Still serving.
    expect((await ll.api('GET', '/api/v1/instances/s')).status).toBe(200)

    // A second wave is bounded the same way.
    const again = idleClients(ll.url, 400)
    await waitFor(() => again.status().answered === 400, 20000)
    await waitFor(() => again.status().closed >= 400 - 150 && fds(ll.proc.pid) <= 150, 15000)
  })
})
