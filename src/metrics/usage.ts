/**
 * Token counts from what the backend already sends: the OpenAI `usage` object
 * (prompt_tokens, completion_tokens) or llama.cpp's `timings` (prompt_n, predicted_n), in a
 * whole JSON body or in the events of a stream as they pass. Nothing is held back: the scanner
 * looks at chunks after they have been handed on.
 */

export interface Usage {
  prompt: number
  completion: number
}

function fromObject(o: unknown): Usage | null {
  if (typeof o !== 'object' || o === null) return null
  const { usage, timings } = o as { usage?: Record<string, unknown>; timings?: Record<string, unknown> }
  if (usage && typeof usage === 'object') {
    const prompt = Number(usage.prompt_tokens ?? usage.input_tokens ?? 0)
    const completion = Number(usage.completion_tokens ?? usage.output_tokens ?? 0)
    if (Number.isFinite(prompt) && Number.isFinite(completion)) return { prompt, completion }
  }
  if (timings && typeof timings === 'object') {
    const prompt = Number(timings.prompt_n ?? 0)
    const completion = Number(timings.predicted_n ?? 0)
    if (Number.isFinite(prompt) && Number.isFinite(completion)) return { prompt, completion }
  }
  return null
}

/** Usage in a whole JSON response body. */
export function usageOfBody(bytes: Uint8Array): Usage | null {
  if (bytes.length === 0 || bytes[0] !== 0x7b) return null
  // Most bodies (embeddings, /health, /props) carry no usage: don't parse them to find out.
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  if (b.indexOf('"usage"') === -1 && b.indexOf('"timings"') === -1) return null
  try {
    return fromObject(JSON.parse(new TextDecoder().decode(bytes)))
  } catch {
    return null
  }
}

const MAX_CARRY = 1 << 20

/** Watches a server-sent-events stream; the last usage seen wins (it is in the final event). */
export class StreamUsage {
  private decoder = new TextDecoder()
  private carry = ''
  usage: Usage | null = null

  push(chunk: Uint8Array) {
    const text = this.carry + this.decoder.decode(chunk, { stream: true })
    const lastNl = text.lastIndexOf('\n')
    if (lastNl === -1) {
      this.carry = text.length > MAX_CARRY ? '' : text
      return
    }
    this.carry = text.length - lastNl - 1 > MAX_CARRY ? '' : text.slice(lastNl + 1)
    if (!text.includes('"usage"') && !text.includes('"timings"')) return
    for (const line of text.slice(0, lastNl).split('\n')) {
      if (!line.startsWith('data:') || (!line.includes('"usage"') && !line.includes('"timings"'))) continue
      try {
        const u = fromObject(JSON.parse(line.slice(5)))
        if (u) this.usage = u
      } catch {
        // not JSON: not ours to read
      }
    }
  }
}
