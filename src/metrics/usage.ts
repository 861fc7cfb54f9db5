/**
 * Token counts from what the backend already sends: the OpenAI `usage` object
 * (prompt_tokens, completion_tokens), the Anthropic and Responses ones (input_tokens,
 * output_tokens) or llama.cpp's `timings` (prompt_n, cache_n, predicted_n), in a whole JSON
 * body or in the events of a stream as they pass. Nothing is held back: the scanner looks at
 * chunks after they have been handed on.
 *
 * A llama-server stream carries `usage` only when the client asked (stream_options.include_usage);
 * otherwise its last chunk carries `timings`, where prompt_n counts only the prompt tokens it
 * processed and cache_n those it served from its prompt cache. The prompt is their sum: in every
 * response measured from llama-server 0.5.0-dev (chat and completions, plain and streamed, cold
 * and with 4 to 14 tokens cached) prompt_n + cache_n equalled the non-stream usage.prompt_tokens.
 *
 * Why timings and not asking the backend for usage (adding include_usage to the request and
 * removing the extra chunk for a client that did not ask): measured on the same server, with
 * include_usage the `timings` move from the finish chunk onto that extra usage chunk, so
 * removing it would take from the client the timings it gets today, and putting them back
 * means rewriting the chunks it is sent. Requests and streams pass byte for byte (json-model.ts)
 * and no event is held back to be inspected; reading timings keeps both. The cost: a backend
 * that sends neither usage nor timings in a stream (vLLM, unless the client asks for usage or
 * the instance runs with enable_force_include_usage) has its streamed tokens uncounted, never
 * miscounted.
 */

export interface Usage {
  prompt: number
  completion: number
  /** Generation speed in tokens per second, as the backend measured it (llama.cpp's timings). */
  perSecond?: number
}

/** What one object says; a field it does not mention is undefined. */
interface Seen {
  prompt?: number
  completion?: number
  perSecond?: number
}

function count(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : undefined
}

function record(v: unknown): Record<string, unknown> | null {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null
}

function fromUsage(u: Record<string, unknown>): Seen {
  let prompt = count(u.prompt_tokens)
  if (prompt === undefined) {
    prompt = count(u.input_tokens)
    // Anthropic's input_tokens leaves out the tokens read from (or written to) its cache.
    if (prompt !== undefined) prompt += (count(u.cache_read_input_tokens) ?? 0) + (count(u.cache_creation_input_tokens) ?? 0)
  }
  return { prompt, completion: count(u.completion_tokens) ?? count(u.output_tokens) }
}

function fromTimings(t: Record<string, unknown>): Seen {
  const processed = count(t.prompt_n)
  const n = count(t.predicted_n)
  const ms = count(t.predicted_ms)
  const perSecond = count(t.predicted_per_second) ?? (n !== undefined && ms ? (n * 1000) / ms : undefined)
  return { prompt: processed === undefined ? undefined : processed + (count(t.cache_n) ?? 0), completion: n, perSecond }
}

/** Fields of `next` that are known replace those of `into`. */
function merge(into: Seen, next: Seen): Seen {
  return { prompt: next.prompt ?? into.prompt, completion: next.completion ?? into.completion, perSecond: next.perSecond ?? into.perSecond }
}

function fromObject(o: unknown): Seen | null {
  const obj = record(o)
  if (!obj) return null
  // The backend's usage wins over its timings; usage sits at the top (OpenAI), in
  // message_start's message (Anthropic) or in response.completed's response (Responses).
  const usage = record(obj.usage) ?? record(record(obj.message)?.usage) ?? record(record(obj.response)?.usage)
  const timings = record(obj.timings)
  let seen: Seen = {}
  if (timings) seen = fromTimings(timings)
  if (usage) seen = merge(seen, fromUsage(usage))
  return seen.prompt === undefined && seen.completion === undefined ? null : seen
}

function done(seen: Seen | null): Usage | null {
  if (!seen) return null
  const u: Usage = { prompt: seen.prompt ?? 0, completion: seen.completion ?? 0 }
  if (seen.perSecond !== undefined) u.perSecond = seen.perSecond
  return u
}

/** Usage in a whole JSON response body. */
export function usageOfBody(bytes: Uint8Array): Usage | null {
  if (bytes.length === 0 || bytes[0] !== 0x7b) return null
  // Most bodies (embeddings, /health, /props) carry no usage: don't parse them to find out.
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  if (b.indexOf('"usage"') === -1 && b.indexOf('"timings"') === -1) return null
  try {
    return done(fromObject(JSON.parse(new TextDecoder().decode(bytes))))
  } catch {
    return null
  }
}

const MAX_CARRY = 1 << 20

/**
 * Watches a server-sent-events stream. What a later event says wins (the counts are in the final
 * events, and with timings_per_token every chunk has the running totals); an event that gives
 * one count leaves the other as an earlier one gave it (Anthropic sends the prompt first and the
 * completion last).
 */
export class StreamUsage {
  private decoder = new TextDecoder()
  private carry = ''
  private seen: Seen | null = null

  get usage(): Usage | null {
    return done(this.seen)
  }

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
        if (u) this.seen = merge(this.seen ?? {}, u)
      } catch {
        // not JSON: not ours to read
      }
    }
  }
}
