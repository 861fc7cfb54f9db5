import { describe, expect, test } from 'bun:test'
import fc from 'fast-check'
import { backendFor, BACKEND_TYPES } from '../../src/backends'
import { isSecretName, maskArgv, shownArgv } from '../../src/backends/mask'

const llama = backendFor('llama_cpp').table
const vllm = backendFor('vllm').table
const where = { host: '127.0.0.1', port: 8001 }

describe('masking secrets in a command line', () => {
  test('which flag names bear a secret', () => {
    for (const f of ['--api-key', '--hf-token', '--api_key', '--x-secret', '--db-password', '--apikey', '--ssl-key-file', '--aws-credentials']) expect([f, isSecretName(f)]).toEqual([f, true])
    for (const f of ['--max-tokens', '--tokenizer', '--keyfile', '--model', '--tokens-only', '--port']) expect([f, isSecretName(f)]).toEqual([f, false])
  })

  test('llama-server: the word after a secret flag is its value whatever it looks like', () => {
    expect(maskArgv(['llama-server', '--api-key', '-starts-with-dash', '--port', '1'], llama)).toEqual(['llama-server', '--api-key', '***', '--port', '1'])
    expect(maskArgv(['llama-server', '--api-key', '--port', '--host', 'h'], llama)).toEqual(['llama-server', '--api-key', '***', '--host', 'h'])
    expect(maskArgv(['llama-server', '-hft', 'hf_x', '--hf-token=hf_y'], llama)).toEqual(['llama-server', '-hft', '***', '--hf-token=***'])
    // options typed as numbers are no secret, even with "token" in their name
    expect(maskArgv(['llama-server', '--image-min-tokens', '5', '--model', 'm'], llama)).toEqual(['llama-server', '--image-min-tokens', '5', '--model', 'm'])
  })

  test('vLLM: every key of a list, a bare --hf-token before the next flag, switches with "token" in their name', () => {
    expect(maskArgv(['vllm', 'serve', 'm', '--api-key', 'a', 'b', 'c', '--port', '1'], vllm)).toEqual(['vllm', 'serve', 'm', '--api-key', '***', '***', '***', '--port', '1'])
    expect(maskArgv(['vllm', 'serve', '--hf-token', '--port', '1'], vllm)).toEqual(['vllm', 'serve', '--hf-token', '--port', '1'])
    expect(maskArgv(['vllm', 'serve', '--hf-token', 'hf_x', '--api-key=-k'], vllm)).toEqual(['vllm', 'serve', '--hf-token', '***', '--api-key=***'])
    expect(maskArgv(['vllm', 'serve', '--return-tokens-as-token-ids', 'm'], vllm)).toEqual(['vllm', 'serve', '--return-tokens-as-token-ids', 'm'])
    // a flag the table does not know: the next word, and the words after it up to the next flag
    expect(maskArgv(['vllm', 'serve', '--new-secret', '-x', 'y', '--seed', '1'], vllm)).toEqual(['vllm', 'serve', '--new-secret', '***', '***', '--seed', '1'])
    // ... even one that looks like a flag, unless the backend knows it as one
    expect(maskArgv(['vllm', 'serve', '--new-token', '--k', '--new-token', '--seed', '1'], vllm)).toEqual(['vllm', 'serve', '--new-token', '***', '--new-token', '--seed', '1'])
  })

  test('Docker environment values are masked, names kept', () => {
    const argv = ['docker', 'run', '-e', 'HF_TOKEN=hf_x', '--env', 'PLAIN=v', '--env=OTHER=w', '-e', 'NAME_ONLY', 'img', '--model', 'm']
    expect(maskArgv(argv, llama)).toEqual(['docker', 'run', '-e', 'HF_TOKEN=***', '--env', 'PLAIN=***', '--env=OTHER=***', '-e', 'NAME_ONLY', 'img', '--model', 'm'])
  })

  test('the shown line quotes words for a shell and leaves *** bare', () => {
    expect(shownArgv(['/bin/llama server', '--api-key', 'k', '--alias', "it's"], llama)).toBe(`'/bin/llama server' --api-key *** --alias 'it'\\''s'`)
  })

  for (const type of BACKEND_TYPES) {
    test(`${type}: no value of any secret option the backend builds is shown`, () => {
      const backend = backendFor(type)
      const secretSpecs = backend.table.specs.filter((s) => isSecretName(s.name) && ['string', 'list', 'bool_or_string', 'int_or_string'].includes(s.type))
      if (type !== 'mlx_lm') expect(secretSpecs.length).toBeGreaterThan(0)
      const secret = fc.tuple(fc.constantFrom('', '-', '--', 'x'), fc.nat(999)).map(([p, n]) => `${p}SECRET${n}`)
      const listOf = fc.array(secret.filter((s) => !s.startsWith('-')), { minLength: 1, maxLength: 4 })
      fc.assert(
        fc.property(fc.tuple(...secretSpecs.map((s) => (s.type === 'list' ? listOf : secret).map((v) => [s.name, v] as const))), fc.array(secret, { maxLength: 3 }), (pairs, extra) => {
          const options: Record<string, unknown> = Object.fromEntries(pairs)
          options.model = 'm'
          if (extra.length) options.extra_args = extra.flatMap((v) => ['--extra-token', v])
          backend.validate(options)
          const shown = shownArgv([type, ...backend.subcommand, ...backend.buildArgs(options, where)], backend.table)
          expect(shown).not.toContain('SECRET')
        }),
        { numRuns: 200 },
      )
    })
  }
})
