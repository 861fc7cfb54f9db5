/**
 * Property-based fuzzing of every route (fast-check): methods × paths (names with odd
 * characters, `..`, percent-encodings, very long ones), bodies (random JSON, not JSON, huge
 * numbers, deep nesting), headers (content types, lying content lengths, garbage credentials),
 * with authentication on and off. For every request:
 *   - no 5xx but the documented ones: 500 (a start that failed, a llama-server command that could
 *     not run), 502, 503, or whatever a backend itself answered through /v1 or /proxy; never
 *     llamactl's "internal error";
 *   - llamactl keeps answering;
 *   - a request llamactl rejected (a 4xx of its own) changed nothing stored: the instances as the
 *     API and the database show them, and the keys.
 * Then the same through a real socket with raw, malformed HTTP. FUZZ_RUNS sets the runs per case.
 */
import { afterAll, beforeAll, describe, expect, spyOn, test } from 'bun:test'
import fc from 'fast-check'
import { Logger } from '../../src/log'
import { BUN, type Harness, harness, waitFor } from '../helpers'

const RUNS = Number(process.env.FUZZ_RUNS ?? 1000)
const KEY = 'fuzz-management-key-0123456789abcdef'
const MISSING = '/nonexistent/llamactl-fuzz-backend'
/** The one instance that really runs (the configured command is missing; this one overrides it). */
const RUNNING = { command_override: BUN, backend_options: { model: 'x' }, environment: { FAKE_TOKEN_DELAY_MS: '0' } }

// ---- generators

const oddChars = fc.constantFrom('..', '.', '%2e%2e', '%2E%2E/', '%2f', '%2F..%2F', '%00', '%', '%zz', '%25', ' ', '\t', '#', '?', '&', ';', '\\', '..\\..', '~', 'é', '日本', '😀', '\u0000', '\u202e', '*', '"', "'", '<script>', '{}', '[]')
const name = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('run', 'kept', 'nope') },
  { weight: 3, arbitrary: fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,20}$/) },
  { weight: 3, arbitrary: fc.array(fc.oneof(oddChars, fc.string({ maxLength: 5 })), { minLength: 1, maxLength: 5 }).map((p) => p.join('')) },
  { weight: 1, arbitrary: fc.string({ minLength: 60, maxLength: 70 }).map((s) => encodeURIComponent(s)) },
  { weight: 1, arbitrary: fc.integer({ min: 65, max: 20000 }).map((n) => 'a'.repeat(n)) },
)
const rest = fc.array(fc.oneof(name, fc.constantFrom('health', 'v1', 'models', 'chat', 'completions', '..', '%2e%2e', '', 'http:', '//evil.example', '@evil')), { maxLength: 4 }).map((p) => p.join('/'))
const query = fc.option(
  fc.oneof(
    fc.tuple(fc.constantFrom('lines', 'follow', 'x'), fc.oneof(fc.string({ maxLength: 10 }), fc.constantFrom('-1', '5', '1e9', 'true', '99999999999999999999'))).map(([k, v]) => `?${k}=${encodeURIComponent(v)}`),
    fc.string({ maxLength: 20 }).map((s) => `?${s}`),
  ),
  { nil: '' },
)
const path = fc.tuple(
  fc.oneof(
    fc.constant('/api/v1/instances'),
    name.map((n) => `/api/v1/instances/${n}`),
    fc.tuple(name, fc.constantFrom('start', 'stop', 'restart', 'logs', 'proxy', 'nope')).map(([n, op]) => `/api/v1/instances/${n}/${op}`),
    fc.tuple(name, rest).map(([n, r]) => `/api/v1/instances/${n}/proxy/${r}`),
    fc.constant('/api/v1/auth/keys'),
    fc.oneof(fc.constantFrom('1', '2', '0', '-1', '1e3', '999999999999999999'), name).map((id) => `/api/v1/auth/keys/${id}`),
    fc.constantFrom('llama-cpp', 'mlx', 'vllm', 'nope').map((b) => `/api/v1/backends/${b}/parse-command`),
    fc.constantFrom('/api/v1/server/help', '/api/v1/server/version', '/api/v1/server/devices', '/api/v1/version', '/api/v1', '/api/v1/'),
    fc.constantFrom('/v1/models', '/v1', '/v1/'),
    name.map((n) => `/v1/models/${n}`),
    rest.map((r) => `/v1/${r}`),
    fc.constantFrom('/metrics', '/ui/login', '/ui/logout', '/', '/ui', '/swagger'),
    fc.webPath(),
  ),
  query,
).map(([p, q]) => p + q)

const optionValue = fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constantFrom(-1, 0, 1e308, -1e308, 2 ** 53 + 1, 0.5, '', 'x'))
/** Create/update bodies that are often close to valid (so validation is pushed, and some pass). */
const optionsBody = fc
  .record(
    {
      backend_type: fc.oneof(fc.constantFrom('llama_cpp', 'mlx_lm', 'vllm', 'nope'), optionValue),
      backend_options: fc.oneof(
        fc.dictionary(fc.constantFrom('model', 'ctx_size', 'gpu_layers', 'port', 'host', 'extra_args', 'n_gpu_layers', 'nope', 'api_key'), optionValue, { maxKeys: 3 }),
        optionValue,
      ),
      command_override: fc.constantFrom(MISSING, '', 42),
      auto_restart: fc.oneof(fc.boolean(), optionValue),
      max_restarts: fc.oneof(fc.integer({ min: -3, max: 5 }), optionValue),
      restart_delay: optionValue,
      on_demand_start: fc.oneof(fc.boolean(), optionValue),
      idle_timeout: optionValue,
      environment: fc.oneof(fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 }), { maxKeys: 3 }), optionValue),
      typo_field: optionValue,
    },
    { requiredKeys: [] },
  )
  // Only a command that is missing may run: the fuzzer must not start arbitrary programs.
  .map((b) => ({ ...b, command_override: typeof b.command_override === 'string' && b.command_override ? MISSING : b.command_override }))
/** Valid options (the start then fails at once: the command is missing), so creates and updates get through. */
const validBody = fc
  .record(
    {
      backend_options: fc.constantFrom({ model: 'x' }, { model: '/m.gguf', ctx_size: 512 }, {}),
      environment: fc.dictionary(fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,8}$/), fc.string({ maxLength: 20 }), { maxKeys: 2 }),
      restart_delay: fc.integer({ min: 0, max: 10 }),
      on_demand_start: fc.boolean(),
      idle_timeout: fc.double({ min: 0, max: 60, noNaN: true }),
    },
    { requiredKeys: [] },
  )
  .map((b) => JSON.stringify({ ...b, command_override: MISSING }))
const deep = fc.integer({ min: 100, max: 100000 }).chain((n) => fc.constantFrom('['.repeat(n), `${'['.repeat(n)}${']'.repeat(n)}`, `{"model":${'['.repeat(n)}`, `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`))
const body = fc.oneof(
  { weight: 2, arbitrary: fc.constant(undefined) },
  { weight: 3, arbitrary: optionsBody.map((b) => JSON.stringify(b)) },
  { weight: 2, arbitrary: validBody },
  { weight: 2, arbitrary: fc.json({ maxDepth: 3 }) },
  { weight: 2, arbitrary: fc.tuple(fc.constantFrom('run', 'kept', 'nope', 'run/inner', '', '/'), fc.dictionary(fc.string({ maxLength: 6 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 })).map(([model, extra]) => JSON.stringify({ ...extra, model })) },
  { weight: 1, arbitrary: fc.record({ name: fc.oneof(fc.string({ maxLength: 120 }), optionValue), expires_at: optionValue, instances: fc.oneof(fc.array(name, { maxLength: 3 }), optionValue) }, { requiredKeys: [] }).map((b) => JSON.stringify(b)) },
  { weight: 1, arbitrary: fc.record({ command: fc.oneof(fc.string({ maxLength: 60 }), optionValue) }).map((b) => JSON.stringify(b)) },
  { weight: 1, arbitrary: fc.string({ maxLength: 200 }) },
  { weight: 1, arbitrary: fc.constantFrom('1e999', '123456789012345678901234567890', '-0', 'null', 'true', '"x"', '[]', '{', '{"model":}', '{"model":"run",}', '\u0000', '\ufeff{}', 'key=abc&key=def') },
  { weight: 1, arbitrary: deep },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 300 }) },
)
const headerValue = fc.oneof(fc.string({ maxLength: 40 }), fc.constantFrom('', ' ', 'null', '-1', '0', '99999999999999999999', 'abc')).map((s) => s.replace(/[^\x20-\x7e]/g, '?'))
const headers = fc.record(
  {
    'content-type': fc.oneof(fc.constantFrom('application/json', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/json; charset=latin1'), headerValue),
    'content-length': fc.oneof(fc.constantFrom('0', '1', '-1', '99999999999', 'abc', '1e3'), headerValue),
    authorization: fc.oneof(fc.constant(`Bearer ${KEY}`), fc.constant(`bearer  ${KEY} `), headerValue.map((v) => `Bearer ${v}`), headerValue, fc.constant('Basic Zm9vOmJhcg==')),
    cookie: headerValue.map((v) => `llamactl_session=${v}`),
    origin: fc.oneof(fc.constantFrom('http://localhost', 'http://evil.example', 'null'), headerValue),
    'x-csrf-token': headerValue,
    'access-control-request-method': fc.constantFrom('POST', 'DELETE', 'X'),
    connection: fc.constantFrom('close', 'keep-alive, x-secret', 'upgrade'),
    'x-secret': headerValue,
  },
  { requiredKeys: [] },
)
const method = fc.oneof({ weight: 8, arbitrary: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE') }, { weight: 1, arbitrary: fc.constantFrom('PATCH', 'OPTIONS', 'HEAD', 'PROPFIND', 'FOO') })

// ---- the property

/** Reads at most 64 KiB or 2 s of a response; streams are cancelled after that. */
async function readSome(res: Response): Promise<string> {
  if (!res.body) return ''
  const reader = res.body.getReader()
  const chunks: Uint8Array[] = []
  let size = 0
  const deadline = Date.now() + 2000
  try {
    while (size < 65536 && Date.now() < deadline) {
      const next = await Promise.race([reader.read(), Bun.sleep(deadline - Date.now()).then(() => null)])
      if (!next || next.done) break
      chunks.push(next.value)
      size += next.value.byteLength
    }
  } finally {
    await reader.cancel().catch(() => {})
  }
  return Buffer.concat(chunks).toString('utf8')
}

/** llamactl's own error answers are {"error": string}; a backend's (through /v1 or /proxy) are not. */
function llamactlError(text: string): string | null {
  try {
    const v = JSON.parse(text)
    return v && typeof v === 'object' && Object.keys(v).length === 1 && typeof v.error === 'string' ? v.error : null
  } catch {
    return null
  }
}

/** fast-check's report, with the counterexample cut short (a generated 70 KB path would flood the log). */
function shortReport<T>(details: fc.RunDetails<T>) {
  if (!details.failed) return
  const example = JSON.stringify(details.counterexample, (_, v) => (typeof v === 'string' && v.length > 300 ? `${v.slice(0, 300)}…(${v.length} chars)` : v))
  const cause = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance)
  throw new Error(`property failed after ${details.numRuns} runs (seed ${details.seed}, path "${details.counterexamplePath}"):\n${example?.slice(0, 3000)}\n${cause.slice(0, 3000)}`)
}

const DOCUMENTED_500 = /failed to start|could not be started|start of .* was cancelled|cannot run|cannot save the change/

function fuzzSuite(auth: boolean) {
  let h: Harness
  const authHeader = { authorization: `Bearer ${KEY}` }
  const stats = new Map<number, number>()

  beforeAll(async () => {
    h = await harness({
      LLAMACTL_LLAMACPP_COMMAND: MISSING,
      LLAMACTL_MAX_INSTANCES: '30',
      LLAMACTL_MAX_BODY_SIZE: '65536',
      LLAMACTL_MAX_INFERENCE_BODY_SIZE: '262144',
      LLAMACTL_ALLOWED_ORIGINS: 'http://localhost',
      LLAMACTL_ON_DEMAND_START_TIMEOUT: '5',
      ...(auth
        ? { LLAMACTL_REQUIRE_MANAGEMENT_AUTH: 'true', LLAMACTL_REQUIRE_INFERENCE_AUTH: 'true', LLAMACTL_MANAGEMENT_KEYS: KEY, LLAMACTL_METRICS_PUBLIC: 'false' }
        : {}),
    })
  })
  afterAll(async () => {
    console.log(`[fuzz] auth ${auth ? 'on' : 'off'}: statuses ${JSON.stringify(Object.fromEntries([...stats].sort((a, b) => a[0] - b[0])))}`)
    await h.close()
  })

  const call = (method: string, path: string, body?: unknown) =>
    h.app.handle(
      new Request(`http://localhost${path}`, {
        method,
        headers: body === undefined ? authHeader : { ...authHeader, 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      }),
    )

  /** The instance that runs, and one that is kept failed, exist as they should before each run. */
  async function ensureFixtures() {
    const run = h.manager.find('run')
    if (!run) await (await call('POST', '/api/v1/instances/run?wait=ready', RUNNING)).arrayBuffer()
    else if (run.status !== 'running' || run.options.command_override !== BUN) await (await call('PUT', '/api/v1/instances/run?wait=ready', RUNNING)).arrayBuffer()
    if (h.manager.find('run')?.status === 'stopped') await (await call('POST', '/api/v1/instances/run/start?wait=ready')).arrayBuffer()
    if (!h.manager.find('kept')) await (await call('POST', '/api/v1/instances/kept?wait=ready', { command_override: MISSING })).arrayBuffer()
    if (h.store.listKeys().length === 0) await (await call('POST', '/api/v1/auth/keys', { name: 'k' })).arrayBuffer()
    // Room for the fuzzer's own creates under max_instances.
    const extra = h.manager.list().filter((i) => i.name !== 'run' && i.name !== 'kept')
    if (extra.length > 20) for (const i of extra.slice(0, 10)) await (await call('DELETE', `/api/v1/instances/${i.name}`)).arrayBuffer()
  }

  async function snapshot() {
    const list = (await (await call('GET', '/api/v1/instances')).json()) as { name: string; status: string; options: unknown }[]
    return {
      api: list.map((i) => [i.name, i.status, i.options]),
      rows: h.store.listInstances(),
      keys: h.store.listKeys(),
    }
  }

  test(`${RUNS} random requests: only documented 5xx, still answering, rejected requests change nothing`, async () => {
    await ensureFixtures()
    expect(h.manager.get('run').status).toBe('running')
    await fc.assert(
      fc.asyncProperty(method, path, body, headers, async (m, p, b, hs) => {
        await ensureFixtures()
        const before = await snapshot()
        let request: Request
        try {
          request = new Request(`http://localhost${p}`, {
            method: m,
            headers: hs,
            body: m === 'GET' || m === 'HEAD' ? undefined : (b as BodyInit | undefined),
          })
        } catch {
          return // not a request any client could send (a URL or header the Fetch API refuses)
        }
        const res = await h.app.handle(request)
        const text = await readSome(res)
        stats.set(res.status, (stats.get(res.status) ?? 0) + 1)
        const own = llamactlError(text)
        const where = `${m} ${p.slice(0, 200)} → ${res.status} ${text.slice(0, 300)}`
        expect(text, where).not.toContain('internal error')
        if (res.status >= 500) {
          expect([500, 502, 503], where).toContain(res.status)
          // A 500 of llamactl's own is a start that failed or a command that could not run.
          if (res.status === 500 && own !== null) expect(own, where).toMatch(DOCUMENTED_500)
        }
        if (res.status >= 400 && res.status < 500 && own !== null) {
          const after = await snapshot()
          expect(after, `a rejected ${where} changed what is stored`).toEqual(before)
        }
        const alive = await call('GET', '/api/v1/version')
        expect(alive.status).toBe(200)
        await alive.arrayBuffer()
      }),
      { numRuns: RUNS, endOnFailure: true, asyncReporter: async (d) => shortReport(d) },
    )
  }, 120000)

  test('raw, malformed HTTP on a real socket: an answer or a closed connection, never a 5xx or an internal error, and the server answers after', async () => {
    const base = new URL(h.listen())
    const internalErrors: string[] = []
    const consoleError = spyOn(console, 'error').mockImplementation((...args: unknown[]) => {
      if (args.some((a) => String(a).includes('internal error'))) internalErrors.push(args.map(String).join(' ').slice(0, 300))
    })
    const line = fc.oneof(
      fc.tuple(method, path).map(([m, p]) => `${m} ${p} HTTP/1.1`),
      fc.constantFrom('GET / HTTP/9.9', 'GET', '', 'GET /api/v1/instances HTTP/1.1 extra', 'G\u0000ET / HTTP/1.1', `GET /${'a'.repeat(70000)} HTTP/1.1`),
      fc.string({ maxLength: 60 }),
    )
    const rawHeader = fc.oneof(
      fc.tuple(fc.constantFrom('Content-Length', 'content-length', 'Transfer-Encoding', 'Authorization', 'Host', 'Content-Type', 'X'), fc.oneof(headerValue, fc.constantFrom('chunked', '5', '-1', '1, 2', `Bearer ${KEY}`))).map(([k, v]) => `${k}: ${v}`),
      fc.string({ maxLength: 40 }).map((s) => s.replace(/[\r\n]/g, '')),
      fc.constant(`X-Big: ${'b'.repeat(20000)}`),
    )
    await fc.assert(
      fc.asyncProperty(line, fc.array(rawHeader, { maxLength: 5 }), fc.string({ maxLength: 100 }), async (l, hs, payload) => {
        const raw = `${l}\r\nHost: ${base.host}\r\n${hs.map((x) => `${x}\r\n`).join('')}\r\n${payload}`
        // The client sends its bytes and shuts its side: a request that promised more body than
        // it sent ends there, and the server must answer or close. Waiting longer is a hang.
        let timedOut = false
        const answer = await new Promise<string>((resolve) => {
          let got = ''
          const done = () => resolve(got)
          const timer = setTimeout(() => {
            timedOut = true
            socket.then((s) => s.end())
            done()
          }, 10000)
          const socket = Bun.connect({
            hostname: base.hostname,
            port: Number(base.port),
            socket: {
              open(s) {
                s.write(raw)
                s.shutdown()
              },
              data(s, d) {
                got += d.toString('latin1')
                // One answer is enough.
                if (/\r\n\r\n/.test(got)) {
                  clearTimeout(timer)
                  s.end()
                  done()
                }
              },
              close() {
                clearTimeout(timer)
                done()
              },
              error() {
                clearTimeout(timer)
                done()
              },
            },
          })
        })
        expect(timedOut, `${JSON.stringify(raw.slice(0, 200))}: no answer and no close within 10 s`).toBe(false)
        // 0: closed without an answer (Bun does so for a method it does not know, or a cut body).
        const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(answer)?.[1] ?? 0)
        stats.set(status, (stats.get(status) ?? 0) + 1)
        // 505: Bun's HTTP parser, for a version that is not HTTP/1.x.
        if (status >= 500) expect([500, 502, 503, 505], `${JSON.stringify(raw.slice(0, 200))} → ${answer.slice(0, 300)}`).toContain(status)
        const res = await fetch(`${base.origin}/api/v1/version`, { headers: authHeader })
        expect(res.status).toBe(200)
        await res.arrayBuffer()
      }),
      { numRuns: Math.ceil(RUNS / 4), endOnFailure: true, asyncReporter: async (d) => shortReport(d) },
    ).finally(() => consoleError.mockRestore())
    expect(internalErrors).toEqual([])
  }, 120000)
}

describe('found by fuzzing', () => {
  test('a malformed percent-encoding in the path is 400 on every route, not a null name (500)', async () => {
    const h = await harness({ LLAMACTL_LLAMACPP_COMMAND: MISSING })
    try {
      for (const [m, p] of [
        ['POST', '/api/v1/instances/a%zz'],
        ['PUT', '/api/v1/instances/a%zz'],
        ['GET', '/api/v1/instances/a%'],
        ['DELETE', '/api/v1/auth/keys/1%n'],
        ['GET', '/v1/models/%C3%28'],
        ['GET', '/api/v1/instances/a/proxy/%zz'],
      ] as const) {
        const res = await h.json(m, p, m === 'GET' || m === 'DELETE' ? undefined : {})
        expect({ p, status: res.status }).toEqual({ p, status: 400 })
        expect(res.body.error).toContain('malformed percent-encoding')
      }
      expect(h.store.listInstances()).toEqual([])
      // Well-formed encodings still reach the handlers.
      expect((await h.json('GET', '/api/v1/instances/a%2Db')).body.error).toBe('instance "a-b" not found')
    } finally {
      await h.close()
    }
  })
})

describe('found by fuzzing, too', () => {
  test('a key expiry too large for the database is 400, not 500', async () => {
    const h = await harness()
    try {
      const res = await h.request('POST', '/api/v1/auth/keys', '{"name":"k","expires_at":1e308}', { 'content-type': 'application/json' })
      expect(res.status).toBe(400)
      expect(((await res.json()) as { error: string }).error).toContain('expires_at')
      expect(h.store.listKeys()).toEqual([])
    } finally {
      await h.close()
    }
  })
})

describe('found by fuzzing, a third', () => {
  test('a client that closes the connection before its whole body is there is no internal error: logged as 499, nothing made', async () => {
    const lines: string[] = []
    const logger = new Logger({ format: 'json', level: 'info' }, (t) => lines.push(...t.trim().split('\n')))
    const h = await harness({ LLAMACTL_LLAMACPP_COMMAND: MISSING }, logger)
    const internal = spyOn(console, 'error')
    try {
      const base = new URL(h.listen())
      for (const [path, type] of [['/api/v1/instances/cut', 'application/json'], ['/v1/chat/completions', 'application/json'], ['/ui/login', 'application/x-www-form-urlencoded']]) {
        const socket = await Bun.connect({ hostname: base.hostname, port: Number(base.port), socket: { data() {} } })
        socket.write(`POST ${path} HTTP/1.1\r\nHost: ${base.host}\r\nContent-Type: ${type}\r\nContent-Length: 100\r\n\r\n{"model":`)
        socket.end()
        await waitFor(() => {
          logger.flush()
          return lines.some((l) => JSON.parse(l).path === path)
        })
        expect(lines.map((l) => JSON.parse(l)).find((e) => e.path === path)).toMatchObject({ method: 'POST', status: 499 })
      }
      expect(internal.mock.calls.filter((c) => c.some((a) => String(a).includes('internal error')))).toEqual([])
      expect(h.store.listInstances()).toEqual([])
    } finally {
      internal.mockRestore()
      await h.close()
    }
  })
})

describe('fuzzing every route, authentication on', () => fuzzSuite(true))
describe('fuzzing every route, authentication off', () => fuzzSuite(false))
