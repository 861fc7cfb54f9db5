import { expect, test } from 'bun:test'
import { checkName } from '../../src/instances/options'

test('instance names: letters, digits, . _ -, starting with a letter or digit, at most 64', () => {
  for (const ok of ['a', 'llama2-7b', 'Qwen3.5_Coder', '7b', 'x'.repeat(64)]) expect(checkName(ok)).toBe(ok)
  for (const bad of ['', '.', '..', 'a..b', '../etc', 'a/b', 'a\\b', '-x', '_x', '.x', 'x'.repeat(65), 'a b', 'a\u0000b', 'é', 'a\nb']) {
    expect(() => checkName(bad)).toThrow('invalid instance name')
  }
})
