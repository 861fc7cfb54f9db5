/**
 * Finds the top-level "model" string in a JSON request body without parsing the whole body:
 * the body is forwarded byte for byte, so big integers, key order and large base64 images pass
 * untouched. Works on UTF-8 bytes directly (JSON's structural characters are ASCII).
 */

export interface ModelField {
  value: string
  /** Byte offsets of the value including its quotes. */
  start: number
  end: number
}

const Q = 0x22 // "
// One of each for every request: they hold no state between calls.
const decoder = new TextDecoder()
const encoder = new TextEncoder()
const BS = 0x5c // \

/** The "model" field, null when the body is a JSON object without one; throws SyntaxError when not a JSON object. */
export function findModel(b: Uint8Array): ModelField | null {
  const at = scanModel(b, 0, b.length, false)
  if (!at) return null
  if (b[at.start] !== Q) throw new SyntaxError('"model" must be a string')
  return { value: JSON.parse(decoder.decode(b.subarray(at.start, at.end))), start: at.start, end: at.end }
}

/**
 * Where the top-level "model" string sits in b[from, to), without decoding it; null when that
 * is not a JSON object with one. For replies, where anything unexpected is passed on as it is.
 */
export function locateModel(b: Uint8Array, from = 0, to = b.length): { start: number; end: number } | null {
  const first = skipWs(b, from, to)
  if (first >= to || b[first] !== 0x7b) return null
  try {
    // A reply is not checked past its model: whatever follows passes on as it came anyway.
    const at = scanModel(b, from, to, true)
    return at && b[at.start] === Q ? at : null
  } catch {
    return null
  }
}

/**
 * The first top-level "model" value's span (any JSON type), null when absent; throws SyntaxError
 * when not a JSON object (checked to its end unless `early`: then only up to the model).
 */
// Every read of b[i] is guarded by i < to: b may go on past `to` (a stream's next line).
function scanModel(b: Uint8Array, from: number, to: number, early: boolean): { start: number; end: number } | null {
  let i = skipWs(b, from, to)
  if (i >= to || b[i] !== 0x7b) throw new SyntaxError('the request body must be a JSON object') // {
  i = skipWs(b, i + 1, to)
  if (i < to && b[i] === 0x7d) return null // }
  let found: { start: number; end: number } | null = null
  for (;;) {
    if (i >= to || b[i] !== Q) throw new SyntaxError('invalid JSON')
    const keyEnd = skipString(b, i, to)
    const isModel = keyEnd - i === 7 && b[i + 1] === 0x6d && b[i + 2] === 0x6f && b[i + 3] === 0x64 && b[i + 4] === 0x65 && b[i + 5] === 0x6c
    i = skipWs(b, keyEnd, to)
    if (i >= to || b[i] !== 0x3a) throw new SyntaxError('invalid JSON') // :
    i = skipWs(b, i + 1, to)
    const valueStart = i
    i = skipValue(b, i, to)
    if (isModel && !found) {
      found = { start: valueStart, end: i }
      if (early) return found
    }
    i = skipWs(b, i, to)
    if (i < to && b[i] === 0x2c) {
      i = skipWs(b, i + 1, to)
      continue
    }
    if (i < to && b[i] === 0x7d) break
    throw new SyntaxError('invalid JSON')
  }
  if (skipWs(b, i + 1, to) !== to) throw new SyntaxError('invalid JSON: data after the object')
  return found
}

function skipWs(b: Uint8Array, i: number, to: number): number {
  while (i < to) {
    const c = b[i]
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break
    i++
  }
  return i
}

/** b[i] is the opening quote; returns the index after the closing quote. */
function skipString(b: Uint8Array, i: number, to: number): number {
  for (i++; i < to; i++) {
    const c = b[i]
    if (c === BS) i++
    else if (c === Q) return i + 1
  }
  throw new SyntaxError('invalid JSON: unterminated string')
}

function skipValue(b: Uint8Array, i: number, to: number): number {
  const c = b[i]
  if (c === Q) return skipString(b, i, to)
  if (c === 0x7b || c === 0x5b) {
    // Nested object or array: track depth, skipping strings (which may hold brackets).
    let depth = 0
    for (; i < to; i++) {
      const d = b[i]
      if (d === Q) i = skipString(b, i, to) - 1
      else if (d === 0x7b || d === 0x5b) depth++
      else if (d === 0x7d || d === 0x5d) {
        depth--
        if (depth === 0) return i + 1
      }
    }
    throw new SyntaxError('invalid JSON: unclosed bracket')
  }
  // number, true, false, null: up to the next delimiter
  const start = i
  while (i < to) {
    const d = b[i]
    if (d === 0x2c || d === 0x7d || d === 0x5d || d === 0x20 || d === 0x0a || d === 0x0d || d === 0x09) break
    i++
  }
  if (i === start) throw new SyntaxError('invalid JSON')
  return i
}

/** The body with the model value replaced; everything else is the same bytes. */
export function replaceModel(b: Uint8Array, field: ModelField, value: string): Uint8Array {
  return splice(b, field.start, field.end, encoder.encode(JSON.stringify(value)))
}

/** `b` with bytes start..end replaced by `value`. */
export function splice(b: Uint8Array, start: number, end: number, value: Uint8Array): Uint8Array {
  const out = new Uint8Array(b.length - (end - start) + value.length)
  out.set(b.subarray(0, start), 0)
  out.set(value, start)
  out.set(b.subarray(end), start + value.length)
  return out
}

/** The parts as one array (the part itself when there is one). */
export function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!
  let n = 0
  for (const p of parts) n += p.length
  const out = new Uint8Array(n)
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.length
  }
  return out
}
