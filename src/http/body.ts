/**
 * Reading request bodies with a size limit: over the limit is 413 whether the client sent a
 * Content-Length or streamed chunks; not JSON is 400.
 */
import { BadRequest, PayloadTooLarge } from '../errors'

export async function readBody(request: Request, limit: number): Promise<Uint8Array> {
  const declared = request.headers.get('content-length')
  if (declared !== null) {
    if (Number(declared) > limit) throw tooLarge(limit)
    // Known length within the limit: let Bun read it in one native step.
    return await request.bytes()
  }
  if (!request.body) return new Uint8Array(0)
  const chunks: Uint8Array[] = []
  let size = 0
  for await (const chunk of request.body) {
    size += chunk.byteLength
    if (size > limit) throw tooLarge(limit)
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
