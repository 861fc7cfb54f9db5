/**
 * The original llamactl's web UI (lordmathis/llamactl, webui/ at its newest commit) against this
 * server: every call its src/lib/api.ts makes, and the one its AuthContext makes by itself, sent
 * as the UI sends it (a management key as Bearer, `Content-Type: application/json` on every
 * request, the browser's Origin on changes), answered with the fields, and types, that the UI's
 * types (src/types/*.ts) and the code reading them (contexts, healthService, the components) use.
 *
 * Each case is one of:
 * - covered: it must pass;
 * - expected-to-land: it needs work being done beside this (option fields, config, parse-command);
 *   it must fail, and for that reason only (`blockedBy`), and turns red the day it passes, to be
 *   marked covered;
 * - pending: its feature is a later piece of work; listed (as a todo) with the reason, not stubbed.
 *
 * The table is printed at the end with the count of calls covered.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { type Harness, harness, waitFor, fixtureModel } from '../helpers'
import { type FakeHub, fakeHub, tinyGguf } from '../fixtures/fake-hub'

const DEMO_MODEL = fixtureModel('demo')
const M_MODEL = fixtureModel('m')

const MGMT = 'ui-management-key-0123456789'

let h: Harness
let hub: FakeHub

// --- what the UI reads, as types -------------------------------------------------------------

type Kind = 'string' | 'number' | 'boolean' | 'null' | 'object' | 'array' | 'absent'
type Spec = Record<string, Kind[] | { oneOf: readonly unknown[] } | { object: Spec }>

function kindOf(v: unknown): Kind {
  if (v === undefined) return 'absent'
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'array'
  return typeof v as Kind
}

/** Every field of `spec` that `value` lacks or has with another type, as readable lines. */
function mismatches(value: unknown, spec: Spec, at = ''): string[] {
  if (kindOf(value) !== 'object') return [`${at || 'answer'}: expected an object, got ${kindOf(value)}`]
  const out: string[] = []
  for (const [field, want] of Object.entries(spec)) {
    const v = (value as Record<string, unknown>)[field]
    const where = `${at}${at ? '.' : ''}${field}`
    if (Array.isArray(want)) {
      if (!want.includes(kindOf(v))) out.push(`${where}: expected ${want.join(' | ')}, got ${kindOf(v)} ${JSON.stringify(v)?.slice(0, 60)}`)
    } else if ('oneOf' in want) {
      if (!want.oneOf.includes(v)) out.push(`${where}: expected one of ${want.oneOf.join(', ')}, got ${JSON.stringify(v)}`)
    } else {
      out.push(...mismatches(v, want.object, where))
    }
  }
  return out
}

function expectShape(value: unknown, spec: Spec) {
  expect(mismatches(value, spec)).toEqual([])
}

// webui/src/types/instance.ts: InstanceStatus, and what InstanceCard / InstanceDialog read of options.
const INSTANCE_STATUSES = ['running', 'stopped', 'failed', 'restarting', 'shutting_down'] as const
const INSTANCE: Spec = {
  id: ['number'],
  name: ['string'],
  status: { oneOf: INSTANCE_STATUSES },
  options: {
    object: {
      backend_type: { oneOf: ['llama_cpp', 'mlx_lm', 'vllm', undefined] },
      backend_options: ['object', 'absent'],
      docker_enabled: ['boolean', 'absent'],
      group: ['string', 'absent'],
      nodes: ['array', 'absent'],
      environment: ['object', 'absent'],
    },
  },
}
// webui/src/types/apiKey.ts
const API_KEY: Spec = {
  id: ['number'],
  name: ['string'],
  user_id: ['string'],
  permission_mode: { oneOf: ['allow_all', 'per_instance'] },
  expires_at: ['number', 'null'],
  created_at: ['number'],
  updated_at: ['number'],
  last_used_at: ['number', 'null'],
}
const CREATED_KEY: Spec = { ...API_KEY, key: ['string'] }
const KEY_PERMISSION: Spec = { instance_id: ['number'], instance_name: ['string'] }
// webui/src/lib/api.ts: NodeResponse
const NODE: Spec = { address: ['string'] }
// webui/src/types/config.ts, as hooks/useConfig.ts reads it
const BACKEND_SETTINGS: Spec = { command: ['string'], docker: { object: { enabled: ['boolean'], image: ['string'] } } }
const CONFIG: Spec = {
  instances: {
    object: {
      default_idle_timeout: ['number'],
      default_auto_restart: ['boolean'],
      default_max_restarts: ['number'],
      default_restart_delay: ['number'],
      default_on_demand_start: ['boolean'],
    },
  },
  backends: { object: { 'llama-cpp': { object: BACKEND_SETTINGS }, vllm: { object: BACKEND_SETTINGS }, mlx: { object: BACKEND_SETTINGS } } },
}
// webui/src/schemas/instanceOptions.ts: what a parse-command answer is merged into the form as.
const PARSED: Spec = { backend_type: { oneOf: ['llama_cpp', 'mlx_lm', 'vllm'] }, backend_options: ['object'] }

// webui/src/types/model.ts
const DOWNLOAD_JOB: Spec = {
  id: ['string'],
  repo: ['string'],
  tag: ['string'],
  status: { oneOf: ['queued', 'downloading', 'completed', 'failed', 'cancelled'] },
  progress: { object: { bytes_downloaded: ['number'], total_bytes: ['number'], current_file: ['string'] } },
  error: ['string', 'null'],
  created_at: ['number'],
  completed_at: ['number', 'null'],
}
const CACHED_MODEL: Spec = { node: ['string'], repo: ['string'], tag: ['string'], files: ['array'], size_bytes: ['number'] }
const MODEL_FILE: Spec = { name: ['string'], path: ['string'], size_bytes: ['number'], type: { oneOf: ['gguf', 'preset', 'mmproj'] } }
const UI_REPO = 'ui/demo-GGUF'

/** llamaCppModelsApi.startDownload as the UI calls it: `repo:tag` and a format; then the job's end. */
async function uiDownload(tag = 'Q4_K_M'): Promise<{ job_id: string; repo: string; tag: string }> {
  const started = (await apiCall('/models/download', { method: 'POST', body: { repo: `${UI_REPO}:${tag}`, format: 'gguf' } })).value as { job_id: string; repo: string; tag: string }
  await h.app.downloads.settled(started.job_id)
  return started
}

// --- the UI's fetch ------------------------------------------------------------------------------

interface Answer {
  status: number
  ok: boolean
  text: string
  /** What apiCall gives its caller: undefined for 204, the text for text calls, else the parsed JSON (a parse error throws). */
  value: unknown
}

/** webui/src/lib/api.ts apiCall: same headers, same reading of the answer; throws where the UI would. */
async function apiCall(endpoint: string, init: { method?: string; body?: unknown } = {}, responseType: 'json' | 'text' = 'json'): Promise<Answer> {
  const method = init.method ?? 'GET'
  const headers: Record<string, string> = { 'Content-Type': 'application/json', Authorization: `Bearer ${MGMT}` }
  // A browser sends its page's Origin with every change; the UI is served from this server's address.
  if (method !== 'GET') headers.Origin = 'http://localhost'
  const res = await h.app.handle(
    new Request(`http://localhost/api/v1${endpoint}`, { method, headers, body: init.body === undefined ? undefined : JSON.stringify(init.body) }),
  )
  const text = await res.text()
  if (res.status === 401) throw new Error(`${method} ${endpoint}: Authentication required`)
  if (!res.ok) throw new Error(`${method} ${endpoint}: HTTP ${res.status}: ${text}`)
  let value: unknown
  if (res.status === 204) value = undefined
  else if (responseType === 'text') value = text
  else if (res.headers.get('content-length') === '0') value = {}
  else value = JSON.parse(text)
  return { status: res.status, ok: res.ok, text, value }
}

const enc = encodeURIComponent

/** An instance made outside the UI's path (with ?wait=ready), for the cases that need one. */
async function ensureInstance(name: string, options: Record<string, unknown> = { backend_options: { model: 'x' } }) {
  if (!h.manager.find(name)) {
    const res = await h.request('POST', `/api/v1/instances/${enc(name)}?wait=ready`, options, { authorization: `Bearer ${MGMT}` })
    expect([name, res.status]).toEqual([name, 201])
  }
  return h.manager.get(name)
}

/** The status as GET /api/v1/instances/{name} answers it, until `until` says so (bounded). */
async function statusUntil(name: string, until: (s: string) => boolean): Promise<string> {
  let last = ''
  await waitFor(async () => until((last = ((await apiCall(`/instances/${enc(name)}`)).value as { status: string }).status)), 20_000, 5)
  return last
}

// api.ts Model: what ModelsDialog and InstanceCard read of a router's model.
const ROUTER_MODEL: Spec = {
  id: ['string'],
  object: ['string'],
  owned_by: ['string'],
  created: ['number'],
  status: { object: { value: { oneOf: ['loaded', 'loading', 'unloaded'] }, args: ['array'] } },
}
const ROUTER = 'ui-router'

/** A router-mode instance as the UI makes one: no model in its backend options, presets in preset_ini (its Preset tab). */
function routerInstance() {
  return ensureInstance(ROUTER, { backend_type: 'llama_cpp', backend_options: {}, preset_ini: '[alpha]\nctx-size = 256\n\n[beta]\nctx-size = 512\n' })
}

async function routerStatus(model: string): Promise<string> {
  const list = (await apiCall(`/llama-cpp/${enc(ROUTER)}/models`)).value as { data: { id: string; status: { value: string } }[] }
  return list.data.find((m) => m.id === model)!.status.value
}

/** The form the UI posts for a new llama.cpp instance: InstanceDialog's defaults from GET /config, cleaned by handleSave. */
const NEW_FORM = {
  auto_restart: true,
  max_restarts: 3,
  restart_delay: 5,
  on_demand_start: true,
  idle_timeout: 0,
  backend_type: 'llama_cpp',
  docker_enabled: false,
  backend_options: { model: DEMO_MODEL, ctx_size: 2048 },
}

/** InstanceDialog.handleSave: drops undefined, null, empty strings and empty arrays (inside backend_options too). */
function cleaned(form: Record<string, unknown>): Record<string, unknown> {
  const keep = (v: unknown) => v !== undefined && v !== null && !(typeof v === 'string' && v.trim() === '') && !(Array.isArray(v) && v.length === 0)
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(form)) {
    if (k === 'backend_options' && v && typeof v === 'object' && !Array.isArray(v)) {
      const inner = Object.fromEntries(Object.entries(v).filter(([, x]) => keep(x)))
      if (Object.keys(inner).length) out[k] = inner
    } else if (keep(v)) out[k] = v
  }
  return out
}

// --- the table -----------------------------------------------------------------------------------

type State = 'covered' | 'expected-to-land' | 'pending'
interface Case {
  /** The api.ts function (or context) making the call. */
  call: string
  request: string
  /** What this case shows, when the call has several. */
  what?: string
  state: State
  /** expected-to-land: the work it waits for; pending: why it is not here yet. */
  reason?: string
  /** expected-to-land: the error it must fail with today. */
  blockedBy?: RegExp
  run?: () => Promise<void>
}

const OPTION_FIELDS = 'instance option fields (nodes, group, preset_ini, extra_args as a map, the original\'s option names), done beside this in src/instances/options.ts'

const CASES: Case[] = [
  // AuthContext.tsx validateApiKey: its own fetch, not apiCall.
  {
    call: 'AuthContext.validateApiKey',
    request: 'GET /instances (Bearer)',
    state: 'covered',
    run: async () => {
      const ok = await h.app.handle(new Request('http://localhost/api/v1/instances', { headers: { Authorization: `Bearer ${MGMT}`, 'Content-Type': 'application/json' } }))
      expect(ok.ok).toBe(true)
      const wrong = await h.app.handle(new Request('http://localhost/api/v1/instances', { headers: { Authorization: 'Bearer not-the-key', 'Content-Type': 'application/json' } }))
      expect(wrong.ok).toBe(false)
    },
  },
  // serverApi
  ...(['help', 'version', 'devices'] as const).map((name) => ({
    call: `serverApi.get${name[0]!.toUpperCase()}${name.slice(1)}`,
    request: `GET /backends/llama-cpp/${name}`,
    state: 'covered' as const,
    run: async () => {
      const a = await apiCall(`/backends/llama-cpp/${name}`, {}, 'text')
      expect(typeof a.value).toBe('string')
      expect((a.value as string).length).toBeGreaterThan(0)
    },
  })),
  {
    call: 'serverApi.getConfig',
    request: 'GET /config',
    state: 'covered',
    run: async () => {
      const config = (await apiCall('/config')).value
      expectShape(config, CONFIG)
      // The UI shows what it gets; secrets are not among it.
      expect(JSON.stringify(config)).not.toContain(MGMT)
    },
  },
  // backendsApi
  ...([
    ['llamaCpp', 'llama-cpp', `llama-server -m ${DEMO_MODEL} -c 2048 --port 8081`, 'llama_cpp'],
    ['mlx', 'mlx', 'mlx_lm.server --model /models/demo --port 8081', 'mlx_lm'],
    ['vllm', 'vllm', 'vllm serve /models/demo --port 8081', 'vllm'],
  ] as const).map(([fn, route, command, type]) => ({
    call: `backendsApi.${fn}.parseCommand`,
    request: `POST /backends/${route}/parse-command`,
    state: 'covered' as const,
    run: async () => {
      const a = await apiCall(`/backends/${route}/parse-command`, { method: 'POST', body: { command } })
      expectShape(a.value, PARSED)
      expect((a.value as { backend_type: string }).backend_type).toBe(type)
    },
  })),
  {
    call: 'backendsApi.llamaCpp.parseCommand',
    request: 'POST /backends/llama-cpp/parse-command, then POST /instances/{name}',
    what: 'the answer merged into the form, an option edited, then created (ParseCommandDialog → InstanceDialog)',
    state: 'covered',
    reason: 'parse-command answering one options object, done beside this in src/backends',
    blockedBy: /HTTP 400: .*differ/,
    run: async () => {
      const parsed = (await apiCall('/backends/llama-cpp/parse-command', { method: 'POST', body: { command: `llama-server -m ${DEMO_MODEL} -c 2048` } })).value as Record<string, unknown>
      const form: Record<string, unknown> = { ...NEW_FORM, ...parsed }
      form.backend_options = { ...(form.backend_options as object), ctx_size: 4096 }
      const made = await apiCall('/instances/ui-parsed', { method: 'POST', body: cleaned(form) })
      expectShape(made.value, INSTANCE)
    },
  },
  // nodesApi
  {
    call: 'nodesApi.list',
    request: 'GET /nodes',
    state: 'covered',
    run: async () => {
      const nodes = (await apiCall('/nodes')).value as Record<string, unknown>
      expect(Object.keys(nodes).length).toBeGreaterThan(0)
      for (const n of Object.values(nodes)) expectShape(n, NODE)
    },
  },
  {
    call: 'nodesApi.get',
    request: 'GET /nodes/{name}',
    state: 'covered',
    run: async () => {
      const [name] = Object.keys((await apiCall('/nodes')).value as object)
      expectShape((await apiCall(`/nodes/${enc(name!)}`)).value, NODE)
    },
  },
  // instancesApi
  {
    call: 'instancesApi.list',
    request: 'GET /instances',
    state: 'covered',
    run: async () => {
      await ensureInstance('ui-list')
      const list = (await apiCall('/instances')).value as unknown[]
      expect(Array.isArray(list)).toBe(true)
      expect(list.length).toBeGreaterThan(0)
      for (const i of list) expectShape(i, INSTANCE)
      const ids = list.map((i) => (i as { id: number }).id)
      expect(new Set(ids).size).toBe(ids.length)
    },
  },
  {
    call: 'instancesApi.get',
    request: 'GET /instances/{name}',
    state: 'covered',
    run: async () => {
      const inst = await ensureInstance('ui-get')
      const a = (await apiCall('/instances/ui-get')).value
      expectShape(a, INSTANCE)
      expect(a).toMatchObject({ id: inst.id, name: 'ui-get', status: 'running' })
    },
  },
  {
    call: 'instancesApi.create',
    request: 'POST /instances/{name}',
    what: 'the new-instance form, without the node the UI adds from GET /nodes',
    state: 'covered',
    run: async () => {
      const a = await apiCall('/instances/ui-new', { method: 'POST', body: cleaned(NEW_FORM) })
      expect(a.status).toBe(201)
      expectShape(a.value, INSTANCE)
      // The answer comes when ready or after instances.start_wait: either is a status the UI shows.
      await statusUntil('ui-new', (s) => s === 'running')
    },
  },
  {
    call: 'instancesApi.create',
    request: 'POST /instances/{name}',
    what: 'as the UI sends it: with `nodes: [the first node of GET /nodes]` (GeneralTab fills it in)',
    state: 'covered',
    reason: OPTION_FIELDS,
    blockedBy: /HTTP 400: .*unknown field \W*nodes\W/,
    run: async () => {
      const [node] = Object.keys((await apiCall('/nodes')).value as object)
      const a = await apiCall('/instances/ui-node', { method: 'POST', body: cleaned({ ...NEW_FORM, nodes: [node] }) })
      expectShape(a.value, INSTANCE)
    },
  },
  {
    call: 'instancesApi.create',
    request: 'POST /instances/{name}',
    what: 'backend_options.extra_args as the map ExtraArgsInput makes ({"flag": "value"})',
    state: 'covered',
    reason: OPTION_FIELDS,
    blockedBy: /HTTP 400: .*extra_args/,
    run: async () => {
      const a = await apiCall('/instances/ui-extra', { method: 'POST', body: cleaned({ ...NEW_FORM, backend_options: { model: M_MODEL, extra_args: { 'new-flag': '1', 'bare-flag': '' } } }) })
      expectShape(a.value, INSTANCE)
    },
  },
  {
    call: 'instancesApi.create',
    request: 'POST /instances/{name}',
    what: 'group (InstanceSettingsCard)',
    state: 'covered',
    reason: OPTION_FIELDS,
    blockedBy: /HTTP 400: .*unknown field \W*group\W/,
    run: async () => {
      const a = await apiCall('/instances/ui-group', { method: 'POST', body: cleaned({ ...NEW_FORM, group: 'chat' }) })
      expect((a.value as { options: { group?: string } }).options.group).toBe('chat')
    },
  },
  {
    call: 'instancesApi.create',
    request: 'POST /instances/{name}',
    what: 'preset_ini (PresetTab)',
    state: 'covered',
    reason: OPTION_FIELDS,
    blockedBy: /HTTP 400: .*unknown field \W*preset_ini\W/,
    run: async () => {
      const a = await apiCall('/instances/ui-preset', { method: 'POST', body: cleaned({ ...NEW_FORM, preset_ini: '[model]\nctx-size = 2048\n' }) })
      expectShape(a.value, INSTANCE)
    },
  },
  {
    call: 'instancesApi.create',
    request: 'POST /instances/{name}',
    what: 'a llama-server option by the original\'s name (no_mmap, from the UI\'s llama.cpp schema)',
    state: 'covered',
    reason: OPTION_FIELDS,
    blockedBy: /HTTP 400: .*no_mmap/,
    run: async () => {
      const a = await apiCall('/instances/ui-names', { method: 'POST', body: cleaned({ ...NEW_FORM, backend_options: { model: M_MODEL, no_mmap: true } }) })
      expectShape(a.value, INSTANCE)
    },
  },
  {
    call: 'instancesApi.update',
    request: 'PUT /instances/{name}',
    what: 'the edit form: the instance\'s own options (from GET), one changed, cleaned by handleSave',
    state: 'covered',
    run: async () => {
      await ensureInstance('ui-edit')
      const current = (await apiCall('/instances/ui-edit')).value as { options: Record<string, unknown> }
      const form = { ...current.options, idle_timeout: 15 }
      const a = await apiCall('/instances/ui-edit', { method: 'PUT', body: cleaned(form) })
      expectShape(a.value, INSTANCE)
      expect((a.value as { options: { idle_timeout: number } }).options.idle_timeout).toBe(15)
    },
  },
  {
    call: 'instancesApi.delete',
    request: 'DELETE /instances/{name}',
    state: 'covered',
    run: async () => {
      await ensureInstance('ui-delete')
      const a = await apiCall('/instances/ui-delete', { method: 'DELETE' })
      expect([a.status, a.value]).toEqual([204, undefined])
      expect(h.manager.find('ui-delete')).toBeUndefined()
    },
  },
  {
    call: 'instancesApi.start',
    request: 'POST /instances/{name}/start',
    state: 'covered',
    run: async () => {
      await ensureInstance('ui-start')
      await apiCall('/instances/ui-start/stop', { method: 'POST' })
      const a = await apiCall('/instances/ui-start/start', { method: 'POST' })
      expectShape(a.value, INSTANCE)
      expect(['running', 'restarting']).toContain((a.value as { status: string }).status)
      await statusUntil('ui-start', (s) => s === 'running')
    },
  },
  {
    call: 'instancesApi.start',
    request: 'POST /instances/{name}/start, then GET /instances/{name} and /proxy/health (healthService)',
    what: 'a loading instance shows as loading: `restarting` (spinner), never `running` before /health passes',
    state: 'covered',
    run: async () => {
      // A backend that takes a minute to load: the create answers after instances.start_wait.
      const made = await apiCall('/instances/ui-slow', { method: 'POST', body: cleaned({ ...NEW_FORM, on_demand_start: false, backend_options: { model: 'load-60000' } }) })
      expect((made.value as { status: string }).status).toBe('restarting')
      expect(((await apiCall('/instances/ui-slow')).value as { status: string }).status).toBe('restarting')
      await expect(apiCall('/instances/ui-slow/proxy/health')).rejects.toThrow(/HTTP 503/)
    },
  },
  {
    call: 'instancesApi.stop',
    request: 'POST /instances/{name}/stop',
    state: 'covered',
    run: async () => {
      await ensureInstance('ui-stop')
      const a = await apiCall('/instances/ui-stop/stop', { method: 'POST' })
      expectShape(a.value, INSTANCE)
      expect((a.value as { status: string }).status).toBe('stopped')
    },
  },
  {
    call: 'instancesApi.stop',
    request: 'POST /instances/{name}/stop, GET /instances/{name} meanwhile',
    what: 'a stopping instance shows as `shutting_down`',
    state: 'covered',
    run: async () => {
      await ensureInstance('ui-stopping', { backend_options: { model: 'ignore-sigterm' } })
      const stopping = apiCall('/instances/ui-stopping/stop', { method: 'POST' })
      expect(await statusUntil('ui-stopping', (s) => s !== 'running')).toBe('shutting_down')
      expect(((await stopping).value as { status: string }).status).toBe('stopped')
    },
  },
  {
    call: 'instancesApi.restart',
    request: 'POST /instances/{name}/restart',
    state: 'covered',
    run: async () => {
      await ensureInstance('ui-restart')
      const a = await apiCall('/instances/ui-restart/restart', { method: 'POST' })
      expectShape(a.value, INSTANCE)
      expect(['running', 'restarting']).toContain((a.value as { status: string }).status)
      await statusUntil('ui-restart', (s) => s === 'running')
    },
  },
  {
    call: 'instancesApi.getLogs',
    request: 'GET /instances/{name}/logs?lines=100',
    state: 'covered',
    run: async () => {
      await ensureInstance('ui-logs')
      const a = await apiCall('/instances/ui-logs/logs?lines=100', {}, 'text')
      expect(a.value as string).toContain('[llamactl]')
    },
  },
  {
    call: 'instancesApi.getHealth',
    request: 'GET /instances/{name}/proxy/health',
    state: 'covered',
    run: async () => {
      await ensureInstance('ui-health')
      const a = await apiCall('/instances/ui-health/proxy/health')
      expect(kindOf(a.value)).toBe('object')
    },
  },
  // apiKeysApi
  {
    call: 'apiKeysApi.create',
    request: 'POST /auth/keys',
    what: 'per_instance with instance_ids, and allow_all with an empty list, as CreateApiKeyDialog sends them',
    state: 'covered',
    run: async () => {
      const inst = await ensureInstance('ui-keyed')
      const per = await apiCall('/auth/keys', { method: 'POST', body: { name: 'per', permission_mode: 'per_instance', instance_ids: [inst.id], expires_at: Math.floor(Date.now() / 1000) + 86400 } })
      expect(per.status).toBe(201)
      expectShape(per.value, CREATED_KEY)
      const all = await apiCall('/auth/keys', { method: 'POST', body: { name: 'all', permission_mode: 'allow_all', instance_ids: [] } })
      expectShape(all.value, CREATED_KEY)
      expect((all.value as { permission_mode: string }).permission_mode).toBe('allow_all')
    },
  },
  {
    call: 'apiKeysApi.list',
    request: 'GET /auth/keys',
    state: 'covered',
    run: async () => {
      await apiCall('/auth/keys', { method: 'POST', body: { name: 'listed', permission_mode: 'allow_all', instance_ids: [] } })
      const list = (await apiCall('/auth/keys')).value as unknown[]
      expect(list.length).toBeGreaterThan(0)
      for (const k of list) expectShape(k, API_KEY)
    },
  },
  {
    call: 'apiKeysApi.get',
    request: 'GET /auth/keys/{id}',
    state: 'covered',
    run: async () => {
      const made = (await apiCall('/auth/keys', { method: 'POST', body: { name: 'one', permission_mode: 'allow_all', instance_ids: [] } })).value as { id: number }
      expectShape((await apiCall(`/auth/keys/${made.id}`)).value, API_KEY)
    },
  },
  {
    call: 'apiKeysApi.getPermissions',
    request: 'GET /auth/keys/{id}/permissions',
    state: 'covered',
    run: async () => {
      const inst = await ensureInstance('ui-perm')
      const made = (await apiCall('/auth/keys', { method: 'POST', body: { name: 'perm', permission_mode: 'per_instance', instance_ids: [inst.id] } })).value as { id: number }
      const perms = (await apiCall(`/auth/keys/${made.id}/permissions`)).value as unknown[]
      expect(perms.length).toBe(1)
      expectShape(perms[0], KEY_PERMISSION)
      expect(perms[0]).toEqual({ instance_id: inst.id, instance_name: 'ui-perm' })
    },
  },
  {
    call: 'apiKeysApi.delete',
    request: 'DELETE /auth/keys/{id}',
    state: 'covered',
    run: async () => {
      const made = (await apiCall('/auth/keys', { method: 'POST', body: { name: 'gone', permission_mode: 'allow_all', instance_ids: [] } })).value as { id: number }
      const a = await apiCall(`/auth/keys/${made.id}`, { method: 'DELETE' })
      expect([a.status, a.value]).toEqual([204, undefined])
    },
  },
  // llamaCppModelsApi: the models tab's downloads and cache, against a hub of our own (test/fixtures/fake-hub.ts)
  {
    call: 'llamaCppModelsApi.startDownload',
    request: 'POST /models/download',
    state: 'covered',
    run: async () => {
      const a = await apiCall('/models/download', { method: 'POST', body: { repo: `${UI_REPO}:Q4_K_M`, format: 'gguf' } })
      expect(a.status).toBe(202)
      expectShape(a.value, { job_id: ['string'], repo: ['string'], tag: ['string'] })
      expect(a.value).toMatchObject({ repo: UI_REPO, tag: 'Q4_K_M' })
      expect((await h.app.downloads.settled((a.value as { job_id: string }).job_id)).status).toBe('completed')
    },
  },
  {
    call: 'llamaCppModelsApi.getJob',
    request: 'GET /models/jobs/{id}',
    state: 'covered',
    run: async () => {
      const { job_id } = await uiDownload()
      const job = (await apiCall(`/models/jobs/${job_id}`)).value
      expectShape(job, DOWNLOAD_JOB)
      expect(job).toMatchObject({ id: job_id, repo: UI_REPO, tag: 'Q4_K_M', status: 'completed', error: null })
    },
  },
  {
    call: 'llamaCppModelsApi.listJobs',
    request: 'GET /models/jobs',
    state: 'covered',
    run: async () => {
      const { job_id } = await uiDownload()
      const { jobs } = (await apiCall('/models/jobs')).value as { jobs: unknown[] }
      for (const j of jobs) expectShape(j, DOWNLOAD_JOB)
      expect(jobs.some((j) => (j as { id: string }).id === job_id)).toBe(true)
    },
  },
  {
    call: 'llamaCppModelsApi.deleteJob',
    request: 'DELETE /models/jobs/{id}',
    state: 'covered',
    run: async () => {
      const { job_id } = await uiDownload()
      const a = await apiCall(`/models/jobs/${job_id}`, { method: 'DELETE' })
      expect([a.status, a.value]).toEqual([204, undefined])
      await expect(apiCall(`/models/jobs/${job_id}`)).rejects.toThrow('HTTP 404')
    },
  },
  {
    call: 'llamaCppModelsApi.listModels',
    request: 'GET /models',
    state: 'covered',
    run: async () => {
      await uiDownload()
      const models = (await apiCall('/models')).value as { repo: string; files: unknown[] }[]
      for (const m of models) {
        expectShape(m, CACHED_MODEL)
        for (const f of m.files) expectShape(f, MODEL_FILE)
      }
      expect(models.find((m) => m.repo === UI_REPO)).toMatchObject({ node: 'main', tag: 'Q4_K_M' })
    },
  },
  {
    call: 'llamaCppModelsApi.deleteModel',
    request: 'DELETE /models?repo=…&tag=…',
    state: 'covered',
    run: async () => {
      await uiDownload('Q8_0')
      const params = new URLSearchParams({ repo: UI_REPO, tag: 'Q8_0' })
      const a = await apiCall(`/models?${params}`, { method: 'DELETE' })
      expect([a.status, a.value]).toEqual([204, undefined])
      const left = (await apiCall('/models')).value as { repo: string; tag: string }[]
      expect(left.some((m) => m.repo === UI_REPO && m.tag === 'Q8_0')).toBe(false)
    },
  },
  // llamaCppApi: a router-mode instance's models (ModelsDialog, InstanceCard's loaded/total badge)
  {
    call: 'llamaCppApi.getModels',
    request: 'GET /llama-cpp/{name}/models',
    state: 'covered',
    run: async () => {
      await routerInstance()
      const list = (await apiCall(`/llama-cpp/${enc(ROUTER)}/models`)).value as { object: string; data: unknown[] }
      expect(list.object).toBe('list')
      expect(list.data.length).toBe(2)
      for (const m of list.data) expectShape(m, ROUTER_MODEL)
    },
  },
  {
    call: 'llamaCppApi.loadModel',
    request: 'POST /llama-cpp/{name}/models/{model}/load',
    state: 'covered',
    run: async () => {
      await routerInstance()
      const a = await apiCall(`/llama-cpp/${enc(ROUTER)}/models/${enc('alpha')}/load`, { method: 'POST', body: { model: 'alpha' } })
      expect(a.value).toEqual({ success: true })
      expect(await routerStatus('alpha')).toBe('loaded')
    },
  },
  {
    call: 'llamaCppApi.unloadModel',
    request: 'POST /llama-cpp/{name}/models/{model}/unload',
    state: 'covered',
    run: async () => {
      await routerInstance()
      await apiCall(`/llama-cpp/${enc(ROUTER)}/models/${enc('beta')}/load`, { method: 'POST', body: { model: 'beta' } })
      const a = await apiCall(`/llama-cpp/${enc(ROUTER)}/models/${enc('beta')}/unload`, { method: 'POST', body: { model: 'beta' } })
      expect(a.value).toEqual({ success: true })
      expect(await routerStatus('beta')).toBe('unloaded')
    },
  },
]

/** Every function of webui/src/lib/api.ts (33) and AuthContext's own call: what the cases must cover. */
const UI_CALLS = [
  'serverApi.getHelp', 'serverApi.getVersion', 'serverApi.getDevices', 'serverApi.getConfig',
  'backendsApi.llamaCpp.parseCommand', 'backendsApi.mlx.parseCommand', 'backendsApi.vllm.parseCommand',
  'nodesApi.list', 'nodesApi.get',
  'instancesApi.list', 'instancesApi.get', 'instancesApi.create', 'instancesApi.update', 'instancesApi.delete',
  'instancesApi.start', 'instancesApi.stop', 'instancesApi.restart', 'instancesApi.getLogs', 'instancesApi.getHealth',
  'apiKeysApi.list', 'apiKeysApi.get', 'apiKeysApi.create', 'apiKeysApi.delete', 'apiKeysApi.getPermissions',
  'llamaCppApi.getModels', 'llamaCppApi.loadModel', 'llamaCppApi.unloadModel',
  'llamaCppModelsApi.startDownload', 'llamaCppModelsApi.getJob', 'llamaCppModelsApi.listJobs',
  'llamaCppModelsApi.deleteJob', 'llamaCppModelsApi.listModels', 'llamaCppModelsApi.deleteModel',
  'AuthContext.validateApiKey',
]

const outcome = new Map<Case, 'passed' | 'blocked' | 'pending'>()

beforeAll(async () => {
  hub = fakeHub([{ id: UI_REPO, files: [{ path: 'demo-Q4_K_M.gguf', content: tinyGguf('ui q4') }, { path: 'demo-Q8_0.gguf', content: tinyGguf('ui q8', 5000) }] }])
  h = await harness({
    LLAMACTL_HF_ENDPOINT: hub.url,
    LLAMACTL_REQUIRE_MANAGEMENT_AUTH: 'true',
    LLAMACTL_MANAGEMENT_KEYS: MGMT,
    // The UI's create answers before a slow load is done; 1 s keeps the loading case short.
    LLAMACTL_START_WAIT: '1',
  })
})

afterAll(async () => {
  await h?.close()
  hub?.close()
  const rows = CASES.map((c) => `${c.state.padEnd(16)} ${c.call.padEnd(34)} ${c.request}${c.what ? ` — ${c.what}` : ''}${c.reason ? `\n${' '.repeat(17)}(${c.reason})` : ''}`)
  const calls = UI_CALLS.map((call) => {
    const of = CASES.filter((c) => c.call === call)
    return { call, covered: of.some((c) => c.state === 'covered') && of.every((c) => c.state !== 'covered' || outcome.get(c) === 'passed'), fully: of.every((c) => c.state === 'covered' && outcome.get(c) === 'passed') }
  })
  console.log(
    `\nThe original web UI's calls against this server:\n${rows.join('\n')}\n\n` +
      `calls covered: ${calls.filter((c) => c.covered).length} / ${UI_CALLS.length} ` +
      `(every case of the call: ${calls.filter((c) => c.fully).length}); ` +
      `cases: ${CASES.filter((c) => c.state === 'covered').length} covered, ` +
      `${CASES.filter((c) => c.state === 'expected-to-land').length} expected to land, ` +
      `${CASES.filter((c) => c.state === 'pending').length} pending\n`,
  )
})

describe('the original web UI\'s calls', () => {
  test('the table names every call of api.ts and AuthContext, and nothing else', () => {
    expect([...new Set(CASES.map((c) => c.call))].sort()).toEqual([...UI_CALLS].sort())
    for (const c of CASES) {
      if (c.state !== 'covered') expect([c.call, typeof c.reason]).toEqual([c.call, 'string'])
      if (c.state === 'expected-to-land') expect([c.call, c.blockedBy instanceof RegExp]).toEqual([c.call, true])
      if (c.state !== 'pending') expect([c.call, typeof c.run]).toEqual([c.call, 'function'])
    }
  })

  for (const c of CASES) {
    const name = `${c.call}: ${c.request}${c.what ? ` — ${c.what}` : ''}`
    if (c.state === 'pending') {
      test.todo(`${name} — pending: ${c.reason}`)
      outcome.set(c, 'pending')
    } else if (c.state === 'covered') {
      test(name, async () => {
        await c.run!()
        outcome.set(c, 'passed')
      })
    } else {
      test(`${name} — expected to land with: ${c.reason}`, async () => {
        let error: unknown
        try {
          await c.run!()
        } catch (e) {
          error = e
        }
        if (error === undefined) throw new Error(`${name} now passes: mark it covered`)
        expect(String((error as Error).message ?? error)).toMatch(c.blockedBy!)
        outcome.set(c, 'blocked')
      })
    }
  }
})
