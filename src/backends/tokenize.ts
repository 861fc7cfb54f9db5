/**
 * Splits a command line into words the way a POSIX shell would, for commands pasted from a
 * terminal or a README: single quotes (literal), double quotes (where backslash escapes only
 * `"`, `\`, `$`, `` ` `` and newline), backslash escapes outside quotes, backslash-newline
 * continuations (also `\` + CRLF), and `#` comments at the start of a word. Nothing is
 * expanded: `$HOME` stays `$HOME`. Shell operators (`|`, `;`, `&`, `<`, `>`) outside quotes are
 * refused, because they would make it more than one command.
 */
import { BadRequest } from '../errors'

const SPACE = new Set([' ', '\t', '\n', '\r'])
const OPERATORS = new Set(['|', ';', '&', '<', '>'])
const DQ_ESCAPABLE = new Set(['"', '\\', '$', '`'])

export function tokenize(input: string): string[] {
  const words: string[] = []
  let word = ''
  let inWord = false
  let i = 0
  const end = () => {
    if (inWord) words.push(word)
    word = ''
    inWord = false
  }
  /** Length of a line break at j (LF or CRLF), else 0. */
  const newline = (j: number) => (input[j] === '\n' ? 1 : input[j] === '\r' && input[j + 1] === '\n' ? 2 : 0)

  while (i < input.length) {
    const c = input[i]!
    if (SPACE.has(c)) {
      end()
      i++
    } else if (c === '\\') {
      const nl = newline(i + 1)
      if (nl) {
        i += 1 + nl // continuation: the line goes on
      } else if (i + 1 >= input.length) {
        i++ // a trailing backslash (a continuation with nothing after it)
      } else {
        word += input[i + 1]
        inWord = true
        i += 2
      }
    } else if (c === "'") {
      const close = input.indexOf("'", i + 1)
      if (close < 0) throw new BadRequest(`unclosed single quote at character ${i + 1}`)
      word += input.slice(i + 1, close)
      inWord = true
      i = close + 1
    } else if (c === '"') {
      const open = i
      inWord = true
      i++
      while (true) {
        if (i >= input.length) throw new BadRequest(`unclosed double quote at character ${open + 1}`)
        const d = input[i]!
        if (d === '"') {
          i++
          break
        }
        if (d === '\\') {
          const nl = newline(i + 1)
          if (nl) {
            i += 1 + nl
            continue
          }
          const next = input[i + 1]
          if (next !== undefined && DQ_ESCAPABLE.has(next)) {
            word += next
            i += 2
            continue
          }
        }
        word += d
        i++
      }
    } else if (c === '#' && !inWord) {
      while (i < input.length && input[i] !== '\n') i++
    } else if (OPERATORS.has(c)) {
      throw new BadRequest(`shell operator ${JSON.stringify(c)} at character ${i + 1}: give one command, without pipes, redirections or ';' (quote the character if it belongs to a value)`)
    } else {
      word += c
      inWord = true
      i++
    }
  }
  end()
  return words
}
