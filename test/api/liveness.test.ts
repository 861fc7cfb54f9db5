import { afterEach, describe, expect, test } from 'bun:test'
import { rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { type Harness, harness, waitFor } from '../helpers'

let h: Harness
afterEach(async () => {
  await h?.close()
})

async function create(name: string, body: Record<string, unknown> = {}) {
  const res = await h.json('POST', `/api/v1/instances/${name}?wait=ready`, { backend_options: { model: 'x' }, ...body })
  expect(res.status).toBe(201)
  return res.body
}

const probesAnswered = (name: string) => h.manager.get(name).log.tail().filter((l) => l.includes('health probe answered')).length

describe('liveness of running backends', () => {
  test('running backends are probed, and the probes are not activity', async () => {
    h = await harness({ LLAMACTL_HEALTH_CHECK_INTERVAL: '1' })
    await create('idle', { environment: { FAKE_LOG_HEALTH: '1' } })
    const inst = h.manager.get('idle')
    const lastUsed = inst.lastUsed
    await waitFor(() => probesAnswered('idle') >= 2, 15000)
    expect([inst.lastUsed, inst.lastRequest, inst.restarts, inst.status]).toEqual([lastUsed, 0, 0, 'running'])
  })

  test('health checks that go unanswered while a stream flows kill nothing; once nothing flows, the backend is restarted', async () => {
    h = await harness({ LLAMACTL_HEALTH_CHECK_INTERVAL: '1' })
    const hang = join(h.dir, 'health-hangs')
    await create('busy', { environment: { FAKE_TOKEN_DELAY_MS: '250', FAKE_HEALTH_HANG_FILE: hang }, restart_delay: 0, max_restarts: 3 })
    const base = h.listen()
    const res = await fetch(`${base}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'busy', stream: true, max_tokens: 24, messages: [] }),
    })
    expect(res.status).toBe(200)
    writeFileSync(hang, '')
    // Six seconds of tokens, every probe unanswered: the stream still ends whole.
    const text = await res.text()
    expect(text.endsWith('data: [DONE]\n\n')).toBe(true)
    expect([h.manager.get('busy').restarts, h.manager.get('busy').status]).toEqual([0, 'running'])
    // Now idle, and /health still silent: killed as crashed, the reason in its error and log.
    // The error as the restart is scheduled (seen at the status change, before the restart clears it).
    let error: string | null = null
    const off = h.manager.onStatusChange((i) => {
      if (i.name === 'busy' && i.status === 'restarting') error = i.error
    })
    await waitFor(() => h.manager.get('busy').restarts === 1, 15000)
    off()
    expect(error ?? '').toStartWith('exited unexpectedly (not answering: 3 health checks in a row failed (none answered within 1 s) while no request of its received any bytes; killed); restart 1 in 0 s')
    expect(h.manager.get('busy').log.tail().some((l) => l.includes('while no request of its received any bytes: killing it'))).toBe(true)
    rmSync(hang)
    await waitFor(() => h.manager.get('busy').status === 'running', 15000)
    expect(h.manager.metrics.events.get(['busy', 'crash'])).toBe(1)
  })
})
