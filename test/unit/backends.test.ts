import { describe, expect, test } from 'bun:test'
import fc from 'fast-check'
import { backendFor, BACKEND_TYPES, type Backend } from '../../src/backends'
import { isValueWord } from '../../src/backends/parse'
import { effectiveOptions, type FlagSpec, isPortOption } from '../../src/backends/spec'
import { BadRequest } from '../../src/errors'

const llama = backendFor('llama_cpp')
const mlx = backendFor('mlx_lm')
const vllm = backendFor('vllm')
const where = { host: '127.0.0.1', port: 8080 }
const tail = ['--host', '127.0.0.1', '--port', '8080']

function errorOf(fn: () => unknown): string {
  try {
    fn()
  } catch (e) {
    expect(e).toBeInstanceOf(BadRequest)
    return (e as Error).message
  }
  throw new Error('expected a BadRequest')
}

describe('flag tables', () => {
  test('names are the first long spelling in snake_case; short and other spellings are aliases', () => {
    const ngl = llama.table.byName.get('gpu_layers')!
    expect(ngl.flags).toEqual(['--gpu-layers', '-ngl', '--n-gpu-layers'])
    expect(llama.table.bySpelling.get('-ngl')!.spec).toBe(ngl)
    expect(llama.table.byName.get('ctx_size')!.flags).toEqual(['--ctx-size', '-c'])
    expect(llama.table.byName.get('flash_attn')!.flags).toEqual(['--flash-attn', '-fa'])
    expect(llama.table.byName.get('model')!.flags).toEqual(['--model', '-m'])
    expect(llama.table.byName.get('kv_offload')!.negations).toEqual(['--no-kv-offload', '-nkvo'])
    expect(vllm.table.byName.get('tensor_parallel_size')!.flags).toEqual(['--tensor-parallel-size', '-tp'])
    expect(vllm.table.byName.get('enforce_eager')!.negations).toEqual(['--no-enforce-eager'])
  })
})

describe('building argv', () => {
  test('zero values and false are expressible; negated flags come from false', () => {
    expect(llama.buildArgs({ gpu_layers: 0, temp: 0, kv_offload: false, warmup: false, ctx_size: 0 }, where)).toEqual([
      '--ctx-size', '0', '--no-kv-offload', '--gpu-layers', '0', '--temp', '0', '--no-warmup', ...tail,
    ])
    expect(vllm.buildArgs({ enable_prefix_caching: false, seed: 0 }, where)).toEqual(['--seed', '0', '--no-enable-prefix-caching', ...tail])
  })

  test('false for a flag with no negation adds nothing; true adds the bare flag', () => {
    expect(llama.buildArgs({ embedding: false, metrics: true }, where)).toEqual(['--metrics', ...tail])
  })

  test('lists: llama-server gets one comma-joined flag or one flag per item; vLLM gets nargs or repeats', () => {
    expect(llama.buildArgs({ lora: ['a.gguf', 'b.gguf'], override_kv: ['x=int:1'], reverse_prompt: ['User:', 'Q:'] }, where)).toEqual([
      '--override-kv', 'x=int:1', '--lora', 'a.gguf,b.gguf', '--reverse-prompt', 'User:', '--reverse-prompt', 'Q:', ...tail,
    ])
    expect(llama.buildArgs({ lora: 'one.gguf' }, where)).toEqual(['--lora', 'one.gguf', ...tail])
    expect(vllm.buildArgs({ served_model_name: ['a', 'b'], middleware: ['m1', 'm2'] }, where)).toEqual([
      '--middleware', 'm1', '--middleware', 'm2', '--served-model-name', 'a', 'b', ...tail,
    ])
  })

  test('vLLM takes the model as its positional argument, after `serve`', () => {
    expect(vllm.subcommand).toEqual(['serve'])
    expect(vllm.buildArgs({ model: 'org/m', tensor_parallel_size: 2 }, where)).toEqual(['org/m', '--tensor-parallel-size', '2', ...tail])
    // a model that would read as a flag goes attached to --model instead
    expect(vllm.buildArgs({ model: '-odd' }, where)).toEqual(['--model=-odd', ...tail])
  })

  test('argparse backends get values starting with "-" attached; llama-server gets them as the next word', () => {
    expect(mlx.buildArgs({ temp: -0.5, chat_template: '-x' }, where)).toEqual(['--chat-template=-x', '--temp=-0.5', ...tail])
    expect(llama.buildArgs({ seed: -1, alias: '-x' }, where)).toEqual(['--seed', '-1', '--alias', '-x', ...tail])
  })

  test('two-value flags, word-or-number flags', () => {
    expect(llama.buildArgs({ control_vector_layer_range: [0, 31], gpu_layers: 'all' }, where)).toEqual([
      '--gpu-layers', 'all', '--control-vector-layer-range', '0', '31', ...tail,
    ])
  })

  test('order is the table\'s whatever the order of the options; extra_args come last, then host and port', () => {
    const a = llama.buildArgs({ temp: 0.7, model: '/m', extra_args: ['--new-flag', '1'], ctx_size: 512 }, where)
    const b = llama.buildArgs({ ctx_size: 512, extra_args: ['--new-flag', '1'], model: '/m', temp: 0.7 }, where)
    expect(a).toEqual(b)
    expect(a).toEqual(['--ctx-size', '512', '--model', '/m', '--temp', '0.7', '--new-flag', '1', ...tail])
  })

  test('host and port are llamactl\'s: options only choose them', () => {
    expect(llama.buildArgs({ host: '0.0.0.0', port: 9999 }, { host: '0.0.0.0', port: 9999 })).toEqual(['--host', '0.0.0.0', '--port', '9999'])
    expect(llama.buildArgs({ port: 1 }, where)).toEqual(tail)
  })
})

describe('validating options', () => {
  test('an unknown name is refused, pointing at extra_args', () => {
    const msg = errorOf(() => llama.validate({ model: 'x', brand_new_flag: 1 }))
    expect(msg).toContain('backend_options.brand_new_flag: llama-server has no option brand_new_flag')
    expect(msg).toContain('"extra_args": {"brand-new-flag": "value"}')
  })

  test('every spelling of a known flag is a name for it; no_<flag> is its negation', () => {
    expect(llama.buildArgs({ n_gpu_layers: 1, no_kv_offload: true, embeddings: true}, where)).toEqual([
      '--no-kv-offload', '--gpu-layers', '1', '--embedding', ...tail,
    ])
    expect(llama.buildArgs({ no_kv_offload: false }, where)).toEqual(tail)
    expect(errorOf(() => llama.validate({ no_kv_offload: true, kv_offload: true }))).toContain('no_kv_offload and kv_offload are the same option')
    // two names saying the same thing are fine (the original llamactl's form sends both)
    llama.validate({ mmap: false, no_mmap: true })
  })

  test('wrong types name the option and what it takes', () => {
    const cases: [Backend, Record<string, unknown>, string][] = [
      [llama, { ctx_size: '4096' }, 'backend_options.ctx_size: llama-server expects a whole number'],
      [llama, { ctx_size: 1.5 }, 'expects a whole number'],
      [llama, { temp: 'hot' }, 'backend_options.temp: llama-server expects a number'],
      [llama, { model: 42 }, 'backend_options.model: llama-server expects a string'],
      [llama, { metrics: 'yes' }, 'expects true or false'],
      [llama, { gpu_layers: '' }, 'expects a whole number or a word'],
      [llama, { control_vector_layer_range: [1] }, 'two whole numbers'],
      [llama, { lora: [1] }, 'a string or a list of strings'],
      [llama, { lora: ['a,b'] }, 'splits --lora at commas'],
      [llama, { ctx_size: null }, 'null is not a value'],
      [llama, { 'Bad-Key': 1 }, 'snake_case'],
      [llama, { extra_args: '--x' }, 'backend_options.extra_args: must be a list of strings'],
      [vllm, { served_model_name: ['-x'] }, 'list items cannot start with'],
      [mlx, { kv_bits: 'four' }, 'backend_options.kv_bits: mlx_lm.server expects a whole number'],
      [llama, { port: 99999 }, 'backend_options.port: llama-server expects a port number from 1 to 65535 (or 0: llamactl picks one), got 99999'],
      [mlx, { port: -1 }, 'backend_options.port: mlx_lm.server expects a port number from 1 to 65535 (or 0: llamactl picks one)'],
      [vllm, { data_parallel_rpc_port: -5 }, 'backend_options.data_parallel_rpc_port: vllm serve expects a port number from 1 to 65535'],
    ]
    for (const [backend, options, fragment] of cases) expect(errorOf(() => backend.validate(options))).toContain(fragment)
  })

  test('good options pass', () => {
    llama.validate({ model: '/m', port: 1, reuse_port: true, gpu_layers: 'all', temp: 0, kv_offload: false, lora: ['a', 'b'], extra_args: ['--x'], control_vector_layer_range: [0, 3] })
    vllm.validate({ model: 'org/m', port: 65535, hf_token: true, max_model_len: '32k', served_model_name: ['a'] })
    mlx.validate({ model: 'm', pipeline: true, prompt_cache_bytes: '20G' })
  })
})

describe('parsing a command line', () => {
  const parse = (b: Backend, cmd: string) => b.parseCommand(cmd).options

  test('the seed\'s examples', () => {
    expect(parse(llama, 'llama-server -m /path/to/model.gguf -c 2048 --port 8080')).toEqual({ model: '/path/to/model.gguf', ctx_size: 2048, port: 8080 })
    expect(parse(mlx, 'mlx_lm.server --model /path/to/model --port 8080')).toEqual({ model: '/path/to/model', port: 8080 })
    expect(parse(vllm, 'vllm serve /path/to/model --port 8080')).toEqual({ model: '/path/to/model', port: 8080 })
  })

  test('aliases, --flag=value, underscores, negations, typed values', () => {
    expect(parse(llama, '-ngl 99 --ctx_size=4096 -fa on -nkvo --no-warmup --temp 0.7 -ngld all')).toEqual({
      gpu_layers: 99, ctx_size: 4096, flash_attn: 'on', no_kv_offload: true, no_warmup: true, temp: 0.7, gpu_layers_draft: 'all',
    })
  })

  test('negative numbers are values', () => {
    expect(parse(llama, '--seed -1 --yarn-ext-factor -0.5')).toEqual({ seed: -1, yarn_ext_factor: -0.5 })
    expect(parse(vllm, 'vllm serve m --seed -1 --rope-theta -.5')).toEqual({ model: 'm', seed: -1, rope_theta: -0.5 })
  })

  test('repeated and comma-separated list flags collect into arrays; scalars keep the last', () => {
    expect(parse(llama, '--lora a --lora b,c -r User: -r Q: -c 1 -c 2')).toEqual({ lora: ['a', 'b', 'c'], reverse_prompt: ['User:', 'Q:'], ctx_size: 2 })
    expect(parse(vllm, 'vllm serve m --served-model-name a b --api-key k1 k2 -tp 2')).toEqual({
      model: 'm', served_model_name: ['a', 'b'], api_key: ['k1', 'k2'], tensor_parallel_size: 2,
    })
  })

  test('the program is optional and may be a path or an interpreter', () => {
    const expected = { model: '/m', ctx_size: 8 }
    for (const cmd of ['-m /m -c 8', 'llama-server -m /m -c 8', '/opt/llama.cpp/build/bin/llama-server -m /m -c 8']) expect(parse(llama, cmd)).toEqual(expected)
    for (const cmd of ['--model /m', 'mlx_lm.server --model /m', 'python3 -m mlx_lm.server --model /m', 'python -m mlx_lm server --model /m', 'mlx_lm server --model /m']) {
      expect(parse(mlx, cmd)).toEqual({ model: '/m' })
    }
    for (const cmd of ['vllm serve /m', '/venv/bin/vllm serve /m', 'serve /m', '/m', 'python -m vllm.entrypoints.openai.api_server --model /m']) {
      expect(parse(vllm, cmd)).toEqual({ model: '/m' })
    }
  })

  test('vLLM understands attached short values and the -O shorthand', () => {
    expect(parse(vllm, 'vllm serve m -O3 -qawq')).toEqual({ model: 'm', compilation_config: '3', quantization: 'awq' })
  })

  test('unknown flags go to extra_args with their value', () => {
    expect(parse(llama, 'llama-server -m x --brand-new 3 --other-new --no-mmap -c 4')).toEqual({
      model: 'x', ctx_size: 4, no_mmap: true, extra_args: { 'brand-new': '3', 'other-new': '' },
    })
    expect(parse(vllm, 'vllm serve m --future-flag=1 --future-bool --port 1')).toEqual({ model: 'm', port: 1, extra_args: { 'future-flag': '1', 'future-bool': '' } })
    // what a map cannot hold stays a list
    expect(parse(llama, '--zz a --zz b')).toEqual({ extra_args: ['--zz', 'a', '--zz', 'b'] })
  })

  test('leading NAME=value words are the environment', () => {
    expect(llama.parseCommand('CUDA_VISIBLE_DEVICES=0,1 HF_HOME="/data/hf x" llama-server -m x')).toEqual({
      options: { model: 'x' }, environment: { CUDA_VISIBLE_DEVICES: '0,1', HF_HOME: '/data/hf x' },
    })
  })

  test('a multi-line command pasted from a README', () => {
    const cmd = `./llama-server \\
      --model "/models/Qwen 7B/q4.gguf" \\
      --ctx-size 8192 \\
      --n-gpu-layers 99 \\
      --override-kv 'tokenizer.ggml.add_bos_token=bool:false' \\
      --jinja`
    expect(parse(llama, cmd)).toEqual({ model: '/models/Qwen 7B/q4.gguf', ctx_size: 8192, gpu_layers: 99, override_kv: ['tokenizer.ggml.add_bos_token=bool:false'], jinja: true })
  })

  test('errors: empty, unclosed quote, missing value, wrong type, value on a bool, stray word', () => {
    const cases: [Backend, string, string][] = [
      [llama, '', 'command is empty'],
      [llama, '  \\\n # just a comment', 'command is empty'],
      [llama, 'A=1', 'command is empty'],
      [llama, `llama-server -m '/unclosed`, 'unclosed single quote'],
      [llama, 'llama-server -c', '-c needs a value'],
      [llama, 'llama-server -m --port 8080', '-m needs a value'],
      [vllm, 'vllm serve m --max-num-seqs', '--max-num-seqs needs a value'],
      [vllm, 'vllm serve m --max-num-seqs --port 1', '--max-num-seqs needs a value'],
      [llama, 'llama-server -c big', '-c expects a whole number, got "big"'],
      [llama, 'llama-server --temp warm', '--temp expects a number, got "warm"'],
      [llama, 'llama-server --control-vector-layer-range 1', '--control-vector-layer-range needs a value'],
      [mlx, 'mlx_lm.server --top-k 1.5', '--top-k expects a whole number'],
      [llama, 'llama-server --metrics=1', '--metrics takes no value'],
      [llama, 'llama-server model.gguf', 'unexpected argument "model.gguf": llama-server takes no arguments without a flag'],
      [vllm, 'vllm serve a b', 'unexpected argument "b": vllm serve takes only the model without a flag'],
      [llama, 'llama-server -m x | tee log', 'shell operator "|"'],
    ]
    for (const [backend, cmd, fragment] of cases) expect([cmd, errorOf(() => backend.parseCommand(cmd))]).toEqual([cmd, expect.stringContaining(fragment)])
  })
})

/** Options a backend can take, drawn from its whole table. */
function optionsArb(backend: Backend): fc.Arbitrary<Record<string, unknown>> {
  const table = backend.table
  const word = (ok: (s: string) => boolean = () => true) => fc.string({ unit: 'grapheme' }).filter((s) => isValueWord(table, s) || (table.dialect.style === 'argparse' && s.startsWith('-'))).filter(ok)
  const int = fc.maxSafeInteger()
  const valueFor = (s: FlagSpec): fc.Arbitrary<unknown> => {
    switch (s.type) {
      case 'string':
        return word()
      case 'int':
        return isPortOption(s) ? fc.integer({ min: 1, max: 65535 }) : int
      case 'float':
        return fc.double({ noNaN: true, noDefaultInfinity: true }).map((x) => (Object.is(x, -0) ? 0 : x))
      case 'bool':
        return s.negations.length ? fc.boolean() : fc.constant(true)
      case 'int_or_string':
        return fc.oneof(int, word((w) => w !== '' && !/^[+-]?\d+$/.test(w)))
      case 'bool_or_string':
        return fc.oneof(fc.constant(true), word())
      case 'int_pair':
        return fc.tuple(int, int)
      case 'json_list':
        return fc.array(fc.string(), { maxLength: 3 }).map((items) => JSON.stringify(items))
      case 'list':
        if (s.list === 'csv') return fc.array(word((w) => !w.includes(',')), { minLength: 1, maxLength: 3 }).filter((items) => isValueWord(table, items.join(',')))
        if (s.list === 'nargs') return fc.array(word((w) => !w.startsWith('-')), { minLength: 1, maxLength: 3 })
        return fc.array(word(), { minLength: 1, maxLength: 3 })
    }
  }
  const specs = table.specs.filter((s) => s.name !== 'host' && s.name !== 'port')
  const unknownFlag = fc.stringMatching(/^--zz-[a-z]{1,8}$/)
  const extra = fc.array(fc.tuple(unknownFlag, fc.option(fc.stringMatching(/^[a-z0-9/.]{1,8}$/), { nil: undefined })), { maxLength: 3 })
  return fc
    .tuple(fc.shuffledSubarray(specs, { maxLength: 25 }).chain((chosen) => fc.tuple(...chosen.map((s) => valueFor(s).map((v) => [s.name, v] as const)))), extra)
    .map(([pairs, extras]) => {
      const options: Record<string, unknown> = Object.fromEntries(pairs)
      const extraArgs = extras.flatMap(([f, v]) => (v === undefined ? [f] : [f, v]))
      if (extraArgs.length) options.extra_args = extraArgs
      return options
    })
}

const quote = (w: string) => (/^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replaceAll("'", `'\\''`)}'`)
const PROGRAM: Record<string, string> = { llama_cpp: 'llama-server', mlx_lm: 'mlx_lm.server', vllm: 'vllm' }

describe('parse(build(options)) means options', () => {
  for (const type of BACKEND_TYPES) {
    test(type, () => {
      const backend = backendFor(type)
      fc.assert(
        fc.property(optionsArb(backend), (options) => {
          backend.validate(options)
          const argv = [PROGRAM[type]!, ...backend.subcommand, ...backend.buildArgs(options, where)]
          const parsed = backend.parseCommand(argv.map(quote).join(' ')).options
          const meaning = (o: Record<string, unknown>) => {
            const { values, extra } = effectiveOptions(backend.table, o, backend.label)
            return { values: Object.fromEntries(values), extra }
          }
          expect(meaning(parsed)).toEqual(meaning({ ...options, host: where.host, port: where.port }))
        }),
        { numRuns: 300 },
      )
    })
  }
})

describe('the backend registry is the one list of backends', () => {
  test('each backend\'s config section exists; backend_type values, parse-command routes and the form\'s menu come from it', async () => {
    const { BACKENDS } = await import('../../src/backends')
    const { SETTINGS_BY_KEY, BACKENDS: SECTIONS } = await import('../../src/config/settings')
    const { backendRoutes } = await import('../../src/http/backends')
    const { formChoices } = await import('../../src/http/page-form')
    const routes = backendRoutes(1024).routes.map((r) => `${r.method} ${r.path}`)
    for (const b of BACKENDS) {
      expect(SETTINGS_BY_KEY.get(`backends.${b.configKey}.command`)).toMatchObject({ default: SECTIONS[b.configKey].command })
      expect(routes).toContain(`POST /api/v1/backends/${b.routeName}/parse-command`)
      expect(formChoices(b.type)).toEqual({ backends: BACKENDS.map((x) => ({ type: x.type, title: x.title })), fields: b.formFields })
    }
    expect(BACKEND_TYPES).toEqual(BACKENDS.map((b) => b.type))
    expect(Object.keys(SECTIONS).sort()).toEqual(BACKENDS.map((b) => b.configKey).sort())
    expect(routes.filter((r) => r.includes('parse-command'))).toHaveLength(BACKENDS.length)
  })
})
