/**
 * parse-command as the original llamactl's users know it. The table holds the command lines of
 * the original's own parse-command unit cases (its pkg/backends/*_test.go), each with what the
 * original makes of it, written here as a meaning: the options the command sets (by any of
 * their names) and the unknown flags it passes on, or that it is refused. Then a property: for
 * every flag of the three tables, in every spelling, parse → argv → parse keeps the meaning.
 */
import { describe, expect, test } from 'bun:test'
import fc from 'fast-check'
import { type Backend, backendFor, BACKEND_TYPES } from '../../src/backends'
import { effectiveOptions, type FlagSpec } from '../../src/backends/spec'
import { BadRequest } from '../../src/errors'

const where = { host: '127.0.0.1', port: 1 }

interface Case {
  backend: 'llama_cpp' | 'mlx_lm' | 'vllm'
  command: string
  /** Options it sets, by the original's names; values as the original reads them. */
  sets?: Record<string, unknown>
  /** Unknown flags passed on, as argv words in order. */
  passes?: string[]
  refused?: boolean
}

const CASES: Case[] = [
  // llama-server
  { backend: 'llama_cpp', command: 'llama-server --model /path/to/model.gguf --gpu-layers 32', sets: { model: '/path/to/model.gguf', gpu_layers: 32 } },
  { backend: 'llama_cpp', command: '--model /path/to/model.gguf --ctx-size 4096', sets: { model: '/path/to/model.gguf', ctx_size: 4096 } },
  { backend: 'llama_cpp', command: 'llama-server --model=/path/model.gguf --gpu-layers 16 --verbose', sets: { model: '/path/model.gguf', gpu_layers: 16, verbose: true } },
  { backend: 'llama_cpp', command: 'llama-server --model test.gguf --api-key "sk-1234567890abcdef"', sets: { api_key: 'sk-1234567890abcdef' } },
  {
    backend: 'llama_cpp',
    command: 'llama-server --model /test/model.gguf --n-gpu-layers 32 --temp 0.7 --verbose --no-mmap',
    sets: { model: '/test/model.gguf', gpu_layers: 32, temp: 0.7, verbose: true, no_mmap: true },
  },
  { backend: 'llama_cpp', command: '', refused: true },
  { backend: 'llama_cpp', command: 'llama-server --model test.gguf --api-key "unterminated', refused: true },
  { backend: 'llama_cpp', command: 'llama-server ---model test.gguf', refused: true },
  { backend: 'llama_cpp', command: 'llama-server --model test.gguf --lora adapter1.bin --lora=adapter2.bin', sets: { lora: ['adapter1.bin', 'adapter2.bin'] } },
  {
    backend: 'llama_cpp',
    command: 'llama-server --model /path/to/model.gguf --gpu-layers 32 --unknown-flag value --another-bool-flag',
    sets: { model: '/path/to/model.gguf', gpu_layers: 32 },
    passes: ['--unknown-flag', 'value', '--another-bool-flag'],
  },
  {
    backend: 'llama_cpp',
    command: 'llama-server -m /model.gguf -ngl 16 --custom-arg test --new-feature',
    sets: { model: '/model.gguf', gpu_layers: 16 },
    passes: ['--custom-arg', 'test', '--new-feature'],
  },
  { backend: 'llama_cpp', command: 'llama-server --experimental-feature --beta-mode enabled', passes: ['--experimental-feature', '--beta-mode', 'enabled'] },
  // mlx_lm.server
  { backend: 'mlx_lm', command: 'mlx_lm.server --model /path/to/model --host 0.0.0.0', sets: { model: '/path/to/model', host: '0.0.0.0' } },
  { backend: 'mlx_lm', command: '--model /path/to/model --port 8080', sets: { model: '/path/to/model', port: 8080 } },
  { backend: 'mlx_lm', command: 'mlx_lm.server --model=/path/model --temp=0.7 --trust-remote-code', sets: { model: '/path/model', temp: 0.7, trust_remote_code: true } },
  {
    backend: 'mlx_lm',
    command: 'mlx_lm.server --model /test/model.mlx --port 8080 --temp 0.7 --trust-remote-code --log-level DEBUG',
    sets: { model: '/test/model.mlx', port: 8080, temp: 0.7, trust_remote_code: true, log_level: 'DEBUG' },
  },
  { backend: 'mlx_lm', command: '', refused: true },
  { backend: 'mlx_lm', command: 'mlx_lm.server --model test.mlx --chat-template "unterminated', refused: true },
  { backend: 'mlx_lm', command: 'mlx_lm.server ---model test.mlx', refused: true },
  {
    backend: 'mlx_lm',
    command: 'mlx_lm.server --model /path/to/model --port 8080 --unknown-flag value --new-bool-flag',
    sets: { model: '/path/to/model', port: 8080 },
    passes: ['--unknown-flag', 'value', '--new-bool-flag'],
  },
  { backend: 'mlx_lm', command: 'mlx_lm.server --experimental-feature --custom-param test', passes: ['--experimental-feature', '--custom-param', 'test'] },
  // vllm serve
  { backend: 'vllm', command: 'vllm serve microsoft/DialoGPT-medium', sets: { model: 'microsoft/DialoGPT-medium' } },
  { backend: 'vllm', command: 'serve microsoft/DialoGPT-medium', sets: { model: 'microsoft/DialoGPT-medium' } },
  { backend: 'vllm', command: 'vllm serve microsoft/DialoGPT-medium --tensor-parallel-size 2', sets: { model: 'microsoft/DialoGPT-medium', tensor_parallel_size: 2 } },
  { backend: 'vllm', command: 'vllm serve /path/to/model --gpu-memory-utilization 0.8', sets: { model: '/path/to/model', gpu_memory_utilization: 0.8 } },
  {
    backend: 'vllm',
    command: 'vllm serve test-model --tensor-parallel-size 4 --gpu-memory-utilization 0.8 --enable-log-outputs',
    sets: { model: 'test-model', tensor_parallel_size: 4, gpu_memory_utilization: 0.8, enable_log_outputs: true },
  },
  { backend: 'vllm', command: '', refused: true },
  { backend: 'vllm', command: 'vllm serve "unterminated', refused: true },
  {
    backend: 'vllm',
    command: 'vllm serve test-model --middleware auth.py --middleware=cors.py --api-key key1 --api-key key2',
    sets: { middleware: ['auth.py', 'cors.py'], api_key: ['key1', 'key2'] },
  },
  {
    backend: 'vllm',
    command: 'vllm serve llama-model --tensor-parallel-size 2 --unknown-flag value --new-bool-flag',
    sets: { model: 'llama-model', tensor_parallel_size: 2 },
    passes: ['--unknown-flag', 'value', '--new-bool-flag'],
  },
  { backend: 'vllm', command: 'vllm serve model --experimental-feature --custom-param test', passes: ['--experimental-feature', '--custom-param', 'test'] },
  { backend: 'vllm', command: 'vllm serve --model my-model --new-feature enabled --beta-flag', sets: { model: 'my-model' }, passes: ['--new-feature', 'enabled', '--beta-flag'] },
]

/** What options mean: the value each table option gets, and the unknown flags passed on. */
function meaning(backend: Backend, options: Record<string, unknown>) {
  const { values, extra } = effectiveOptions(backend.table, options, backend.label)
  return { values: Object.fromEntries(values), extra }
}

describe('the original llamactl\'s parse-command cases, in meaning', () => {
  test('there are 32 of them, as in its pkg/backends tests', () => {
    expect(CASES.length).toBe(32)
  })

  for (const c of CASES) {
    test(`${c.backend}: ${JSON.stringify(c.command)}${c.refused ? ' is refused' : ''}`, () => {
      const backend = backendFor(c.backend)
      if (c.refused) {
        expect(() => backend.parseCommand(c.command)).toThrow(BadRequest)
        return
      }
      const parsed = backend.parseCommand(c.command).options
      const got = meaning(backend, parsed)
      // what the original's names for these options mean here
      const want = meaning(backend, c.sets ?? {})
      expect(got.values).toMatchObject(want.values)
      expect(got.extra).toEqual(c.passes ?? [])
      // and the answer, POSTed back, builds those flags
      const argv = backend.buildArgs(parsed, where)
      for (const word of c.passes ?? []) expect(argv).toContain(word)
    })
  }
})

/** A value of the spec's type that reads back as itself after a flag. */
function valueArb(spec: FlagSpec): fc.Arbitrary<string[]> {
  const word = fc.stringMatching(/^[a-z0-9/._:]{1,10}$/)
  switch (spec.type) {
    case 'bool':
      return fc.constant([])
    case 'int':
      return fc.integer({ min: spec.name.endsWith('port') ? 1 : -5, max: 65535 }).map((n) => [String(n)])
    case 'float':
      return fc.double({ min: -100, max: 100, noNaN: true }).map((x) => [String(Object.is(x, -0) ? 0 : x)])
    case 'int_pair':
      return fc.tuple(fc.nat(99), fc.nat(99)).map(([a, b]) => [String(a), String(b)])
    case 'int_or_string':
      return fc.oneof(fc.nat(999).map(String), fc.constantFrom('all', 'auto')).map((v) => [v])
    case 'json_list':
      return fc.array(word, { maxLength: 2 }).map((items) => [JSON.stringify(items)])
    default:
      return word.map((v) => [v])
  }
}

const PROGRAM: Record<string, string[]> = { llama_cpp: ['llama-server'], mlx_lm: ['mlx_lm.server'], vllm: ['vllm', 'serve'] }
const quote = (w: string) => (/^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replaceAll("'", `'\\''`)}'`)

describe('parse → argv → parse keeps the meaning of every flag of the tables, in every spelling', () => {
  for (const type of BACKEND_TYPES) {
    test(type, () => {
      const backend = backendFor(type)
      const spellings = backend.table.specs.flatMap((spec) =>
        [...spec.flags, ...spec.was, ...spec.negations, ...spec.wasNegations].filter((f) => f !== '--host' && f !== '--port').map((f) => ({ spec, f })),
      )
      let checked = 0
      for (const { spec, f } of spellings) {
        const negative = spec.negations.includes(f) || spec.wasNegations.includes(f)
        fc.assert(
          fc.property(negative ? fc.constant([]) : valueArb(spec), (value) => {
            const model = type === 'vllm' ? ['m'] : []
            const first = backend.parseCommand([...PROGRAM[type]!, ...model, f, ...value].map(quote).join(' ')).options
            const argv = backend.buildArgs(first, where)
            const again = backend.parseCommand([...PROGRAM[type]!, ...argv].map(quote).join(' ')).options
            expect(meaning(backend, again)).toEqual(meaning(backend, { ...first, host: where.host, port: where.port }))
            expect(meaning(backend, first).values[spec.name]).toBeDefined()
          }),
          { numRuns: 5 },
        )
        checked++
      }
      expect(checked).toBe(spellings.length)
    })
  }
})
