/**
 * The benchmark's answers, checked: a measurement that got a wrong answer (a status other than
 * 200, a body that is not what was asked for, a stream cut short) throws a WrongResponse naming
 * the measurement, so a quick error can never pass for a quick answer.
 */
import { WrongResponse } from './lib'

export type Body = Record<string, any>

/** Reads a JSON answer; throws naming the measurement unless it is a 200 whose body passes `ok`. */
export async function readChecked(measure: string, what: string, res: Response, ok: (j: Body) => boolean) {
  const text = await res.text()
  if (res.status !== 200) throw new WrongResponse(measure, `${what} answered ${res.status}: ${text.slice(0, 300)}`)
  let j: Body
  try {
    j = JSON.parse(text)
  } catch {
    throw new WrongResponse(measure, `${what} answered 200 with a body that is not JSON: ${text.slice(0, 300)}`)
  }
  if (!ok(j)) throw new WrongResponse(measure, `${what} answered 200 with the wrong body: ${text.slice(0, 300)}`)
}

export const isHealth = (j: Body) => j.status === 'ok'
export const isChat = (j: Body) => j.object === 'chat.completion' && typeof j.choices?.[0]?.message?.content === 'string'

/**
 * Streams one chat completion; returns time to first byte and the gaps between reads. The read
 * loop only takes the time and keeps the chunk: the stream is checked (whole, chunks of a chat
 * completion, ending in [DONE]) once it has ended, so checking cannot slow the reads it measures.
 */
export async function streamChat(measure: string, url: string, body: string, headers: Record<string, string>) {
  const t0 = performance.now()
  const res = await fetch(url, { method: 'POST', headers, body })
  if (res.status !== 200) throw new WrongResponse(measure, `POST ${url} answered ${res.status}: ${(await res.text()).slice(0, 300)}`)
  const type = res.headers.get('content-type') ?? ''
  if (!type.startsWith('text/event-stream')) throw new WrongResponse(measure, `POST ${url} answered ${type}, not an event stream`)
  const reader = res.body!.getReader()
  const arrivals: number[] = []
  const chunks: Uint8Array[] = []
  for (;;) {
    const r = await reader.read()
    if (r.done) break
    arrivals.push(performance.now())
    chunks.push(r.value)
  }
  const text = new TextDecoder().decode(Buffer.concat(chunks))
  const parts = text.split('\n\n')
  const rest = parts.pop()!
  const events = parts.filter((e) => e.startsWith('data: ')).map((e) => e.slice(6))
  if (events.at(-1) !== '[DONE]' || rest.trim()) throw new WrongResponse(measure, `POST ${url}: the stream did not end with [DONE] (${events.length} events, left over: ${rest.slice(0, 200)})`)
  let tokens = 0
  for (const data of events.slice(0, -1)) {
    let j: Body
    try {
      j = JSON.parse(data)
    } catch {
      throw new WrongResponse(measure, `POST ${url}: an event that is not JSON: ${data.slice(0, 200)}`)
    }
    if (j.object !== 'chat.completion.chunk') throw new WrongResponse(measure, `POST ${url}: an event that is not a chunk: ${data.slice(0, 200)}`)
    if (j.choices?.[0]?.delta?.content) tokens++
  }
  if (!tokens) throw new WrongResponse(measure, `POST ${url}: a stream without a token`)
  const gaps = arrivals.slice(1).map((t, i) => t - arrivals[i]!)
  return { ttfb: arrivals[0]! - t0, gaps, events: events.length, reads: chunks.length, tokens }
}
