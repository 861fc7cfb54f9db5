/**
 * The load generator for load.fault.ts, in its own process (so neither its sockets nor its
 * memory count against llamactl's, and its fetch may run more than Bun's default 256 requests):
 *   bun load-client.ts URL KEY MODEL CLIENTS SECONDS MAX_TOKENS
 * Each client streams chat completions back to back until the time is up, checking that every
 * stream ends with [DONE]. Prints one JSON line: counts, errors (the first few), latencies.
 */
const [url, key, model, clients, seconds, maxTokens] = process.argv.slice(2)
const until = performance.now() + Number(seconds) * 1000
const body = JSON.stringify({ model, stream: true, max_tokens: Number(maxTokens), messages: [{ role: 'user', content: 'hi' }] })
let ok = 0
let errors = 0
const firstErrors: string[] = []
const durations: number[] = []
let events = 0

async function client() {
  while (performance.now() < until) {
    const t0 = performance.now()
    try {
      const res = await fetch(`${url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
        body,
      })
      const text = await res.text()
      if (res.status !== 200 || !text.endsWith('data: [DONE]\n\n')) throw new Error(`status ${res.status}: ${text.slice(-120)}`)
      events += text.split('\n\n').length - 1
      ok++
      durations.push(performance.now() - t0)
    } catch (e) {
      errors++
      if (firstErrors.length < 5) firstErrors.push((e as Error).message)
    }
  }
}

await Promise.all(Array.from({ length: Number(clients) }, client))
durations.sort((a, b) => a - b)
const at = (q: number) => Math.round(durations[Math.min(durations.length - 1, Math.floor(durations.length * q))] ?? 0)
console.log(JSON.stringify({ ok, errors, firstErrors, events, p50: at(0.5), p99: at(0.99), max: Math.round(durations.at(-1) ?? 0) }))
export {}
