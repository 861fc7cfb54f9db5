/**
 * The admin page under /ui: server-rendered HTML (views/) with htmx. Every handler here checks
 * the page session itself (the API guard lets /ui through) and sends visitors without one to
 * /ui/login; everything that changes state also needs the session's CSRF token (htmx sends it
 * as X-CSRF-Token, plain forms as the `_csrf` field) and a same-origin Origin when there is one.
 * Handlers call the manager and the key ring directly and answer a whole page, or for htmx
 * requests (HX-Request) only the fragment that changes.
 */
import { doc } from './openapi'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { Elysia } from 'elysia'
import type { KeyRing } from '../auth/keys'
import { csrfMatches, readCookie, SESSION_COOKIE, type Session, type Sessions } from '../auth/sessions'
import { AppError, BadRequest, Conflict, NotFound } from '../errors'
import { BACKENDS, findBackend } from '../backends'
import type { Instance } from '../instances/instance'
import type { InstanceManager } from '../instances/manager'
import { checkName, type InstanceView, withDefaults } from '../instances/options'
import { versionText } from '../version'
import { ASSETS } from '../../views/assets'
import { html, type Html } from '../../views/html'
import { blankRow, emptyForm, type FormErrors, type FormState, instanceForm, instanceFormPage } from '../../views/instance-form'
import { flashBox, type Flash, type InstanceItem, instanceList, instancesPage } from '../../views/instances'
import { keyForm, keyList, keysPage, type KeysView } from '../../views/keys'
import { type LibraryRow, type LibraryView, librarySection, size } from '../../views/library'
import { estimate } from '../models/estimate'
import { available, overLimit } from '../models/memory'
import { errorPage, loginPage, type PageContext } from '../../views/layout'
import { activityChart, activitySummary } from '../../views/activity'
import { logsPage, logStatus } from '../../views/logs'
import { type NodeItem, nodeList, nodesPage } from '../../views/nodes'
import { type Answer, llamaServerInfo, systemPage } from '../../views/system'
import { backendPresence } from '../backends/presence'
import { activityPage, requestsTable } from '../../views/requests'
import { connectCard } from '../../views/connect'
import { activityFilter } from './activity'
import { jobLine, jobList, modelList, modelsPage, type ModelsView } from '../../views/models'
import { parseRepo } from '../models/cache'
import { instancesUsing } from './models'
import { readBody } from './body'
import { sameOrigin } from './cors'
import { checkForm, fieldOfError, formChoices, formFromOptions, formFromParams, knownOptions, optionsFromForm } from './page-form'
import { unlimited } from './timeouts'
import { eventStream } from './events'
import type { ModelDownloads } from '../models/jobs'

export interface PageDeps {
  manager: InstanceManager
  keys: KeyRing
  sessions: Sessions
  /** llamactl's own HTTP routes, called in-process (for routes another module owns, like parse-command). */
  api: (request: Request) => Promise<Response>
  /** Model downloads, for the Models view and its event stream. */
  downloads: ModelDownloads
}

// The page loads only its own files: no inline script or style, no other host.
const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'same-origin',
}

/** How long an action waits for its result before answering with the state so far (polling shows the rest). */
const ACTION_WAIT_MS = 300
/** How long the system page waits for llama-server's answers. */
const API_WAIT_MS = 20000
const FORM_LIMIT = 256 * 1024

function page(body: Html, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(body.value, {
    status,
    headers: { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', ...SECURITY_HEADERS, ...headers },
  })
}

/** Where to go next: htmx follows HX-Redirect, a plain form post follows the 303. */
function goTo(location: string, hx: boolean): Response {
  if (hx) return new Response(null, { status: 200, headers: { 'hx-redirect': location } })
  return new Response(null, { status: 303, headers: { location } })
}

type Settled<T> = { state: 'done'; value: T } | { state: 'failed'; error: unknown } | { state: 'pending' }

/** The outcome of `p` if it settles within `ms`; the operation goes on either way. */
async function within<T>(p: Promise<T>, ms: number): Promise<Settled<T>> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const outcome = p.then(
    (value): Settled<T> => ({ state: 'done', value }),
    (error): Settled<T> => ({ state: 'failed', error }),
  )
  const late = new Promise<Settled<T>>((r) => (timer = setTimeout(() => r({ state: 'pending' }), ms)))
  try {
    return await Promise.race([outcome, late])
  } finally {
    clearTimeout(timer)
  }
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e)
}

interface Ctx {
  request: Request
  session: Session
  page: PageContext
  hx: boolean
  /** The posted form (mutating routes only). */
  form: URLSearchParams
}

type Handler = (c: Ctx, params: Record<string, string>) => Response | Promise<Response>

export function pageRoutes({ manager, keys, sessions, api, downloads }: PageDeps) {
  const config = manager.config
  const authOn = config.auth.require_management_auth
  // With management auth off there is no sign-in, but changes still need a token a foreign page cannot know.
  const open: Session = { csrf: randomBytes(24).toString('base64url'), expires: Number.POSITIVE_INFINITY }

  const sessionOf = (request: Request): Session | null =>
    authOn ? sessions.get(readCookie(request.headers.get('cookie'), SESSION_COOKIE)) : open

  /** Wraps a handler: session, then (for changes) origin and CSRF token; AppErrors become a page. */
  const guard =
    (handler: Handler, opts: { mutates?: boolean } = {}) =>
    async ({ request, params }: { request: Request; params: Record<string, string> }): Promise<Response> => {
      const hx = request.headers.get('hx-request') === 'true'
      const session = sessionOf(request)
      if (!session) {
        // htmx would swap a redirect's page into the target: tell it to navigate instead.
        if (hx) return new Response(null, { status: 401, headers: { 'hx-redirect': '/ui/login' } })
        return new Response(null, { status: 303, headers: { location: '/ui/login' } })
      }
      const ctx: PageContext = { csrf: session.csrf, canSignOut: authOn }
      let form = new URLSearchParams()
      if (opts.mutates) {
        const origin = request.headers.get('origin')
        if (origin && !sameOrigin(request, origin)) {
          return page(errorPage(null, 'Refused', 'This page only takes changes from itself.'), 403)
        }
        form = new URLSearchParams(new TextDecoder().decode(await readBody(request, FORM_LIMIT)))
        if (!csrfMatches(session, request.headers.get('x-csrf-token') ?? form.get('_csrf'))) {
          return page(errorPage(null, 'Refused', 'The form is out of date (missing or wrong CSRF token). Reload the page and try again.'), 403)
        }
      }
      try {
        return await handler({ request, session, page: ctx, hx, form }, params)
      } catch (e) {
        if (!(e instanceof AppError)) throw e
        const title = e instanceof NotFound ? 'Not found' : 'Refused'
        return page(errorPage(ctx, title, e.message), e.status)
      }
    }

  const instance = (name: string): Instance => manager.get(name)

  /** For a stream: whether the page session it was opened with still holds (always, with auth off). */
  const sessionAlive = (request: Request) => {
    const cookie = readCookie(request.headers.get('cookie'), SESSION_COOKIE)
    return () => !authOn || !!sessions.get(cookie)
  }

  const startedAt = Date.now()
  /** Memory for instances as the create check sees it: RAM available, GPU memory free (nvidia-smi), the cap. */
  const memoryRows = (): [string, string][] => {
    const a = available(config, manager.models.readers)
    const mb = (b: number) => `${(b / 1048576).toFixed(0)} MiB`
    return [
      ['RAM available (/proc/meminfo)', a.ram === null ? 'cannot say' : mb(a.ram)],
      ['GPU memory free (nvidia-smi)', a.gpu === null ? 'no GPU found (nvidia-smi is not here, or lists none)' : `${mb(a.gpu)} on ${a.gpus} GPU${a.gpus === 1 ? '' : 's'}`],
      ['instances.memory_limit', a.limit === null ? 'no limit' : mb(a.limit)],
    ]
  }
  const limit = (n: number) => (n < 0 ? 'no limit' : String(n))
  const systemFacts = () => {
    const i = config.instances
    return {
      uptimeMs: Date.now() - startedAt,
      rssBytes: process.memoryUsage.rss(),
      settings: [
        ['data_dir', config.data_dir],
        ['instances.logs_dir', i.logs_dir],
        ['database.path', config.database.path],
        ['server', `${config.server.host}:${config.server.port}`],
        ['instances.port_range', `${i.port_range[0]}–${i.port_range[1]}`],
        ['instances.max_instances', limit(i.max_instances)],
        ['instances.max_running_instances', limit(i.max_running_instances)],
        ['instances.enable_lru_eviction', String(i.enable_lru_eviction)],
        ['auth', `management keys ${config.auth.require_management_auth ? 'required' : 'not required'}, inference keys ${config.auth.require_inference_auth ? 'required' : 'not required'}`],
        ...memoryRows(),
      ] as [string, string][],
    }
  }

  /** llamactl's address as its config says (the page puts the browser's own in its place). */
  const ownOrigin = () => {
    const h = config.server.host
    const host = h === '0.0.0.0' || h === '' ? '127.0.0.1' : h === '::' ? '[::1]' : h.includes(':') ? `[${h}]` : h
    return `http://${host}:${config.server.port || 8080}`
  }

  /** What an instance serves, in a word: the model file's name, else the Hugging Face repo or model id. */
  const modelWord = (o: Record<string, unknown>): string | null => {
    const m = [o.model, o.hf_repo, o.model_url].find((v): v is string => typeof v === 'string' && v !== '')
    if (!m) return null
    return o.model === m && /[\\/]/.test(m) && /\.(gguf|bin|safetensors)$/i.test(m) ? m.split(/[\\/]/).pop()! : m
  }

  const remote = manager.remote
  const items = (): InstanceItem[] =>
    [...manager.list().map((i) => ({
        name: i.name,
        node: config.local_node,
        remote: false,
        status: i.status as string,
        backend: i.options.backend_type,
        model: modelWord(i.options.backend_options),
        group: i.options.group ?? null,
        aliases: i.options.aliases ?? [],
        port: i.port,
        readySince: i.readySince,
        lastRequest: i.lastRequest || null,
        restarts: i.restarts,
        queued: i.queued,
        queuedForMs: i.queuedSince === null ? null : Date.now() - i.queuedSince,
        error: i.error,
        lastLines: i.error !== null && (i.status === 'failed' || i.status === 'restarting') ? i.log.tail(10) : [],
        activity: activitySummary(manager.metrics.recent.series(i.name)),
      })),
      ...remote.list().map((r) => remoteItem(remote.view(r)))].sort((a, b) => a.name.localeCompare(b.name))

  // A remote instance as its node last said; its log and edits are its node's page.
  const remoteItem = (v: InstanceView): InstanceItem => ({
    name: v.name,
    node: v.node,
    remote: true,
    status: v.state,
    backend: v.options.backend_type,
    model: modelWord(v.options.backend_options),
    group: v.options.group ?? null,
    aliases: v.options.aliases ?? [],
    port: v.port,
    readySince: null,
    lastRequest: null,
    restarts: v.restarts,
    error: v.error,
    lastLines: [],
    activity: activitySummary(manager.metrics.recent.series(v.name)),
  })

  // What an empty form means: the same defaults the API fills in.
  const defaults = () => {
    const { auto_restart, max_restarts, restart_delay, on_demand_start, idle_timeout } = withDefaults({}, config)
    return { auto_restart, max_restarts, restart_delay, on_demand_start, idle_timeout }
  }

  const formView = (c: Ctx, mode: 'create' | 'edit', state: FormState, errors: FormErrors = {}) => ({
    mode,
    state,
    errors,
    defaults: defaults(),
    knownOptions: knownOptions(state.backend_type),
    groups: [...new Set(manager.list().flatMap((i) => (i.options.group ? [i.options.group] : [])))].sort(),
    nodes: [config.local_node, ...remote.registry.nodes.keys()],
    ...formChoices(state.backend_type),
    csrf: c.session.csrf,
  })

  /** The form again: only the form for htmx, the whole page otherwise (422 when refused). */
  const formAnswer = (c: Ctx, mode: 'create' | 'edit', state: FormState, errors: FormErrors = {}) => {
    const v = formView(c, mode, state, errors)
    if (c.hx) return page(instanceForm(v))
    return page(instanceFormPage(c.page, v), Object.keys(errors).length ? 422 : 200)
  }

  /** An action on the list: the list and a message for htmx, back to the list otherwise. */
  const listAnswer = (c: Ctx, flash: Flash, name?: string) => {
    // From the log page (?view=logs): its status badge and the message, not the list.
    const fromLogs = name !== undefined && new URL(c.request.url).searchParams.get('view') === 'logs'
    if (!c.hx) return goTo(fromLogs ? `/ui/instances/${encodeURIComponent(name)}/logs` : '/ui', false)
    if (fromLogs) {
      const inst = manager.find(name)
      return page(html`${logStatus(name, inst?.status ?? 'stopped')}\n${flashBox(flash, true)}`)
    }
    return page(html`${instanceList(items(), Date.now())}\n${flashBox(flash, true)}`)
  }

  const act = async (name: string, op: 'start' | 'stop' | 'restart' | 'delete'): Promise<Flash> => {
    // The page bounds its own wait (within, below), so it follows the start to its end.
    const on = remote.has(name) ? remote : manager
    const run: Promise<unknown> = op === 'delete' ? on.remove(name) : op === 'stop' ? on.stop(name) : on[op](name, 'ready')
    const r = await within(run, ACTION_WAIT_MS)
    if (r.state === 'failed') return { kind: 'error', message: messageOf(r.error).split('\n')[0]! }
    const done = { start: 'Started', stop: 'Stopped', restart: 'Restarted', delete: 'Deleted' }[op]
    const doing = { start: 'Starting', stop: 'Stopping', restart: 'Restarting', delete: 'Deleting' }[op]
    if (r.state === 'pending') {
      run.catch(() => {}) // the outcome shows in the instance's status and log
      return { kind: 'ok', message: `${doing} ${name}…` }
    }
    return { kind: 'ok', message: `${done} ${name}.` }
  }

  /** Calls one of llamactl's own API routes in-process; the answer's text, or its error message. */
  const callApi = async (method: string, path: string, body?: unknown): Promise<Answer & { json?: unknown }> => {
    const request = new Request(`http://127.0.0.1${path}`, {
      method,
      body: body === undefined ? undefined : JSON.stringify(body),
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
    })
    const r = await within(api(request), API_WAIT_MS)
    if (r.state === 'pending') return { ok: false, error: `no answer from ${method} ${path} within ${API_WAIT_MS / 1000} s` }
    if (r.state === 'failed') return { ok: false, error: messageOf(r.error) }
    const res = r.value
    const text = await res.text()
    let json: unknown
    try {
      json = JSON.parse(text)
    } catch {
      json = undefined
    }
    if (!res.ok) {
      const msg = (json as { error?: unknown } | undefined)?.error
      return { ok: false, error: `${method} ${path} answered ${res.status}: ${typeof msg === 'string' ? msg : text.slice(0, 500)}` }
    }
    return { ok: true, text: json !== undefined && typeof json !== 'string' ? JSON.stringify(json, null, 2) : text, json }
  }

  const keysView = (c: Ctx, extra: Partial<KeysView> = {}): KeysView => ({
    keys: keys.list(),
    instanceNames: manager
      .list()
      .map((i) => i.name)
      .sort(),
    csrf: c.session.csrf,
    now: Date.now(),
    ...extra,
  })

  const modelsView = (c: Ctx, extra: Partial<ModelsView> = {}): ModelsView => ({
    jobs: downloads.list(),
    models: downloads.models(),
    cacheDir: downloads.cacheDir,
    csrf: c.session.csrf,
    ...extra,
  })

  /**
   * The model library's section of the Models page (views/library.ts): every GGUF file with its
   * memory estimate for the settings in the address (?ctx_size, parallel, gpu_layers). A setting
   * that is not a whole number is said, and the estimate uses llama-server's defaults.
   */
  const libraryView = async (c: Ctx): Promise<{ view: LibraryView; error: string | null }> => {
    const q = new URL(c.request.url).searchParams
    const settings = { ctx_size: q.get('ctx_size') ?? '4096', parallel: q.get('parallel') ?? '1', gpu_layers: q.get('gpu_layers') ?? '' }
    const bad = Object.entries(settings).find(([, v]) => v !== '' && !/^\d{1,9}$/.test(v))
    const a = available(config, manager.models.readers)
    const num = (v: string) => (v === '' ? undefined : Number(v))
    const params = bad ? {} : { ctx_size: num(settings.ctx_size), parallel: num(settings.parallel), gpu_layers: num(settings.gpu_layers) }
    const rows: LibraryRow[] = []
    for (const { model: m, info } of await manager.models.library.entries()) {
      const e = info && !m.mmproj ? estimate(info, { ...params, gpu_layers: params.gpu_layers ?? (a.gpus > 0 ? info.layers + 1 : 0) }) : null
      rows.push({
        id: m.id,
        path: m.path,
        file: m.file,
        root: m.root,
        mmproj: m.mmproj,
        parts: m.split ? m.split.files.length : null,
        header: m.header,
        error: m.error,
        estimate: e,
        over: e ? overLimit(e, a) : null,
      })
    }
    const words = [
      a.ram !== null ? `RAM ${size(a.ram)} available` : 'RAM unknown',
      a.gpus ? `GPU ${size(a.gpu ?? 0)} free on ${a.gpus}` : 'no GPU',
      ...(a.limit !== null ? [`instances.memory_limit ${size(a.limit)}`] : []),
    ].join(', ')
    const error = bad ? `${bad[0]} must be a whole number; the estimate uses llama-server's defaults.` : null
    return { view: { roots: manager.models.library.roots(), rows, settings, available: `${words}.` }, error }
  }

  /** The whole Models page: the downloads' sections, then the library's. */
  const modelsAnswer = async (c: Ctx, extra: Partial<ModelsView> = {}, status = 200) => {
    const lib = await libraryView(c)
    return page(modelsPage(c.page, modelsView(c, extra), librarySection(lib.view, lib.error)), lib.error ? 400 : status)
  }

  return new Elysia({ name: 'page' }).guard({ parse: 'none' }, (app) =>
    app
      .get('/', () => goTo('/ui', false))
      .get('/ui/login', ({ request, query }) => {
        if (sessionOf(request)) return goTo('/ui', false)
        return page(loginPage({ error: query.error === '1' }))
      })
      .get('/ui/assets/:file', ({ params, query }) => {
        const asset = Object.hasOwn(ASSETS, params.file) ? ASSETS[params.file] : undefined
        if (!asset) return new Response('not found', { status: 404, headers: { 'content-type': 'text/plain' } })
        // Pages ask for ?v=<content hash>: that URL never changes meaning, so it may be kept for a year.
        const fresh = query.v === asset.version
        return new Response(asset.body, {
          headers: {
            'content-type': asset.type,
            'cache-control': fresh ? 'public, max-age=31536000, immutable' : 'no-cache',
            'x-content-type-options': 'nosniff',
          },
        })
      })

      // instances
      .get(
        '/ui',
        guard((c) => {
          if (c.hx) return page(instanceList(items(), Date.now()))
          const list = items()
          return page(instancesPage(c.page, list, Date.now(), null, connectCard(list.length === 1 ? list[0]!.name : null, config.auth.require_inference_auth, ownOrigin())))
        }),
      )
      .get(
        '/ui/instances/new',
        guard((c) => formAnswer(c, 'create', prefilled(new URL(c.request.url).searchParams))),
      )

      .post(
        '/ui/instances',
        guard(
          async (c) => {
            const state = formFromParams(c.form)
            const errors = checkForm(state)
            try {
              checkName(state.name)
            } catch (e) {
              errors.name = messageOf(e)
            }
            const exists = (n: string) => manager.find(n) ?? remote.find(n)
            if (!errors.name && exists(state.name)) errors.name = `an instance named ${JSON.stringify(state.name)} already exists`
            if (Object.keys(errors).length) return formAnswer(c, 'create', state, errors)
            const body = optionsFromForm(state)
            const run = (body.nodes ? remote : manager).create(state.name, body, 'ready')
            const r = await within(run, ACTION_WAIT_MS)
            if (r.state === 'failed' && !exists(state.name)) {
              // Refused before anything was made: the options (or a limit), not the start.
              const msg = messageOf(r.error)
              return formAnswer(c, 'create', state, { [fieldOfError(msg, state)]: msg })
            }
            run.catch(() => {}) // a failed start shows in the list
            return goTo('/ui', c.hx)
          },
          { mutates: true },
        ),
      )
      .get(
        '/ui/instances/:name/edit',
        guard((c, p) => {
          const inst = instance(p.name!)
          const state = formFromOptions(inst.input as Record<string, unknown>, { ...emptyForm(), name: inst.name })
          return formAnswer(c, 'edit', state)
        }),
      )
      .post(
        '/ui/instances/:name/edit',
        guard(
          async (c, p) => {
            const inst = instance(p.name!)
            const state = { ...formFromParams(c.form), name: inst.name }
            const errors = checkForm(state)
            if (Object.keys(errors).length) return formAnswer(c, 'edit', state, errors)
            const run = manager.update(inst.name, { ...notOnTheForm(inst.input), ...optionsFromForm(state) }, 'ready')
            const r = await within(run, ACTION_WAIT_MS)
            // A taken alias is the form's to show as well: nothing was changed by it.
            if (r.state === 'failed' && (r.error instanceof BadRequest || (r.error instanceof Conflict && messageOf(r.error).startsWith('aliases:')))) {
              const msg = messageOf(r.error)
              return formAnswer(c, 'edit', state, { [fieldOfError(msg, state)]: msg })
            }
            run.catch(() => {}) // saved; a failed restart shows in the list
            return goTo('/ui', c.hx)
          },
          { mutates: true },
        ),
      )
      .post('/ui/instances/:name/start', guard(async (c, p) => listAnswer(c, await act(p.name!, 'start'), p.name!), { mutates: true }))
      .post('/ui/instances/:name/stop', guard(async (c, p) => listAnswer(c, await act(p.name!, 'stop'), p.name!), { mutates: true }))
      .post('/ui/instances/:name/restart', guard(async (c, p) => listAnswer(c, await act(p.name!, 'restart'), p.name!), { mutates: true }))
      .post('/ui/instances/:name/delete', guard(async (c, p) => listAnswer(c, await act(p.name!, 'delete')), { mutates: true }))
      .get(
        '/ui/instances/:name/logs/download',
        guard(({ request }, p) => logDownload(instance(p.name!), request)),
      )
      .get(
        '/ui/instances/:name/status',
        guard((_c, p) => {
          const inst = instance(p.name!)
          return page(logStatus(inst.name, inst.status))
        }),
      )

      // the form's helpers
      .get(
        '/ui/form/row',
        guard(({ request }) => {
          const q = new URL(request.url).searchParams
          return page(blankRow(q.get('kind') === 'env' ? 'env' : 'opt', q.get('backend') ?? 'llama_cpp'))
        }),
      )
      .post(
        '/ui/form/refresh',
        guard((c) => formAnswer(c, c.form.get('_mode') === 'edit' ? 'edit' : 'create', formFromParams(c.form)), { mutates: true }),
      )
      .post(
        '/ui/form/import',
        guard(
          async (c) => {
            const mode = c.form.get('_mode') === 'edit' ? 'edit' : 'create'
            const state = formFromParams(c.form)
            if (state.command.trim() === '') return formAnswer(c, mode, state, { command: 'Paste a command line first.' })
            const backend = (findBackend(state.backend_type) ?? BACKENDS[0]).routeName
            const r = await callApi('POST', `/api/v1/backends/${backend}/parse-command`, { command: state.command })
            if (!r.ok) return formAnswer(c, mode, state, { command: r.error })
            if (!r.json || typeof r.json !== 'object' || Array.isArray(r.json)) {
              return formAnswer(c, mode, state, { command: 'parse-command did not answer with options' })
            }
            return formAnswer(c, mode, formFromOptions(r.json as Record<string, unknown>, state))
          },
          { mutates: true },
        ),
      )

      // logs
      .get(
        '/ui/instances/:name/logs',
        guard((c, p) => {
          const inst = instance(p.name!)
          // The lines and the cursor are taken together, so the stream continues exactly after them.
          const cursor = inst.log.written
          const lines = inst.log.tail(500)
          const file = config.instances.logs_dir ? `${config.instances.logs_dir}/${inst.name}.log` : null
          return page(logsPage(c.page, { name: inst.name, status: inst.status, lines, cursor, file, activity: manager.metrics.recent.series(inst.name), connect: connectCard(inst.name, config.auth.require_inference_auth, ownOrigin()) }))
        }),
      )
      .get(
        '/ui/instances/:name/activity',
        guard((_c, p) => page(activityChart(instance(p.name!).name, manager.metrics.recent.series(p.name!)))),
      )
      .get(
        '/ui/instances/:name/logs/stream',
        guard(({ request }, p) => logStream(request, instance(p.name!))),
      )

      // models: downloads (src/models)
      .get('/ui/models', guard((c) => modelsAnswer(c)))
      .get('/ui/models/jobs', guard((c) => page(jobList(modelsView(c)))))
      .get('/ui/models/list', guard((c) => page(modelList(modelsView(c)))))
      .get('/ui/models/events', guard(({ request }) => modelEvents(request)))
      .post(
        '/ui/models/download',
        guard(
          (c) => {
            let error: string | null = null
            try {
              const format = c.form.get('format') || 'gguf'
              if (format !== 'gguf' && format !== 'safetensors') throw new BadRequest('format must be gguf or safetensors')
              const { repo, tag } = parseRepo((c.form.get('repo') ?? '').trim())
              downloads.start(repo, tag, format)
            } catch (e) {
              if (!(e instanceof AppError)) throw e
              error = e.message
            }
            if (!c.hx) return error ? modelsAnswer(c, { error }, 422) : goTo('/ui/models', false)
            return page(jobList(modelsView(c, { error })))
          },
          { mutates: true },
        ),
      )
      .post(
        '/ui/models/jobs/:id/cancel',
        guard(
          async (c, p) => {
            let error: string | null = null
            try {
              if (!/^[0-9a-f]{16}$/.test(p.id!)) throw new BadRequest('bad job id')
              await downloads.cancelOrForget(p.id!)
            } catch (e) {
              if (!(e instanceof AppError)) throw e
              error = e.message
            }
            if (!c.hx) return goTo('/ui/models', false)
            return page(jobList(modelsView(c, { error })))
          },
          { mutates: true },
        ),
      )
      .post(
        '/ui/models/delete',
        guard(
          (c) => {
            let flash: string
            try {
              const { repo } = parseRepo(c.form.get('repo') ?? '')
              const tag = c.form.get('tag') ?? ''
              if (tag) parseRepo(`${repo}:${tag}`)
              downloads.delete(repo, tag, (models) => instancesUsing(manager, downloads.cacheDir, models, tag === ''))
              flash = `Deleted ${repo}${tag ? `:${tag}` : ''}.`
            } catch (e) {
              if (!(e instanceof AppError)) throw e
              flash = e.message
            }
            if (!c.hx) return goTo('/ui/models', false)
            return page(modelList(modelsView(c, { flash })))
          },
          { mutates: true },
        ),
      )

      // nodes, as the API answers them (from the last health checks: never waiting on a node)
      .get(
        '/ui/nodes',
        guard(async (c) => {
          const r = await callApi('GET', '/api/v1/nodes')
          if (!r.ok) throw new AppError(r.error)
          const nodes = Object.entries(r.json as Record<string, Omit<NodeItem, 'name'>>).map(([name, n]) => ({ name, ...n }))
          return page(c.hx ? nodeList(nodes, Date.now()) : nodesPage(c.page, nodes, Date.now()))
        }),
      )

      // system
      .get(
        '/ui/system',
        guard((c) => page(systemPage(c.page, { version: versionText(), backends: backendPresence(config), facts: systemFacts() }))),
      )
      .get(
        '/ui/system/llama-server',
        guard(async () => {
          const [version, devices] = await Promise.all([callApi('GET', '/api/v1/server/version'), callApi('GET', '/api/v1/server/devices')])
          return page(llamaServerInfo(version, devices))
        }),
      )

      // activity: the last requests
      .get(
        '/ui/activity',
        guard((c) => {
          const filter = activityFilter(Object.fromEntries(new URL(c.request.url).searchParams))
          return page(activityPage(c.page, { rows: manager.metrics.requestLog.list({ ...filter, limit: filter.limit ?? 200 }), filter, instances: manager.list().map((i) => i.name).sort() }))
        }),
      )
      .get(
        '/ui/activity/requests',
        guard((c) => {
          const filter = activityFilter(Object.fromEntries(new URL(c.request.url).searchParams))
          return page(requestsTable(manager.metrics.requestLog.list({ ...filter, limit: filter.limit ?? 200 }), filter))
        }),
      )

      // inference keys
      .get(
        '/ui/keys',
        guard((c) => page(keysPage(c.page, keysView(c)))),
      )
      .post(
        '/ui/keys',
        guard(
          (c) => {
            const name = (c.form.get('name') ?? '').trim()
            const days = (c.form.get('expires_days') ?? '').trim()
            const only = c.form.getAll('instances')
            const answer = (extra: Partial<KeysView>, ok: boolean) => {
              const v = keysView(c, extra)
              if (!c.hx) return page(keysPage(c.page, v), ok ? 200 : 422)
              // after a success, a fresh form (out of band) so the next key starts empty
              return page(html`${keyList(v)}\n${ok ? keyForm(v, true) : ''}`)
            }
            const body: Record<string, unknown> = { name }
            if (days !== '') {
              const n = Number(days)
              if (!/^\d+(\.\d+)?$/.test(days) || n <= 0) return answer({ error: `Expires after: a number of days above 0, got ${JSON.stringify(days.slice(0, 40))}` }, false)
              body.expires_at = Math.floor(Date.now() / 1000 + n * 86400)
            }
            if (only.length) {
              const missing = only.find((n) => !manager.find(n))
              if (missing !== undefined) return answer({ error: `no instance named ${JSON.stringify(missing)}` }, false)
              body.instances = only
            }
            try {
              const made = keys.create(body, manager.index)
              return answer({ created: { name: made.name, secret: made.key } }, true)
            } catch (e) {
              if (!(e instanceof AppError)) throw e
              return answer({ error: e.message }, false)
            }
          },
          { mutates: true },
        ),
      )
      .post(
        '/ui/keys/:id/revoke',
        guard(
          (c, p) => {
            let error: string | null = null
            try {
              if (!/^\d{1,15}$/.test(p.id!)) throw new BadRequest(`key id must be a number`)
              keys.remove(Number(p.id))
            } catch (e) {
              if (!(e instanceof AppError)) throw e
              error = e.message
            }
            if (!c.hx) return goTo('/ui/keys', false)
            return page(keyList(keysView(c, { error })))
          },
          { mutates: true },
        ),
      ),
  )

  /**
   * The whole current log file as a download (streamed from the file, never read whole into
   * memory); the lines kept in memory when there is no file. Rotated files stay in logs_dir.
   */
  function logDownload(inst: Instance, request: Request): Response {
    const file = Bun.file(join(config.instances.logs_dir, `${inst.name}.log`))
    const headers = {
      'content-type': 'text/plain; charset=utf-8',
      'content-disposition': `attachment; filename="${inst.name}.log"`,
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
    }
    unlimited(request)
    if (config.instances.logs_dir && file.size > 0) return new Response(file.stream(), { headers })
    const tail = inst.log.tail()
    return new Response(tail.length ? `${tail.join('\n')}\n` : '', { headers })
  }

  /**
   * Server-sent events for the Models view: `job` events (id, status, the bar's value out of
   * 1000 and the line under it) for every job as it changes, first the jobs under way. Ends
   * when the client goes away or its session does; a client that stops reading is dropped.
   */
  function modelEvents(request: Request): Response {
    const event = (send: (chunk: string) => void, j: import('../models/jobs').JobView) => {
      const value = j.progress.total_bytes ? Math.floor((j.progress.bytes_downloaded / j.progress.total_bytes) * 1000) : 0
      send(`event: job\ndata: ${JSON.stringify({ id: j.id, status: j.status, value, text: jobLine(j) })}\n\n`)
    }
    return eventStream(request, {
      alive: sessionAlive(request),
      open(send) {
        for (const j of downloads.list()) if (j.status === 'queued' || j.status === 'downloading') event(send, j)
        return downloads.subscribe((j) => event(send, j))
      },
    })
  }

  /**
   * Server-sent events: the lines after the page's cursor (or the browser's Last-Event-ID on
   * a reconnect), then each new line, in batches. Each event's id is the cursor after it. Ends
   * when the client goes away or its session does.
   */
  function logStream(request: Request, inst: Instance): Response {
    const log = inst.log
    const last = request.headers.get('last-event-id') ?? new URL(request.url).searchParams.get('after') ?? '0'
    const after = /^\d{1,15}$/.test(last) ? Number(last) : 0
    const session = sessionAlive(request)
    return eventStream(request, {
      // gone: the instance was deleted, or the session ended
      alive: () => manager.find(inst.name) === inst && session(),
      // Dropped, its EventSource reconnects with Last-Event-ID and is told how many lines it missed.
      dropped: 'the client stopped reading the log stream',
      open(send) {
        let pending: string[] = []
        let cursor = log.written
        let timer: ReturnType<typeof setTimeout> | null = null
        const flush = () => {
          timer = null
          if (!pending.length) return
          // JSON keeps every line on one data: line, whatever characters it holds.
          send(`id: ${cursor}\nevent: lines\ndata: ${JSON.stringify(pending)}\n\n`)
          pending = []
        }
        const { lines, missed } = log.since(after)
        if (missed > 0) pending.push(`… ${missed} earlier lines are only in the log file`)
        pending.push(...lines)
        flush()
        const unsubscribe = log.subscribe((line) => {
          pending.push(line)
          cursor = log.written
          timer ??= setTimeout(flush, 50)
        })
        return () => {
          unsubscribe()
          if (timer) clearTimeout(timer)
        }
      },
    })
  }

}

/** The page's routes in the OpenAPI document: HTML for browsers, listed so the document is whole. */
const PAGE_ROUTES: Record<string, string> = {
  'GET /': 'Go to the admin page (303 to /ui)',
  'GET /ui/login': 'The sign-in form',
  'GET /ui/assets/:file': 'The page\'s own files (htmx, script, style, icon), built into the binary',
  'GET /ui': 'The instance list (htmx: the list fragment)',
  'GET /ui/instances/new': 'The form for a new instance (?name=, model=, ctx_size=, gpu_layers=, parallel= fill it in)',
  'POST /ui/instances': 'Create an instance from the form',
  'GET /ui/instances/:name/edit': 'The form for an instance',
  'POST /ui/instances/:name/edit': 'Save the form',
  'POST /ui/instances/:name/start': 'Start an instance (answers the list)',
  'POST /ui/instances/:name/stop': 'Stop an instance (answers the list)',
  'POST /ui/instances/:name/restart': 'Restart an instance (answers the list)',
  'POST /ui/instances/:name/delete': 'Delete an instance (answers the list)',
  'GET /ui/instances/:name/status': 'An instance\'s status badge',
  'GET /ui/form/row': 'An empty environment or option row for the form',
  'POST /ui/form/refresh': 'The form again, after its backend changed',
  'POST /ui/form/import': 'The form filled from a command line (parse-command)',
  'GET /ui/instances/:name/logs': 'An instance\'s log page',
  'GET /ui/instances/:name/logs/download': 'An instance\'s whole log file (or the lines kept in memory when it has none), as an attachment',
  'GET /ui/instances/:name/logs/stream': 'An instance\'s new log lines, as server-sent events',
  'GET /ui/instances/:name/activity': 'An instance\'s last ten minutes: requests, errors and tokens/s as a chart',
  'GET /ui/models': 'Models: download from Hugging Face, the downloads, the cache, and the library with the memory estimate for ?ctx_size=, parallel=, gpu_layers=',
  'GET /ui/models/jobs': 'The downloads (fragment)',
  'GET /ui/models/list': 'The models in the cache (fragment)',
  'GET /ui/models/events': 'Download progress, as server-sent events',
  'POST /ui/models/download': 'Start a download from the form (answers the downloads)',
  'POST /ui/models/jobs/:id/cancel': 'Cancel a download (answers the downloads)',
  'POST /ui/models/delete': 'Delete a model from the cache (answers the list)',
  'GET /ui/nodes': 'The nodes and their health (htmx: the list fragment)',
  'GET /ui/system': 'Versions',
  'GET /ui/system/llama-server': 'llama-server\'s version and devices',
  'GET /ui/activity': 'The last requests forwarded to backends, filterable',
  'GET /ui/activity/requests': 'The table of the last requests alone (it polls itself)',
  'GET /ui/keys': 'Inference keys',
  'POST /ui/keys': 'Create an inference key (the answer shows the secret once)',
  'POST /ui/keys/:id/revoke': 'Revoke an inference key',
}

/** The OpenAPI operation for a page route, or undefined when it is not one. */
export function pageRouteDoc(method: string, path: string) {
  const summary = PAGE_ROUTES[`${method} ${path}`]
  if (!summary) return undefined
  const publicRoute = path === '/' || path === '/ui/login' || path.startsWith('/ui/assets/')
  return doc({
    summary,
    tag: 'Page',
    auth: 'none',
    ok: [200, path.endsWith('/stream') || path.endsWith('/events') ? 'stream' : 'html'],
    description: publicRoute ? undefined : 'Needs the page session (else 303 to /ui/login); a POST also needs its CSRF token (else 403).',
  })
}

/**
 * The create form filled from its address (the Models page's "New instance"): the name, the
 * model path and the settings its estimate was made for; anything else in it is ignored.
 */
function prefilled(q: URLSearchParams): FormState {
  const state = emptyForm()
  const name = q.get('name')
  if (name) state.name = name.slice(0, 64)
  for (const k of ['model', 'ctx_size', 'gpu_layers'] as const) {
    const v = q.get(k)
    if (v) state.common[k] = v.slice(0, 4096)
  }
  const parallel = q.get('parallel')
  if (parallel && /^\d{1,6}$/.test(parallel)) state.advanced.push(['parallel', parallel])
  return state
}

/** Options the form has no field for: an edit through the page keeps them as they were. */
const NOT_ON_THE_FORM = ['nodes', 'preset_ini', 'max_concurrent_requests', 'max_queued_requests', 'queue_timeout'] as const
function notOnTheForm(input: Record<string, unknown>): Record<string, unknown> {
  const kept: Record<string, unknown> = {}
  for (const k of NOT_ON_THE_FORM) if (input[k] !== undefined) kept[k] = input[k]
  return kept
}
