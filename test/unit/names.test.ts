import { describe, expect, test } from 'bun:test'
import { Names } from '../../src/instances/names'

function world(...instances: string[]) {
  const set = new Set(instances)
  return { set, names: new Names(set) }
}

describe('names: every model name reaches one instance', () => {
  test('a name resolves to itself, an alias to its instance, anything else as it is', () => {
    const { names } = world('qwen', 'llama')
    names.take('qwen', ['gpt-4o', 'small'])
    expect(names.resolve('qwen')).toBe('qwen')
    expect(names.resolve('gpt-4o')).toBe('qwen')
    expect(names.resolve('small')).toBe('qwen')
    expect(names.resolve('nothing')).toBe('nothing')
  })

  test('an alias that is another instance\'s name is refused', () => {
    const { names } = world('qwen', 'llama')
    expect(() => names.check('qwen', ['llama'], false)).toThrow('aliases: "llama" is the name of instance "llama"')
  })

  test('an alias another instance has is refused; one the instance itself has is not', () => {
    const { names } = world('qwen', 'llama')
    names.take('qwen', ['small'])
    expect(() => names.check('llama', ['small'], false)).toThrow('already an alias of instance "qwen"')
    expect(() => names.check('qwen', ['small', 'tiny'], false)).not.toThrow()
  })

  test('a new instance may not take a name that is an alias, nor alias itself', () => {
    const { names } = world('qwen')
    names.take('qwen', ['small'])
    expect(() => names.check('small', [], true)).toThrow('"small" is already an alias of instance "qwen"')
    expect(() => names.check('new', ['new'], true)).toThrow('the instance\'s own name')
  })

  test('take replaces an instance\'s aliases; drop frees them', () => {
    const { set, names } = world('qwen', 'llama')
    names.take('qwen', ['a', 'b'])
    names.take('qwen', ['b', 'c'])
    expect(names.resolve('a')).toBe('a')
    expect(names.resolve('c')).toBe('qwen')
    expect(() => names.check('llama', ['a'], false)).not.toThrow()
    set.delete('qwen')
    names.drop('qwen')
    expect(names.resolve('b')).toBe('b')
    expect(() => names.check('llama', ['b', 'c'], false)).not.toThrow()
  })
})
