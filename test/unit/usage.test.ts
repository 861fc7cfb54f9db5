import { describe, expect, test } from 'bun:test'
import { StreamUsage, usageOfBody } from '../../src/metrics/usage'

// Responses as llama-server 0.5.0-dev (build 1, commit de3ff81) sent them for a 15-token chat
// prompt whose first 14 tokens were in its cache, max_tokens 4 (ids, times and the model path
// shortened). Its non-stream `usage` says prompt 15, completion 4: every reading must agree.
const MODEL = '"model":"/m/tiny-llama.gguf","system_fingerprint":"b1-de3ff81"'
const TIMINGS = '"timings":{"cache_n":14,"prompt_n":1,"prompt_ms":0.54,"prompt_per_token_ms":0.54,"prompt_per_second":1851.8,"predicted_n":4,"predicted_ms":0.913,"predicted_per_token_ms":0.304,"predicted_per_second":3285.8}'
const USAGE = '"usage":{"completion_tokens":4,"prompt_tokens":15,"total_tokens":19,"prompt_tokens_details":{"cached_tokens":14}}'
const delta = (content: string) => `data: {"choices":[{"finish_reason":null,"index":0,"delta":{"content":"${content}"}}],"created":1,"id":"c",${MODEL},"object":"chat.completion.chunk"}\n\n`
const finish = (extra: string) => `data: {"choices":[{"finish_reason":"length","index":0,"delta":{}}],"created":1,"id":"c",${MODEL},"object":"chat.completion.chunk"${extra}}\n\n`

function streamed(text: string, pieces = 1): StreamUsage {
  const s = new StreamUsage()
  const bytes = new TextEncoder().encode(text)
  const step = Math.ceil(bytes.length / pieces)
  for (let i = 0; i < bytes.length; i += step) s.push(bytes.subarray(i, i + step))
  return s
}

describe('token usage as llama-server reports it', () => {
  test('a plain response: usage, even with a cached prefix', () => {
    const body = `{"choices":[{"finish_reason":"length","index":0,"message":{"role":"assistant","content":"28192928"}}],"created":1,${MODEL},"object":"chat.completion",${USAGE},"id":"c",${TIMINGS}}`
    expect(usageOfBody(new TextEncoder().encode(body))).toEqual({ prompt: 15, completion: 4, perSecond: 3285.8 })
  })

  test('a stream without include_usage: timings only; prompt = prompt_n (processed) + cache_n (from the cache)', () => {
    const text = delta('17') + delta('5d') + delta('3') + delta('35') + finish(`,${TIMINGS}`) + 'data: [DONE]\n\n'
    for (const pieces of [1, 3, 17, text.length]) expect(streamed(text, pieces).usage).toEqual({ prompt: 15, completion: 4, perSecond: 3285.8 })
  })

  test('a stream with include_usage: the usage chunk (empty choices) wins', () => {
    const last = `data: {"choices":[],"created":1,"id":"c",${MODEL},"object":"chat.completion.chunk",${USAGE},${TIMINGS}}\n\n`
    expect(streamed(delta('3a') + finish('') + last + 'data: [DONE]\n\n', 5).usage).toEqual({ prompt: 15, completion: 4, perSecond: 3285.8 })
  })

  test('timings_per_token: every chunk carries timings, the last one counts', () => {
    const t = (n: number) => `,"timings":{"cache_n":3,"prompt_n":8,"prompt_ms":1,"predicted_n":${n},"predicted_ms":1}`
    const text = finish(t(1)) + finish(t(2)) + finish(t(3)) + finish(t(3)) + 'data: [DONE]\n\n'
    // No predicted_per_second: the speed from predicted_n over predicted_ms.
    expect(streamed(text, 4).usage).toEqual({ prompt: 11, completion: 3, perSecond: 3000 })
  })

  test('an older llama-server with no cache_n: prompt_n alone', () => {
    const text = finish(',"timings":{"prompt_n":6,"predicted_n":2}') + 'data: [DONE]\n\n'
    expect(streamed(text).usage).toEqual({ prompt: 6, completion: 2 })
  })

  test('/v1/messages (Anthropic): input_tokens excludes cache reads; output_tokens arrives in a later event', () => {
    // measured: a 14-token prompt, 13 of them cached, max_tokens 3
    const plain = '{"id":"c","type":"message","role":"assistant","content":[{"type":"text","text":"203645"}],"model":"/m/tiny-llama.gguf","stop_reason":"max_tokens","stop_sequence":null,"usage":{"cache_read_input_tokens":13,"input_tokens":1,"output_tokens":3}}'
    expect(usageOfBody(new TextEncoder().encode(plain))).toEqual({ prompt: 14, completion: 3 })
    const text = [
      'event: message_start\ndata: {"type":"message_start","message":{"id":"c","type":"message","role":"assistant","content":[],"model":"/m/tiny-llama.gguf","stop_reason":null,"stop_sequence":null,"usage":{"cache_read_input_tokens":13,"input_tokens":1,"output_tokens":0}}}\n\n',
      'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"20"}}\n\n',
      'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"max_tokens","stop_sequence":null},"usage":{"output_tokens":3}}\n\n',
      'event: message_stop\ndata: {"type":"message_stop"}\n\n',
    ].join('')
    expect(streamed(text, 3).usage).toEqual({ prompt: 14, completion: 3 })
  })

  test('/v1/responses: usage inside response.completed counts (input_tokens includes the cached ones)', () => {
    const text = `event: response.completed\ndata: {"type":"response.completed","response":{"id":"r","object":"response","created_at":1,"status":"completed","model":"/m/tiny-llama.gguf","output":[],"usage":{"input_tokens":14,"output_tokens":3,"total_tokens":17,"input_tokens_details":{"cached_tokens":13}}},"timings":{"cache_n":13,"prompt_n":1,"predicted_n":3}}\n\n`
    expect(streamed(text, 2).usage).toEqual({ prompt: 14, completion: 3 })
  })

  test('nothing to count: null, and a stream of text passes unread', () => {
    expect(usageOfBody(new TextEncoder().encode('{"object":"list","data":[]}'))).toBeNull()
    expect(streamed(delta('a') + 'data: [DONE]\n\n').usage).toBeNull()
    expect(streamed('data: {"usage": not json}\n\n').usage).toBeNull()
  })
})
