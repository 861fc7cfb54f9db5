/**
 * A backend that stays alive but stops answering: frozen with SIGSTOP, once mid-stream and once
 * idle. The liveness probes (instances.health_check_interval, 1 s here) must take it for
 * crashed: the client's request fails within a bounded wait instead of hanging, the backend is
 * killed and restarted by its policy, the reason is in its error and log, and the instance then
 * serves again. Against the fake llama-server, and against the real one when LLAMA_SERVER_DIR
 * is set (scripts/test-faults.sh sets it).
 */
import { afterEach, describe, expect, test } from 'bun:test'
import { realEnv, realLlama } from '../e2e/real'
import { tempDir, waitFor } from '../helpers'
import { type Running, startLlamactl } from '../system/process'
import { AUTH_HEADER, metric, recordedBackends } from './util'

/** How long a client may wait for a frozen backend's request to fail: 3 probes of 1 s, and slack for a shared machine. */
const BOUND_MS = 20000

const started: Running[] = []
const frozen: number[] = []
afterEach(async () => {
  // A frozen backend takes no SIGTERM: whatever the test left stopped is ended here.
  for (const pid of frozen.splice(0)) {
    for (const sig of ['SIGCONT', 'SIGKILL'] as const) {
      try {
        process.kill(pid, sig)
      } catch {
        // already gone (the liveness check killed it)
      }
    }
  }
  for (const r of started.splice(0)) if (r.proc.exitCode === null) await r.stop('SIGTERM')
})

function freeze(dir: string, instance: string): number {
  const pid = recordedBackends(dir).get(instance)!
  expect(pid).toBeGreaterThan(0)
  frozen.push(pid)
  process.kill(pid, 'SIGSTOP')
  return pid
}

/** Reads what is left of a response body; resolves with the error that ended it (null: it ended cleanly), or 'still hanging' past the bound. */
async function rest(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<{ error: string | null; text: string }> {
  const decoder = new TextDecoder()
  let text = ''
  let timer: ReturnType<typeof setTimeout> | undefined
  const bound = new Promise<'bound'>((r) => (timer = setTimeout(() => r('bound'), BOUND_MS)))
  try {
    for (;;) {
      const got = await Promise.race([reader.read(), bound])
      if (got === 'bound') return { error: 'still hanging', text }
      if (got.done) return { error: null, text }
      text += decoder.decode(got.value, { stream: true })
    }
  } catch (e) {
    return { error: (e as Error).message, text }
  } finally {
    clearTimeout(timer)
  }
}

function chat(r: Running, model: string, body: Record<string, unknown>) {
  return fetch(`${r.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: AUTH_HEADER },
    body: JSON.stringify({ model, messages: [{ role: 'user', content: 'Tell me a long story' }], ...body }),
  })
}

/** Waits (bounded) for the restart that follows the kill; checks the reason shows while it is pending and in the log. */
async function comesBack(r: Running, instance: string, oldPid: number, dir: string, boundMs = 30000) {
  let sawError: string | null = null
  await waitFor(async () => {
    const v = (await r.api('GET', `/api/v1/instances/${instance}`)).body
    if (v.state === 'restarting') sawError = v.error
    return v.restarts === 1 && v.status === 'running'
  }, boundMs)
  expect(sawError ?? '').toContain('not answering: 3 health checks in a row failed')
  expect(recordedBackends(dir).get(instance)).not.toBe(oldPid)
  const logs = (await r.api('GET', `/api/v1/instances/${instance}/logs`)).body as string
  expect(logs).toContain('health checks in a row failed (none answered within 1 s) while no request of its received any bytes: killing it')
  const m = await (await fetch(`${r.url}/metrics`, { headers: { authorization: AUTH_HEADER } })).text()
  expect(metric(m, 'llamactl_instance_events_total', { instance, event: 'crash' })).toBe(1)
  expect(metric(m, 'llamactl_instance_events_total', { instance, event: 'restart' })).toBe(1)
  expect(metric(m, 'llamactl_requests_in_flight', { instance })).toBe(0)
}

const LIVENESS = { LLAMACTL_HEALTH_CHECK_INTERVAL: '1' }

describe('a backend frozen with SIGSTOP', () => {
  test('fake llama-server, mid-stream: the stream fails within the bound, the backend is restarted, and serves again', async () => {
    const dir = tempDir()
    const r = await startLlamactl(dir, { env: LIVENESS })
    started.push(r)
    const made = await r.api('POST', '/api/v1/instances/story?wait=ready', {
      backend_options: { model: 'x' },
      environment: { FAKE_TOKEN_DELAY_MS: '20' },
      // Long enough to see the reason in the error while the restart is pending.
      restart_delay: 2,
      max_restarts: 3,
    })
    expect(made.status).toBe(201)
    const res = await chat(r, 'story', { stream: true, max_tokens: 100000 })
    expect(res.status).toBe(200)
    const reader = res.body!.getReader()
    // A few events first, so the freeze lands mid-stream.
    let head = ''
    while ((head.match(/^data: /gm) ?? []).length < 5) {
      const { done, value } = await reader.read()
      if (done) throw new Error(`the stream ended before the freeze: ${head.slice(-300)}`)
      head += new TextDecoder().decode(value)
    }
    const pid = freeze(dir, 'story')
    const frozenAt = performance.now()
    const seen = await rest(reader)
    console.log(`[faults] story: the frozen stream failed ${(performance.now() - frozenAt).toFixed(0)} ms after SIGSTOP (${seen.error})`)
    expect(seen.error).not.toBe('still hanging')
    expect(seen.error).not.toBeNull() // cut, not a stream that looks complete
    expect(seen.text).not.toContain('[DONE]')
    await comesBack(r, 'story', pid, dir)
    const m = await (await fetch(`${r.url}/metrics`, { headers: { authorization: AUTH_HEADER } })).text()
    expect(metric(m, 'llamactl_requests_total', { instance: 'story', route: 'chat_completions', status: '502' })).toBe(1)
    const again = await chat(r, 'story', { stream: true, max_tokens: 5 })
    expect(await again.text()).toContain('[DONE]')
  })

  test('fake llama-server, idle: a request sent to it fails within the bound, the backend is restarted, and serves again', async () => {
    const dir = tempDir()
    const r = await startLlamactl(dir, { env: LIVENESS })
    started.push(r)
    const made = await r.api('POST', '/api/v1/instances/quiet?wait=ready', { backend_options: { model: 'x' }, restart_delay: 2, max_restarts: 3 })
    expect(made.status).toBe(201)
    const pid = freeze(dir, 'quiet')
    const frozenAt = performance.now()
    // The request is accepted by the frozen process's socket and never answered, until the kill.
    const res = await Promise.race([chat(r, 'quiet', { max_tokens: 3 }), Bun.sleep(BOUND_MS).then(() => null)])
    console.log(`[faults] quiet: a request to the idle frozen backend got ${res?.status} ${(performance.now() - frozenAt).toFixed(0)} ms after SIGSTOP`)
    expect(res).not.toBeNull()
    expect(res!.status).toBe(502)
    await comesBack(r, 'quiet', pid, dir)
    const ok = await chat(r, 'quiet', { max_tokens: 3 })
    expect(ok.status).toBe(200)
    expect((await ok.json()).model).toBe('quiet')
  })

  test.skipIf(!process.env.LLAMA_SERVER_DIR)('real llama-server, mid-stream: the stream fails within the bound and the instance comes back', async () => {
    const { model } = realLlama()
    const dir = tempDir()
    const r = await startLlamactl(dir, { env: { ...realEnv(), ...LIVENESS } })
    started.push(r)
    const made = await r.api('POST', '/api/v1/instances/tiny?wait=ready', {
      backend_options: { model, ctx_size: 4096, threads: 1, parallel: 1, context_shift: true },
      restart_delay: 2,
      max_restarts: 2,
    })
    expect(made.status).toBe(201)
    const res = await chat(r, 'tiny', { stream: true, max_tokens: 100000, ignore_eos: true })
    expect(res.status).toBe(200)
    const reader = res.body!.getReader()
    const first = await reader.read()
    expect(first.done).toBe(false)
    const pid = freeze(dir, 'tiny')
    const frozenAt = performance.now()
    const seen = await rest(reader)
    console.log(`[faults] tiny: the real llama-server's frozen stream failed ${(performance.now() - frozenAt).toFixed(0)} ms after SIGSTOP (${seen.error})`)
    expect(seen.error).not.toBe('still hanging')
    expect(seen.text).not.toContain('[DONE]')
    await comesBack(r, 'tiny', pid, dir, 60000)
    const short = await chat(r, 'tiny', { max_tokens: 4 })
    expect(short.status).toBe(200)
  }, 120000)
})
