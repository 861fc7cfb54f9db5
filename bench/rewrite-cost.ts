/**
 * What the model rewrite costs on the /v1 chat path, as an interleaved A/B against another
 * checkout of llamactl (one without the rewrite):
 *
 *   node_modules/.bin/bun bench/rewrite-cost.ts /path/to/other/checkout [rounds]
 *
 * Four llamactl processes, each with one instance on the fake llama-server: the other checkout
 * twice and this one twice (two pairs of identical paths, whose differences are the run's
 * noise). Requests go to them in turn (bench/lib.ts's interleaved), so a shared machine's
 * drift falls on all alike: a plain chat completion, and a stream of 16 tokens.
 *
 *   node_modules/.bin/bun bench/rewrite-cost.ts micro
 *
 * times the rewrite functions alone on a llama-server reply and stream event, beside a copy of
 * the reply (the least any change of its bytes costs).
 *
 * Instructions rather than time would be steadier, but callgrind (valgrind 3.19) cannot run
 * Bun: its HTTP parser uses an SSE4.2 string instruction valgrind does not decode (SIGILL), and
 * this machine's perf has no hardware counters.
 */
import { writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { BUN, floorNoise, interleaved, summarize } from './lib'
import { startLlamactl, type Running } from '../test/system/process'
import { tempDir } from '../test/helpers'

const enc = new TextEncoder()

if (process.argv[2] === 'micro') {
  const { EventStreamRewrite, rewriteObject } = await import('../src/http/model-rewrite')
  // A llama-server chat completion and one of its stream events, as they come.
  const reply = enc.encode(JSON.stringify({ choices: [{ finish_reason: 'stop', index: 0, message: { role: 'assistant', content: 'Hello! How can I help you today?' } }], created: 1764600000, model: '/models/qwen2.5-0.5b-instruct-q4_k_m.gguf', system_fingerprint: 'b7000-abcdef', object: 'chat.completion', usage: { completion_tokens: 9, prompt_tokens: 20, total_tokens: 29, prompt_tokens_details: { cached_tokens: 0 } }, id: 'chatcmpl-abcdefghijklmnop', timings: { cache_n: 0, prompt_n: 20, prompt_ms: 12.5, prompt_per_token_ms: 0.6, prompt_per_second: 1600, predicted_n: 9, predicted_ms: 40.1, predicted_per_token_ms: 4.4, predicted_per_second: 224 } }))
  const event = enc.encode(`data: ${JSON.stringify({ choices: [{ finish_reason: null, index: 0, delta: { content: ' there' } }], created: 1764600000, id: 'chatcmpl-abcdefghijklmnop', model: '/models/qwen2.5-0.5b-instruct-q4_k_m.gguf', system_fingerprint: 'b7000-abcdef', object: 'chat.completion.chunk' })}\n\n`)
  const asked = enc.encode('"chat"')
  const n = 20000
  const results: Record<string, number[]> = { 'reply, whole': [], 'stream event': [], 'copy of the reply': [] }
  let sink = 0
  for (let r = 0; r < 20; r++) {
    let t = performance.now()
    for (let i = 0; i < n; i++) sink += rewriteObject(reply, asked).length
    results['reply, whole']!.push(((performance.now() - t) * 1e6) / n)
    const s = new EventStreamRewrite(asked)
    t = performance.now()
    for (let i = 0; i < n; i++) sink += s.chunk(event).length
    results['stream event']!.push(((performance.now() - t) * 1e6) / n)
    t = performance.now()
    for (let i = 0; i < n; i++) sink += reply.slice().length
    results['copy of the reply']!.push(((performance.now() - t) * 1e6) / n)
  }
  console.log(`reply ${reply.length} B, event ${event.length} B`)
  for (const [k, v] of Object.entries(results)) console.log(`${k}: median ${v.sort((a, b) => a - b)[v.length >> 1]!.toFixed(0)} ns`)
  if (sink < 0) console.log(sink)
  process.exit(0)
}

const other = process.argv[2]
if (!other) throw new Error('usage: bun bench/rewrite-cost.ts /path/to/other/checkout [rounds] | micro')
const rounds = Number(process.argv[3] ?? 2000)
// A file of the name llama-server would serve: llamactl checks a .gguf model is there; the fake never reads it.
const MODEL_FILE = join(tempDir(), 'qwen2.5-0.5b-instruct-q4_k_m.gguf')
writeFileSync(MODEL_FILE, '')
const KEY = { authorization: 'Bearer test-management-key-0123456789' }
const servers: Running[] = []
try {
  const run = async (checkout: string) => {
    const r = await startLlamactl(tempDir(), { command: [BUN, resolve(checkout, 'src/main.ts')], env: { LLAMACTL_LOG_REQUESTS: 'false' } })
    servers.push(r)
    const made = await r.api('POST', '/api/v1/instances/chat?wait=ready', { backend_options: { model: MODEL_FILE }, environment: { FAKE_TOKEN_DELAY_MS: '0' } })
    if (made.status !== 201) throw new Error(`${checkout}: create answered ${made.status}`)
    return r.url
  }
  const here = resolve(import.meta.dir, '..')
  const urls = { before: await run(other), after: await run(here), 'before again': await run(other), 'after again': await run(here) }
  const body = (stream: boolean) => JSON.stringify({ model: 'chat', stream, max_tokens: stream ? 16 : 8, messages: [{ role: 'user', content: 'hello there' }] })
  const post = (url: string, stream: boolean) => async () => {
    const res = await fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', ...KEY }, body: body(stream) })
    const text = await res.text()
    if (res.status !== 200 || !text.includes('"model":"')) throw new Error(`${url}: ${res.status} ${text.slice(0, 200)}`)
  }
  for (const stream of [false, true]) {
    const samples = await interleaved(Object.fromEntries(Object.entries(urls).map(([k, u]) => [k, post(u, stream)])), rounds, 300)
    console.log(stream ? `stream of 16 tokens (${rounds} rounds):` : `plain chat completion (${rounds} rounds):`)
    for (const [k, v] of Object.entries(samples)) {
      const s = summarize(v)
      console.log(`  ${k.padEnd(12)} p50 ${(s.p50 * 1000).toFixed(1)} µs  p99 ${(s.p99 * 1000).toFixed(1)} µs  mean ${(s.mean * 1000).toFixed(1)} µs`)
    }
    const p50 = (...ks: string[]) => ks.map((k) => summarize(samples[k]!).p50 * 1000).reduce((a, b) => a + b) / ks.length
    const noise = [floorNoise(samples.after!, samples['after again']!, 50), floorNoise(samples.before!, samples['before again']!, 50)]
    const us = (ms: number) => (ms * 1000).toFixed(1)
    console.log(`  after - before at p50 (means of each pair): ${(p50('after', 'after again') - p50('before', 'before again')).toFixed(1)} µs; noise between identical paths: ${noise.map((n) => `${us(n.observed)} µs observed, ${us(n.resampled)} µs resampled`).join('; ')}`)
  }
} finally {
  for (const s of servers) await s.stop('SIGTERM')
}
