/**
 * Talking to one remote node: its own management API, with its key in the Authorization header
 * (never in a URL, a log or an answer), every call bounded in time, and every answer checked
 * against the shape the API promises. Whatever goes wrong comes back as an AppError naming the
 * node: a node that cannot be reached, refuses the key, hangs or answers something else is a 502,
 * and a node's own refusal of the request (400, 404, 409, …) keeps its status.
 */
import { readFileSync } from 'node:fs'
import { type Static, type TSchema, Type as T } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import type { NodeConfig } from '../config/settings'
import { AppError, BadGateway, BadRequest, ConfigError, Conflict, InsufficientStorage, NotFound, PayloadTooLarge, StartFailed } from '../errors'
import { API_STATUSES, STATUSES } from '../instances/options'

/** The most of a node's answer read into memory (a list of many instances fits easily). */
const MAX_ANSWER = 16 * 1024 * 1024

/** An instance as a node answers it: what the main node needs, anything else kept. */
export const NodeViewSchema = T.Object({
  id: T.Integer(),
  name: T.String({ maxLength: 64 }),
  status: T.Union(API_STATUSES.map((s) => T.Literal(s))),
  state: T.Optional(T.Union(STATUSES.map((s) => T.Literal(s)))),
  created: T.Integer(),
  options: T.Object({ backend_type: T.String(), on_demand_start: T.Optional(T.Boolean()), aliases: T.Optional(T.Array(T.String())) }, { additionalProperties: true }),
  port: T.Optional(T.Union([T.Integer(), T.Null()])),
  restarts: T.Optional(T.Integer()),
  error: T.Optional(T.Union([T.String(), T.Null()])),
  pid: T.Optional(T.Union([T.Integer(), T.Null()])),
  uptime: T.Optional(T.Union([T.Number(), T.Null()])),
  last_request: T.Optional(T.Union([T.Integer(), T.Null()])),
  requests: T.Optional(T.Object({ in_flight: T.Integer(), queued: T.Integer(), max_concurrent: T.Integer() })),
})
export type NodeView = Static<typeof NodeViewSchema>
export const NodeListSchema = T.Array(NodeViewSchema)
/** The part of a node's GET /api/v1/config placement reads. */
export const NodeConfigSchema = T.Object({
  instances: T.Object({ max_running_instances: T.Integer(), max_instances: T.Integer() }, { additionalProperties: true }),
})

const checkers = new WeakMap<TSchema, ReturnType<typeof TypeCompiler.Compile>>()
function checker(schema: TSchema) {
  let c = checkers.get(schema)
  if (!c) checkers.set(schema, (c = TypeCompiler.Compile(schema)))
  return c
}

/** One node's answer, read whole. */
export interface Answer {
  status: number
  type: string
  text: string
}

export interface CallOptions {
  body?: unknown
  /** Milliseconds; default: node_request_timeout. */
  timeoutMs?: number
  signal?: AbortSignal
}

export class NodeClient {
  /** scheme://host:port: where forwarded requests go. */
  readonly origin: string
  /** The address's path, if it has one (a node behind a path prefix). */
  readonly prefix: string
  /** For Bun's fetch: the CA bundle an https:// node is checked against. */
  readonly tls: { ca: string } | undefined

  constructor(
    readonly name: string,
    cfg: NodeConfig,
    defaultCa: string,
    readonly timeoutMs: number,
  ) {
    const url = new URL(cfg.address)
    this.origin = url.origin
    this.prefix = url.pathname.replace(/\/+$/, '')
    this.#key = cfg.api_key
    const caFile = cfg.ca_file || defaultCa
    if (caFile) {
      try {
        this.tls = { ca: readFileSync(caFile, 'utf8') }
      } catch (e) {
        throw new ConfigError(`${cfg.ca_file ? `nodes.${name}.ca_file` : 'nodes_ca_file'}: cannot read ${caFile}: ${(e as Error).message}`)
      }
    }
  }

  /** A true private field: never in a JSON.stringify or a log of the client or the node's state. */
  readonly #key: string

  /** The Authorization header for this node; empty when it has no key configured. */
  authorization(): string | null {
    return this.#key ? `Bearer ${this.#key}` : null
  }

  /** `node "w1"`, for messages. */
  get label(): string {
    return `node ${JSON.stringify(this.name)}`
  }

  /** One call, its answer read whole; never throws for an HTTP status, only for no answer. */
  async call(method: string, path: string, o: CallOptions = {}): Promise<Answer> {
    const timeoutMs = o.timeoutMs ?? this.timeoutMs
    const timeout = AbortSignal.timeout(timeoutMs)
    const signal = o.signal ? AbortSignal.any([timeout, o.signal]) : timeout
    const headers: Record<string, string> = { accept: 'application/json' }
    const auth = this.authorization()
    if (auth) headers.authorization = auth
    if (o.body !== undefined) headers['content-type'] = 'application/json'
    try {
      const res = await fetch(this.origin + this.prefix + path, {
        method,
        headers,
        body: o.body === undefined ? undefined : JSON.stringify(o.body),
        signal,
        redirect: 'manual',
        tls: this.tls,
      } as RequestInit)
      const text = await readBounded(res, MAX_ANSWER)
      if (text === null) throw new Garbled(`${this.label} answered ${method} ${path} with more than ${MAX_ANSWER} bytes, more than llamactl reads`)
      return { status: res.status, type: res.headers.get('content-type') ?? '', text }
    } catch (e) {
      if (e instanceof AppError) throw e
      if (o.signal?.aborted) throw new BadGateway(`${this.label}: the request was abandoned`)
      if (timeout.aborted) throw new NodeUnreachable(`${this.label} did not answer ${method} ${path} within ${timeoutMs / 1000} s`, true)
      throw new NodeUnreachable(`${this.label} (${this.origin}) could not be reached: ${(e as Error).message}`, false)
    }
  }

  /**
   * A successful answer's JSON checked against `schema`, or the error to answer instead: the
   * node's own refusal with its status, anything the API does not promise a 502 naming the node.
   */
  expect<S extends TSchema>(a: Answer, ok: number[], schema: S, what: string): Static<S> {
    if (!ok.includes(a.status)) throw this.refusal(a, what)
    const json = this.json(a, what)
    const c = checker(schema)
    if (!c.Check(json)) {
      const err = c.Errors(json).First()
      throw new Garbled(`${this.label} answered ${what} with something that is not ${describeSchema(schema)} (at ${err?.path || 'the top'}: ${err?.message ?? 'wrong shape'})`)
    }
    return json as Static<S>
  }

  /** What a non-2xx answer becomes on the main node. */
  refusal(a: Answer, what: string): AppError {
    if (a.status === 401 || a.status === 403) {
      return new BadGateway(`${this.label} refused llamactl's key (${a.status}) for ${what}: check nodes.${this.name}.api_key (it must be a management key of that node)`)
    }
    let message: string | null = null
    try {
      const body = JSON.parse(a.text) as unknown
      if (body && typeof body === 'object' && typeof (body as { error?: unknown }).error === 'string') message = (body as { error: string }).error.slice(0, 2000)
    } catch {
      // not JSON: handled below
    }
    if (message === null) return new Garbled(`${this.label} answered ${what} with ${a.status} and ${describeBody(a)}, not a llamactl error`)
    const said = `${this.label}: ${message}`
    switch (a.status) {
      case 400:
        return new BadRequest(said)
      case 404:
        return new NotFound(said)
      case 409:
        return new Conflict(said)
      case 413:
        return new PayloadTooLarge(said)
      case 500:
        return new StartFailed(said)
      case 507:
        return new InsufficientStorage(said)
      default:
        return new BadGateway(`${this.label} answered ${what} with ${a.status}: ${message}`)
    }
  }

  private json(a: Answer, what: string): unknown {
    if (!a.type.includes('json')) throw new Garbled(`${this.label} answered ${what} with ${describeBody(a)}, not JSON`)
    try {
      return JSON.parse(a.text)
    } catch {
      throw new Garbled(`${this.label} answered ${what} with a body that is not valid JSON`)
    }
  }
}

/** The node could not be reached or did not answer in time: nothing is known to have happened there. */
export class NodeUnreachable extends BadGateway {
  constructor(
    message: string,
    /** It may have received the request (a timeout), rather than certainly not (refused). */
    readonly maybeReceived: boolean,
  ) {
    super(message)
  }
}

/** The node answered, but not what llamactl's API promises. */
export class Garbled extends BadGateway {}

/** The body as text, or null past `max` bytes (the rest is not read). */
async function readBounded(res: Response, max: number): Promise<string | null> {
  if (!res.body) return ''
  const reader = res.body.getReader()
  const chunks: Uint8Array[] = []
  let size = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    size += value.length
    if (size > max) {
      await reader.cancel()
      return null
    }
    chunks.push(value)
  }
  return Buffer.concat(chunks).toString('utf8')
}

function describeBody(a: Answer): string {
  const type = a.type.split(';')[0]!.trim() || 'no content type'
  return a.text.length === 0 ? `an empty body (${type})` : `${type} (${a.text.length} bytes)`
}

function describeSchema(schema: TSchema): string {
  if (schema === NodeViewSchema) return 'an instance'
  if (schema === NodeListSchema) return 'a list of instances'
  if (schema === NodeConfigSchema) return 'a llamactl configuration'
  return 'what llamactl answers'
}
