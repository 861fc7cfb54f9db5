import { describe, expect, test } from 'bun:test'
import fc from 'fast-check'
import { tokenize } from '../../src/backends/tokenize'
import { BadRequest } from '../../src/errors'

describe('tokenize', () => {
  test('splits on any whitespace and drops empty space', () => {
    expect(tokenize('  a  b\tc\nd\r\ne  ')).toEqual(['a', 'b', 'c', 'd', 'e'])
    expect(tokenize('')).toEqual([])
    expect(tokenize(' \n\t ')).toEqual([])
  })

  test('single quotes keep everything literally, including backslashes and double quotes', () => {
    expect(tokenize(`-m '/models/my model.gguf'`)).toEqual(['-m', '/models/my model.gguf'])
    expect(tokenize(`'a\\nb "c" $HOME'`)).toEqual(['a\\nb "c" $HOME'])
    expect(tokenize(`'it'\\''s'`)).toEqual(["it's"])
  })

  test('double quotes: backslash escapes only " \\ $ ` and newline', () => {
    expect(tokenize(`"a \\"b\\" c"`)).toEqual(['a "b" c'])
    expect(tokenize(`"back\\\\slash" "\\$HOME" "\\n stays"`)).toEqual(['back\\slash', '$HOME', '\\n stays'])
    expect(tokenize(`"line \\\njoined"`)).toEqual(['line joined'])
    expect(tokenize(`"it's"`)).toEqual(["it's"])
  })

  test('quotes join with the text around them into one word; empty quotes are an empty word', () => {
    expect(tokenize(`--alias="my model"x`)).toEqual(['--alias=my modelx'])
    expect(tokenize(`a '' b ""`)).toEqual(['a', '', 'b', ''])
  })

  test('backslash outside quotes escapes the next character', () => {
    expect(tokenize('my\\ model.gguf \\"q\\" \\\\')).toEqual(['my model.gguf', '"q"', '\\'])
  })

  test('backslash-newline continues the line, also with CRLF and with nothing after it', () => {
    const cmd = 'llama-server \\\n  -m /m.gguf \\\r\n  -c 2048 \\'
    expect(tokenize(cmd)).toEqual(['llama-server', '-m', '/m.gguf', '-c', '2048'])
    expect(tokenize('--ctx-\\\nsize')).toEqual(['--ctx-size'])
  })

  test('# starts a comment only at the start of a word', () => {
    expect(tokenize('a # the rest\nb')).toEqual(['a', 'b'])
    expect(tokenize('a#b "#c"')).toEqual(['a#b', '#c'])
  })

  test('nothing is expanded', () => {
    expect(tokenize('$HOME ~/m *.gguf')).toEqual(['$HOME', '~/m', '*.gguf'])
  })

  test('an unclosed quote is a 400 naming where it opened', () => {
    for (const [input, what] of [[`-m 'x`, 'single quote at character 4'], [`-a "x\\"`, 'double quote at character 4']]) {
      let err: unknown
      try {
        tokenize(input!)
      } catch (e) {
        err = e
      }
      expect(err).toBeInstanceOf(BadRequest)
      expect((err as Error).message).toContain(`unclosed ${what}`)
    }
  })

  test('shell operators outside quotes are refused; quoted they are text', () => {
    for (const op of ['|', ';', '&', '>', '<']) {
      expect(() => tokenize(`llama-server -m x ${op} tee`)).toThrow(`shell operator "${op}"`)
      expect(tokenize(`-a '${op}'`)).toEqual(['-a', op])
    }
  })

  test('any list of words survives single-quoting and tokenizing', () => {
    const quote = (w: string) => `'${w.replaceAll("'", `'\\''`)}'`
    fc.assert(
      fc.property(fc.array(fc.string({ unit: 'binary' })), fc.constantFrom(' ', '\n', ' \\\n  ', '\t'), (words, sep) => {
        expect(tokenize(words.map(quote).join(sep))).toEqual(words)
      }),
    )
  })
})
