import { describe, expect, test } from 'bun:test'
import fc from 'fast-check'
import { findModel, replaceModel } from '../../src/http/json-model'

const enc = (s: string) => new TextEncoder().encode(s)
const dec = (b: Uint8Array) => new TextDecoder().decode(b)

describe('findModel', () => {
  test('finds the top-level model anywhere in the object', () => {
    expect(findModel(enc('{"model":"a"}'))!.value).toBe('a')
    expect(findModel(enc(' { "messages" : [ {"model":"inner","content":"x]}{\\"model\\":"} ], "model" : "outer" } '))!.value).toBe('outer')
    expect(findModel(enc('{"n":12345678901234567890123,"x":{"model":"no"},"model":"yes","z":null}'))!.value).toBe('yes')
  })
  test('decodes escapes and unicode in the value', () => {
    expect(findModel(enc('{"model":"a\\u002fb\\"c"}'))!.value).toBe('a/b"c')
    expect(findModel(enc('{"messages":"héllo 🦙","model":"lläma"}'))!.value).toBe('lläma')
  })
  test('null when there is no model; errors when not an object or malformed', () => {
    expect(findModel(enc('{}'))).toBeNull()
    expect(findModel(enc('{"prompt":"x"}'))).toBeNull()
    for (const bad of ['', '[]', '"x"', '{', '{"model":"a"', '{"model":"a",}', '{"model":"a"} x', '{"model":3}', '{model:"a"}', '{"a":"unterminated}']) {
      expect(() => findModel(enc(bad))).toThrow(SyntaxError)
    }
  })
  test('replaceModel changes only the value bytes', () => {
    const body = '{"model":"inst/sub","big":12345678901234567890,"image":"AAAA","b":1,"a":2}'
    const f = findModel(enc(body))!
    expect(dec(replaceModel(enc(body), f, 'sub'))).toBe('{"model":"sub","big":12345678901234567890,"image":"AAAA","b":1,"a":2}')
  })
  test('agrees with JSON.parse on generated objects', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue()), fc.string(), fc.boolean(), (obj, model, withModel) => {
        const o: Record<string, unknown> = { ...obj }
        delete o.model
        if (withModel) o.model = model
        const text = JSON.stringify(o, null, withModel ? 1 : 0)
        const f = findModel(enc(text))
        expect(f?.value ?? null).toBe(withModel ? model : null)
      }),
      { numRuns: 300 },
    )
  })
})
