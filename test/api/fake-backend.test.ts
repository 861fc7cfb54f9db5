import { afterEach, describe, expect, test } from 'bun:test'
import { BUN, FAKE_SERVER } from '../helpers'

// The fast suite's fake llama-server on its own (test/e2e/tokens.real.ts holds it to the real
// server's answers): like llama-server it is not ready at once.
let proc: ReturnType<typeof Bun.spawn> | null = null
afterEach(async () => {
  proc?.kill('SIGKILL')
  await proc?.exited
  proc = null
})

/** An ephemeral loopback port the kernel just handed out (and we let go of). */
function freePort(): number {
  const s = Bun.serve({ hostname: '127.0.0.1', port: 0, fetch: () => new Response('') })
  const port = s.port!
  s.stop(true)
  return port
}

async function start(env: Record<string, string>, model = '/m/tiny.gguf'): Promise<string> {
  const port = freePort()
  proc = Bun.spawn([BUN, FAKE_SERVER, '--host', '127.0.0.1', '--port', String(port), '-m', model], { env: { ...process.env, ...env }, stdout: 'ignore', stderr: 'ignore' })
  const base = `http://127.0.0.1:${port}`
  // bounded: until the socket answers at all
  for (let i = 0; i < 500; i++) {
    const ok = await fetch(`${base}/health`).then(() => true, () => false)
    if (ok) return base
    await Bun.sleep(10)
  }
  throw new Error('the fake never listened')
}

describe('fake llama-server', () => {
  test('while loading (FAKE_LOAD_MS) /health and every route answer 503 "Loading model", as llama-server does', async () => {
    const base = await start({ FAKE_LOAD_MS: '600000' })
    for (const [method, path] of [['GET', '/health'], ['GET', '/v1/models'], ['POST', '/v1/chat/completions']] as const) {
      const res = await fetch(base + path, { method, body: method === 'POST' ? '{"model":"x"}' : undefined })
      expect(res.status).toBe(503)
      expect(await res.json()).toEqual({ error: { message: 'Loading model', type: 'unavailable_error', code: 503 } })
    }
  })

  test('then ready: /health 200', async () => {
    const base = await start({ FAKE_LOAD_MS: '50' })
    let status = 0
    for (let i = 0; i < 500 && status !== 200; i++) {
      status = (await fetch(`${base}/health`)).status
      if (status !== 200) {
        expect(status).toBe(503)
        await Bun.sleep(10)
      }
    }
    expect(status).toBe(200)
    expect(await (await fetch(`${base}/health`)).json()).toEqual({ status: 'ok' })
  })

  test('the response model is its alias, else its model path, whatever the request says', async () => {
    for (const [args, name] of [[[], '/m/tiny.gguf'], [['-a', 'nick']], [['--alias=nick']]] as const) {
      const port = freePort()
      proc = Bun.spawn([BUN, FAKE_SERVER, '--host', '127.0.0.1', '--port', String(port), '-m', '/m/tiny.gguf', ...args], { env: { ...process.env, FAKE_LOAD_MS: '0' }, stdout: 'ignore', stderr: 'ignore' })
      let res: Response | null = null
      for (let i = 0; i < 500 && !res; i++) {
        res = await fetch(`http://127.0.0.1:${port}/v1/chat/completions`, { method: 'POST', body: '{"model":"asked-for","max_tokens":1}' }).catch(() => null)
        if (!res) await Bun.sleep(10)
      }
      expect(res!.status).toBe(200)
      expect(((await res!.json()) as { model: string }).model).toBe(name ?? 'nick')
      proc.kill('SIGKILL')
      await proc.exited
    }
  })
})
