/**
 * Reading request bodies with a size limit: over the limit is 413 whether the client sent a
 * Content-Length or streamed chunks; not JSON is 400.
 *
 * /v1 bodies are also held against a BodyBudget shared by every request, so that many large
 * bodies at once cannot take llamactl's memory: past it, 503 with Retry-After.
 */
import { AppError, BadRequest, ClientClosedRequest, PayloadTooLarge, Unavailable } from '../errors'

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
    if (request.signal.aborted || (e as Error).name === 'AbortError') throw new ClientClosedRequest('the client closed the connection before its request body was read')
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
  if (chunks.length === 1) return chunks[0]!
  const out = new Uint8Array(size)
  let at = 0
  for (const c of chunks) {
    out.set(c, at)
    at += c.byteLength
  }
  return out
}

function tooLarge(limit: number) {
  return new PayloadTooLarge(`request body is larger than ${limit} bytes`)
}

/** The JSON body, or undefined when there is none. */
export async function readJson(request: Request, limit: number): Promise<unknown> {
  const bytes = await readBody(request, limit)
  const text = new TextDecoder().decode(bytes).trim()
  if (!text) return undefined
  try {
    return JSON.parse(text)
  } catch {
    throw new BadRequest('the request body is not valid JSON')
  }
}
