/**
 * The model name on its way through /v1. A client names an instance ("chat", or "chat/inner"
 * for a model inside it); the backend knows its model by another name (llama-server by its
 * alias or model path, vLLM by served_model_name or the model, MLX by the model it loaded, which
 * it otherwise tries to download under the name it was sent). So the request carries the
 * backend's name, and the reply's `model` is put back to what the client asked for: clients
 * that check the reply's model against their request, or show it, see their own name.
 *
 * Only the top-level `model` value changes, in both directions; every other byte passes as it
 * came (see json-model.ts). A stream is rewritten line by line: bytes are held back only until
 * the end of the line they are in, never past an event.
 */
import type { InstanceOptions } from '../instances/options'
import { type ModelField, concat, locateModel, replaceModel, splice } from './json-model'

const enc = new TextEncoder()

/**
 * The name the instance's backend serves its model under, from its options; null when they
 * do not say (a llama-server in router mode, say), in which case the request goes as it came.
 */
export function servedModel(o: InstanceOptions): string | null {
  const b = o.backend_options
  const first = (...keys: string[]) => {
    for (const k of keys) {
      const v = b[k]
      if (typeof v === 'string' && v) return v
      // served_model_name is a list: vLLM answers to each and reports the first.
      if (Array.isArray(v) && typeof v[0] === 'string' && v[0]) return v[0]
    }
    return null
  }
  switch (o.backend_type) {
    case 'llama_cpp':
      return first('alias', 'model', 'hf_repo')
    case 'vllm':
      return first('served_model_name', 'model')
    case 'mlx_lm':
      return first('model')
    default:
      return null
  }
}

/**
 * The request body for the backend: "instance/inner" sends "inner" (the client chose a model
 * inside the instance); a bare instance name sends the backend's own name for its model.
 */
export function backendRequest(bytes: Uint8Array, field: ModelField, options: InstanceOptions): Uint8Array {
  const slash = field.value.indexOf('/')
  const name = slash === -1 ? servedModel(options) : field.value.slice(slash + 1)
  if (name === null || name === field.value) return bytes
  return replaceModel(bytes, field, name)
}

/** Changes a response body on its way to the client; see forward.ts. */
export interface ReplyRewrite {
  /** A body read whole: the bytes to send instead (the same array when nothing changed). */
  whole(bytes: Uint8Array): Uint8Array
  /** A chunk of a stream: what may be sent now (possibly empty). */
  chunk(bytes: Uint8Array): Uint8Array
  /** The stream ended: what is left to send. */
  end(): Uint8Array
}

/**
 * The rewrite of replies for a client that asked for `asked`: JSON bodies and event streams,
 * uncompressed; anything else passes untouched (null).
 */
export function replyRewrite(asked: string): (headers: Headers) => ReplyRewrite | null {
  const value = enc.encode(JSON.stringify(asked))
  return (headers) => {
    const coding = headers.get('content-encoding')
    if (coding && coding !== 'identity') return null
    const type = headers.get('content-type') ?? ''
    if (type.includes('text/event-stream')) return new EventStreamRewrite(value)
    if (type.includes('json')) return new JsonRewrite(value)
    return null
  }
}

/**
 * A JSON body: the top-level model value, if any, becomes `value`. One read whole is rewritten
 * at once; one that comes as a stream of unknown length (llama-server's router passes its
 * model servers' answers on chunked) is held until it ends, up to JSON_HOLD bytes; past that it
 * passes as it is, as its model may come after megabytes.
 */
export class JsonRewrite implements ReplyRewrite {
  private held: Uint8Array[] = []
  private heldBytes = 0
  private passing = false
  constructor(private value: Uint8Array) {}
  whole(bytes: Uint8Array): Uint8Array {
    return rewriteObject(bytes, this.value)
  }
  chunk(bytes: Uint8Array): Uint8Array {
    if (this.passing) return bytes
    if (this.heldBytes + bytes.length > JSON_HOLD) {
      this.passing = true
      const out = this.heldBytes ? concat([...this.held, bytes]) : bytes
      this.held = []
      this.heldBytes = 0
      return out
    }
    this.held.push(bytes)
    this.heldBytes += bytes.length
    return EMPTY
  }
  end(): Uint8Array {
    if (!this.heldBytes) return EMPTY
    const all = concat(this.held)
    this.held = []
    this.heldBytes = 0
    return rewriteObject(all, this.value)
  }
}

/** The most of a JSON reply of unknown length held back to rewrite its model. */
export const JSON_HOLD = 1024 * 1024

const EMPTY = new Uint8Array(0)
const LF = 0x0a
const CR = 0x0d

/**
 * Server-sent events: each `data:` line holding a JSON object gets its top-level model
 * rewritten. A line split across chunks is held until its end arrives; complete lines go on at
 * once. A line-ending CR counts as the end too, so no stream is held for lack of LFs.
 */
export class EventStreamRewrite implements ReplyRewrite {
  /** The start of a line not yet ended: its pieces, as they came. */
  private held: Uint8Array[] = []
  private heldBytes = 0

  constructor(private value: Uint8Array) {}

  whole(bytes: Uint8Array): Uint8Array {
    return concat([this.chunk(bytes), this.end()])
  }

  chunk(bytes: Uint8Array): Uint8Array {
    // Events end their lines, so a chunk usually ends with one: no search then.
    const last = bytes[bytes.length - 1]
    const cut = last === LF || last === CR ? bytes.length : Math.max(bytes.lastIndexOf(LF), bytes.lastIndexOf(CR)) + 1
    if (cut === 0) {
      this.held.push(bytes)
      this.heldBytes += bytes.length
      return EMPTY
    }
    let ready = cut === bytes.length ? bytes : bytes.subarray(0, cut)
    if (this.heldBytes) {
      ready = concat([...this.held, ready])
      this.held = []
      this.heldBytes = 0
    }
    if (cut < bytes.length) {
      this.held.push(bytes.subarray(cut))
      this.heldBytes = bytes.length - cut
    }
    return this.lines(ready)
  }

  end(): Uint8Array {
    if (!this.heldBytes) return EMPTY
    const rest = concat(this.held)
    this.held = []
    this.heldBytes = 0
    return this.lines(rest)
  }

  /** Complete lines (the last may lack its end only when the stream ended). */
  private lines(b: Uint8Array): Uint8Array {
    // Spans to replace, as start, end, start, end…
    let edits: number[] | null = null
    for (let i = 0; i < b.length; ) {
      let eol = b.indexOf(LF, i)
      if (eol === -1) eol = b.length
      const edit = dataLineEdit(b, i, eol, this.value)
      if (edit) (edits ??= []).push(edit.start, edit.end)
      i = eol + 1
    }
    if (!edits) return b
    // One event a chunk is the usual case: one splice.
    if (edits.length === 2) return splice(b, edits[0]!, edits[1]!, this.value)
    const parts: Uint8Array[] = []
    let copied = 0
    for (let k = 0; k < edits.length; k += 2) {
      parts.push(b.subarray(copied, edits[k]), this.value)
      copied = edits[k + 1]!
    }
    parts.push(b.subarray(copied))
    return concat(parts)
  }
}

const DATA = [0x64, 0x61, 0x74, 0x61, 0x3a] // data:

/** In the line b[from, to): the span of the model value to replace, null when none or already `value`. */
function dataLineEdit(b: Uint8Array, from: number, to: number, value: Uint8Array): { start: number; end: number } | null {
  if (to - from < 8) return null
  for (let k = 0; k < 5; k++) if (b[from + k] !== DATA[k]) return null
  let p = from + 5
  if (b[p] === 0x20) p++
  if (b[p] !== 0x7b) return null // not an object ([DONE], plain text)
  const at = locateModel(b, p, to)
  if (!at || same(b, at.start, at.end, value)) return null
  return at
}

/** A JSON object's top-level model set to `value`; the same array when absent or unchanged. */
export function rewriteObject(b: Uint8Array, value: Uint8Array): Uint8Array {
  const at = locateModel(b)
  if (!at || same(b, at.start, at.end, value)) return b
  return splice(b, at.start, at.end, value)
}

function same(b: Uint8Array, start: number, end: number, value: Uint8Array): boolean {
  if (end - start !== value.length) return false
  for (let k = 0; k < value.length; k++) if (b[start + k] !== value[k]) return false
  return true
}

