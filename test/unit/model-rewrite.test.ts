import { describe, expect, test } from 'bun:test'
import fc from 'fast-check'
import { findModel } from '../../src/http/json-model'
import { EventStreamRewrite, JSON_HOLD, JsonRewrite, backendRequest, replyRewrite, rewriteObject, servedModel } from '../../src/http/model-rewrite'
import type { InstanceOptions } from '../../src/instances/options'

const enc = (s: string) => new TextEncoder().encode(s)
const dec = (b: Uint8Array) => new TextDecoder().decode(b)
const name = (s: string) => enc(JSON.stringify(s))

/** Feeds `text` to a stream rewrite cut at the given offsets; returns what came out, piece by piece. */
function feed(text: string, cuts: number[], asked = 'chat'): string[] {
  const r = new EventStreamRewrite(name(asked))
  const b = enc(text)
  const out: string[] = []
  let at = 0
  for (const c of [...cuts, b.length]) {
    out.push(dec(r.chunk(b.subarray(at, c))))
    at = c
  }
  out.push(dec(r.end()))
  return out
}

const opts = (backend_type: string, backend_options: Record<string, unknown>) => ({ backend_type, backend_options }) as unknown as InstanceOptions

describe('the model name the backend serves', () => {
  test('each backend names its model as it answers to it', () => {
    expect(servedModel(opts('llama_cpp', { model: '/m/q.gguf', alias: 'qwen' }))).toBe('qwen')
    expect(servedModel(opts('llama_cpp', { model: '/m/q.gguf' }))).toBe('/m/q.gguf')
    expect(servedModel(opts('llama_cpp', { hf_repo: 'org/repo' }))).toBe('org/repo')
    expect(servedModel(opts('llama_cpp', { models_dir: '/m' }))).toBeNull()
    expect(servedModel(opts('vllm', { model: 'org/big', served_model_name: ['big', 'b'] }))).toBe('big')
    expect(servedModel(opts('vllm', { model: 'org/big' }))).toBe('org/big')
    expect(servedModel(opts('mlx_lm', { model: 'mlx-community/x' }))).toBe('mlx-community/x')
  })

  test('the request: a bare instance name becomes the served name; "instance/inner" sends inner; nothing else changes', () => {
    const o = opts('vllm', { model: 'org/big' })
    const body = enc('{"messages":[{"model":"keep"}], "model" : "chat", "n":12345678901234567890}')
    expect(dec(backendRequest(body, findModel(body)!, o))).toBe('{"messages":[{"model":"keep"}], "model" : "org/big", "n":12345678901234567890}')
    const sub = enc('{"model":"chat/lora-1"}')
    expect(dec(backendRequest(sub, findModel(sub)!, o))).toBe('{"model":"lora-1"}')
    // Nothing to say: the very same bytes.
    const none = enc('{"model":"chat"}')
    expect(backendRequest(none, findModel(none)!, opts('llama_cpp', {}))).toBe(none)
  })
})

describe('a JSON reply', () => {
  test('only the top-level model value changes, escapes and all', () => {
    const v = name('chat/sub "x"')
    expect(dec(rewriteObject(enc('{"id":"1","model":"/m/q.gguf","choices":[{"model":"inner"}],"big":1e400}'), v))).toBe(
      '{"id":"1","model":"chat/sub \\"x\\"","choices":[{"model":"inner"}],"big":1e400}',
    )
    expect(dec(rewriteObject(enc('{"model":"a\\"b\\\\","x":"\\"model\\":\\"no\\""}'), name('c')))).toBe('{"model":"c","x":"\\"model\\":\\"no\\""}')
  })

  test('no model, a model nested only, not JSON, or already right: the same bytes', () => {
    for (const s of ['{"object":"list","data":[{"model":"x"}]}', '{}', 'not json', '[{"model":"x"}]', '{"model":"chat"}', '{"model":3}', '{"model":"x', '{"a":[1,"model":"x"}', '']) {
      const b = enc(s)
      expect(rewriteObject(b, name('chat'))).toBe(b)
    }
  })

  test('what follows the model is not read: a reply cut after it still gets the name', () => {
    expect(dec(rewriteObject(enc('{"model":"x","choices":[{"tru'), name('chat')))).toBe('{"model":"chat","choices":[{"tru')
  })

  test('what is rewritten: JSON and event streams, not compressed bodies or other types', () => {
    const pick = replyRewrite('chat')
    expect(pick(new Headers({ 'content-type': 'application/json; charset=utf-8' }))).not.toBeNull()
    expect(pick(new Headers({ 'content-type': 'text/event-stream' }))).toBeInstanceOf(EventStreamRewrite)
    expect(pick(new Headers({ 'content-type': 'application/json', 'content-encoding': 'gzip' }))).toBeNull()
    expect(pick(new Headers({ 'content-type': 'text/html' }))).toBeNull()
    expect(pick(new Headers())).toBeNull()
  })
})

describe('a JSON reply of unknown length (chunked, as llama-server\'s router passes them on)', () => {
  test('held until it ends, then rewritten, wherever it was cut', () => {
    const text = '{"choices":[],"model":"tiny-llama","object":"text_completion"}'
    for (const cut of [1, 12, 24, text.length - 1]) {
      const r = new JsonRewrite(name('r/tiny-llama'))
      const b = enc(text)
      expect(r.chunk(b.subarray(0, cut)).length).toBe(0)
      expect(r.chunk(b.subarray(cut)).length).toBe(0)
      expect(dec(r.end())).toBe(text.replace('"tiny-llama"', '"r/tiny-llama"'))
    }
  })

  test('past JSON_HOLD bytes it passes as it came, held bytes first', () => {
    const r = new JsonRewrite(name('chat'))
    const big = enc(`{"data":"${'x'.repeat(JSON_HOLD)}`)
    const head = big.subarray(0, 10)
    expect(r.chunk(head).length).toBe(0)
    const out = r.chunk(big.subarray(10))
    expect(out.length).toBe(big.length)
    expect(dec(out.subarray(0, 10))).toBe('{"data":"x')
    const tail = enc('","model":"m"}')
    expect(r.chunk(tail)).toBe(tail)
    expect(r.end().length).toBe(0)
  })
})

describe('an event stream', () => {
  const events =
    'data: {"choices":[{"delta":{"content":"hi"}}],"model":"/m/q.gguf","object":"chat.completion.chunk"}\n\n' +
    ': keep-alive\n\n' +
    'event: message\r\ndata:{"model":"qwen","nested":{"model":"inner"}}\r\n\r\n' +
    'data: {"choices":[],"usage":{"total_tokens":3}}\n\n' +
    'data: [DONE]\n\n'
  const want =
    'data: {"choices":[{"delta":{"content":"hi"}}],"model":"chat","object":"chat.completion.chunk"}\n\n' +
    ': keep-alive\n\n' +
    'event: message\r\ndata:{"model":"chat","nested":{"model":"inner"}}\r\n\r\n' +
    'data: {"choices":[],"usage":{"total_tokens":3}}\n\n' +
    'data: [DONE]\n\n'

  test('every event gets the asked name; comments, nested models, events without one and [DONE] pass as they are', () => {
    expect(feed(events, []).join('')).toBe(want)
  })

  test('split anywhere, even inside the value or a multi-byte character, the result is the same', () => {
    const text = events.replace('"hi"', '"héllo 🦙"')
    const expected = want.replace('"hi"', '"héllo 🦙"')
    const size = enc(text).length
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 1, max: size - 1 }), { maxLength: 12 }), (cuts) => {
        expect(feed(text, cuts.sort((a, b) => a - b)).join('')).toBe(expected)
      }),
      { numRuns: 300 },
    )
  })

  test('a complete line goes on at once: only the unfinished line is held', () => {
    const first = 'data: {"model":"x","n":1}\n\n'
    const out = feed(`${first}data: {"model":"x","n":2}\n\n`, [first.length + 10])
    // The first chunk brings one whole event and the start of the next: the event is out before the rest arrives.
    expect(out[0]).toBe('data: {"model":"chat","n":1}\n\n')
    expect(out[1]).toBe('data: {"model":"chat","n":2}\n\n')
    // A chunk without any line end waits for it; the end of the stream sends what is left.
    expect(feed('data: {"model":"x"}', [5])).toEqual(['', '', 'data: {"model":"chat"}'])
  })

  test('a line already right, or with no model at all, is the very chunk it came in', () => {
    const r = new EventStreamRewrite(name('chat'))
    for (const s of ['data: {"model":"chat"}\n\n', 'data: {"x":1}\n\n', 'event: ping\n\n', 'data: {"model":\n\n']) {
      const b = enc(s)
      expect(r.chunk(b)).toBe(b)
    }
  })
})
