/**
 * Reading request bodies with a size limit: over the limit is 413 whether the client sent a
 * Content-Length or streamed chunks; not JSON is 400.
 *
 * /v1 bodies are also held against a BodyBudget shared by every request, so that many large
 * bodies at once cannot take llamactl's memory: past it, 503 with Retry-After.
 */
import { concat } from './json-model'
import { AppError, BadRequest, ClientClosed, PayloadTooLarge, Unavailable, UnsupportedMediaType } from '../errors'

/** The bytes of request bodies held in memory at once, across requests (server.max_buffered_body_size). */
export class BodyBudget {
  private held = 0
  constructor(readonly limit: number) {}

  get used(): number {
    return this.held
  }

  /** Takes `n` bytes of the budget, or throws 503 when they do not fit. */
  take(n: number) {
    if (this.held + n > this.limit) {
      throw new Unavailable(
        `llamactl is holding as many request bodies as server.max_buffered_body_size (${this.limit} bytes) allows; try again shortly`,
        { 'retry-after': '1' },
      )
    }
    this.held += n
  }

  give(n: number) {
    this.held -= n
  }
}

/** A body read against a budget; release() gives its bytes back (once; later calls do nothing). */
export interface HeldBody {
  bytes: Uint8Array
  release(): void
}

export async function readBody(request: Request, limit: number): Promise<Uint8Array> {
  return await collect(request, limit, null)
}

/** Reads the body, holding its size against `budget` from the first byte until release(). */
export async function holdBody(request: Request, limit: number, budget: BodyBudget): Promise<HeldBody> {
  let held = 0
  const release = () => {
    budget.give(held)
    held = 0
  }
  try {
    const bytes = await collect(request, limit, (n) => {
      budget.take(n)
      held += n
    })
    return { bytes, release }
  } catch (e) {
    release()
    throw e
  }
}

async function collect(request: Request, limit: number, reserve: ((n: number) => void) | null): Promise<Uint8Array> {
  try {
    return await collectOrThrow(request, limit, reserve)
  } catch (e) {
    if (e instanceof AppError) throw e
    // The client went away mid-body: Bun rejects the read with an AbortError.
    if (request.signal.aborted || (e as Error).name === 'AbortError') throw new ClientClosed('the client closed the connection before its request body was read')
    throw e
  }
}

async function collectOrThrow(request: Request, limit: number, reserve: ((n: number) => void) | null): Promise<Uint8Array> {
  const declared = request.headers.get('content-length')
  if (declared !== null) {
    const n = Number(declared)
    if (!Number.isSafeInteger(n) || n < 0) throw new BadRequest('the Content-Length header is not a byte count')
    if (n > limit) throw tooLarge(limit)
    // Decided up front: a body that does not fit is refused before any of it is read.
    reserve?.(n)
    // Known length within the limit: let Bun read it in one native step.
    return await request.bytes()
  }
  if (!request.body) return new Uint8Array(0)
  const chunks: Uint8Array[] = []
  let size = 0
  for await (const chunk of request.body) {
    size += chunk.byteLength
    if (size > limit) throw tooLarge(limit)
    reserve?.(chunk.byteLength)
    chunks.push(chunk)
  }
  return concat(chunks)
}

function tooLarge(limit: number) {
  return new PayloadTooLarge(`request body is larger than ${limit} bytes`)
}

/** application/json, or any `+json` type, with or without parameters. */
export function isJsonType(contentType: string | null): boolean {
  if (!contentType) return false
  const semi = contentType.indexOf(';')
  const t = (semi === -1 ? contentType : contentType.slice(0, semi)).trim().toLowerCase()
  return t === 'application/json' || (t.startsWith('application/') && t.endsWith('+json'))
}

/** 415 unless the request says its body is JSON: a page on another site can send text/plain without asking. */
export function requireJsonType(request: Request) {
  if (!isJsonType(request.headers.get('content-type'))) {
    throw new UnsupportedMediaType('the request body must be JSON, sent with "Content-Type: application/json"')
  }
}

/** Deepest nesting of objects and arrays accepted in a JSON body. */
export const MAX_JSON_DEPTH = 64

/**
 * Throws a 400 when objects or arrays nest deeper than MAX_JSON_DEPTH: checked on the bytes
 * before parsing, since validating a 100,000-deep body ties up the event loop for seconds.
 */
export function checkDepth(b: Uint8Array) {
  let depth = 0
  for (let i = 0; i < b.length; i++) {
    const c = b[i]
    if (c === 0x22) {
      // skip the string, and escaped characters within it
      for (i++; i < b.length && b[i] !== 0x22; i++) if (b[i] === 0x5c) i++
    } else if (c === 0x7b || c === 0x5b) {
      if (++depth > MAX_JSON_DEPTH) throw new BadRequest(`the request body nests objects or arrays more than ${MAX_JSON_DEPTH} deep`)
    } else if (c === 0x7d || c === 0x5d) depth--
  }
}

/** The JSON body, or undefined when there is none. */
export async function readJson(request: Request, limit: number): Promise<unknown> {
  const bytes = await readBody(request, limit)
  const text = new TextDecoder().decode(bytes).trim()
  if (!text) return undefined
  requireJsonType(request)
  checkDepth(bytes)
  try {
    return JSON.parse(text)
  } catch {
    throw new BadRequest('the request body is not valid JSON')
  }
}
