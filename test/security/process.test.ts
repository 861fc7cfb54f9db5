/** The llamactl process itself (Bun.serve as main.ts sets it up): what a malformed request gets. */
import { afterEach, expect, test } from 'bun:test'
import { rmSync } from 'node:fs'
import { tempDir } from '../helpers'
import { type Running, startLlamactl } from '../system/process'
import { rawRequest, sendRaw } from './raw'

let run: Running | undefined
let dir = ''
afterEach(async () => {
  await run?.stop()
  run = undefined
  if (dir) rmSync(dir, { recursive: true, force: true })
})

test('requests with no Host or an unknown path get a short JSON error, never a debug page, and log one short line each', async () => {
  dir = tempDir()
  run = await startLlamactl(dir)
  const port = Number(new URL(run.url).port)
  const before = run.output().length
  const forms: [string, number][] = [
    [rawRequest('GET', '/nothing', [], '', 'HTTP/1.0'), 400],
    [rawRequest('GET', '/api/v1/instances', [], '', 'HTTP/1.0'), 400],
    [rawRequest('GET', '/metrics', [], '', 'HTTP/1.0'), 400],
    [rawRequest('GET', '/api/v1/instances', ['Host: a/b']), 400],
    // 'a' is a valid host name, but not one llamactl is served under
    [rawRequest('GET', '/xx/api/v1/instances', ['Host: a']), 403],
    [rawRequest('POST', '/api/v1/instances/x?wait=ready', ['Host: a'], '{"command_override":"/bin/sh"}'), 403],
    [rawRequest('GET', '/no/such/route', [`Host: 127.0.0.1:${port}`]), 404],
  ]
  for (let round = 0; round < 5; round++) {
    for (const [text, status] of forms) {
      const res = await sendRaw(port, text)
      expect([text.split('\r\n')[0], res.status]).toEqual([text.split('\r\n')[0], status])
      expect(res.headers['content-type']).toBe('application/json')
      expect(typeof JSON.parse(res.body).error).toBe('string')
      expect(res.body.length).toBeLessThan(300)
      expect(res.body).not.toContain(dir)
      expect(res.body).not.toContain(process.cwd())
    }
  }
  await Bun.sleep(100)
  const logged = run.output().length - before
  // one request line each (~100 bytes), not a stack
  expect(logged).toBeLessThan(forms.length * 5 * 200)
  expect(run.output()).not.toContain('    at ')
  const list = await run.api('GET', '/api/v1/instances')
  expect(list.body).toEqual([])
})
