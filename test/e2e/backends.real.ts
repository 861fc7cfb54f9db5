import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { backendFor } from '../../src/backends'
import { helpSpellings } from '../../src/backends/capabilities'
import { LLAMA_SERVER_IGNORED } from '../../src/backends/llama-cpp-flags'
import { type Harness, harness } from '../helpers'
import { realEnv, realLlama } from './real'

const { server, model } = realLlama()
const llama = backendFor('llama_cpp')

interface HelpEntry {
  spellings: string[]
  /** What the help shows after the spellings: `N`, `FNAME`, `START END`, or '' for a bare flag. */
  hint: string
}

/**
 * The entries of `llama-server --help`: lines that start with a flag. The flags and their value
 * take the first 40 columns when the description follows on the same line, else the whole line.
 */
function helpEntries(help: string): HelpEntry[] {
  const entries: HelpEntry[] = []
  for (const line of help.split('\n')) {
    if (!line.startsWith('-') || line.startsWith('-----')) continue
    const head = line.length > 40 && line[39] === ' ' && line[40] !== ' ' ? line.slice(0, 40).trimEnd() : line.trimEnd()
    const spellings: string[] = []
    let hint = ''
    for (const piece of head.split(/,\s+/)) {
      const [first, ...rest] = piece.trim().split(/\s+/)
      if (hint || !first!.startsWith('-')) {
        hint += `,${piece}`
        continue
      }
      spellings.push(first!)
      if (rest.length) hint = rest.join(' ')
    }
    entries.push({ spellings, hint })
  }
  return entries
}

let help = ''
let h: Harness
beforeAll(async () => {
  const proc = Bun.spawnSync([server, '--help'], { stdout: 'pipe', stderr: 'pipe' })
  expect(proc.exitCode).toBe(0)
  help = proc.stdout.toString()
  h = await harness(realEnv())
})
afterAll(async () => {
  await h.close()
})

describe('the llama-server flag table against the real llama-server --help', () => {
  test('every flag in --help is in the table or on the ignore list', () => {
    const entries = helpEntries(help)
    expect(entries.length).toBeGreaterThan(200)
    const missing = entries.flatMap((e) => e.spellings).filter((s) => !llama.table.bySpelling.has(s) && !(s in LLAMA_SERVER_IGNORED))
    expect(missing).toEqual([])
  })

  test('every spelling of the table\'s release is one --help shows (none is stale); other releases\' are not understood', () => {
    const shown = new Set(helpEntries(help).flatMap((e) => e.spellings))
    const current = llama.table.specs.filter((s) => !s.removed).flatMap((s) => [...s.flags, ...s.negations])
    expect(current.filter((s) => !shown.has(s))).toEqual([])
    // what llamactl reads from this --help: exactly the table's release
    const understood = helpSpellings(help)
    const others = llama.table.specs.flatMap((s) => (s.removed ? [...s.flags, ...s.negations] : [...s.was, ...s.wasNegations]))
    expect(others.filter((s) => understood.has(s))).toEqual([])
    expect(current.filter((s) => !understood.has(s))).toEqual([])
    expect(Object.keys(LLAMA_SERVER_IGNORED).filter((s) => !shown.has(s))).toEqual([])
  })

  test('bool options are exactly the flags that take no value; two-value flags take two', () => {
    const wrong: string[] = []
    for (const e of helpEntries(help)) {
      const spec = e.spellings.map((s) => llama.table.bySpelling.get(s)?.spec).find(Boolean)
      if (!spec) continue
      const takesValue = e.hint !== ''
      if ((spec.type === 'bool') === takesValue) wrong.push(`${spec.name}: ${spec.type}, help shows ${JSON.stringify(e.hint)}`)
      if (spec.type === 'int_pair' && e.hint.split(/\s+/).length !== 2) wrong.push(`${spec.name}: int_pair, help shows ${JSON.stringify(e.hint)}`)
      // every spelling of one help entry belongs to the same option
      const names = new Set(e.spellings.filter((s) => llama.table.bySpelling.has(s)).map((s) => llama.table.bySpelling.get(s)!.spec.name))
      if (names.size > 1) wrong.push(`${e.spellings.join(', ')}: split over ${[...names].join(', ')}`)
    }
    expect(wrong).toEqual([])
  })
})

describe('the real llama-server takes what llamactl builds', () => {
  test('a parsed command line, POSTed as it is, runs', async () => {
    const command = `llama-server -m '${model}' -c 256 -t 1 -np 1 -ngl 0 --no-warmup -nkvo --temp 0 --seed 42 --reverse-prompt 'User:' -r 'Q:' --override-kv tokenizer.ggml.add_bos_token=bool:false --metrics --no-slots -a tiny`
    const parsed = await h.json('POST', '/api/v1/backends/llama-cpp/parse-command', { command })
    expect(parsed.status).toBe(200)
    expect(parsed.body.backend_options).toMatchObject({ ctx_size: 256, threads: 1, gpu_layers: 0, no_warmup: true, no_kv_offload: true, temp: 0, no_slots: true })
    const created = await h.json('POST', '/api/v1/instances/parsed?wait=ready', parsed.body)
    expect(created.status).toBe(201)
    expect(created.body.status).toBe('running')
    const port = created.body.port
    expect((await fetch(`http://127.0.0.1:${port}/metrics`)).status).toBe(200)
    const models = (await (await fetch(`http://127.0.0.1:${port}/v1/models`)).json()) as { data: { id: string }[] }
    expect(models.data.map((m) => m.id)).toContain('tiny')
    await h.json('DELETE', '/api/v1/instances/parsed')
  })

  test('zero values, negations, lists and extra_args reach it in a form it accepts', async () => {
    const created = await h.json('POST', '/api/v1/instances/wide?wait=ready', {
      backend_options: {
        model, ctx_size: 256, threads: 1, parallel: 1, batch_size: 64, ubatch_size: 64, gpu_layers: 0, keep: 0,
        kv_offload: false, warmup: false, cache_prompt: false, cont_batching: false, jinja: false, context_shift: true,
        temp: 0, top_k: 0, min_p: 0, repeat_penalty: 1, seed: -1, dry_sequence_breaker: ['\n', ':'],
        logit_bias: ['15043+1', '15044-1'], override_kv: ['tokenizer.ggml.add_bos_token=bool:false', 'tokenizer.ggml.add_eos_token=bool:false'],
        extra_args: ['--props'],
      },
    })
    expect([created.status, created.body.status, created.body.error]).toEqual([201, 'running', null])
    const logs = await (await h.request('GET', '/api/v1/instances/wide/logs')).text()
    expect(logs).toContain('--no-kv-offload')
    expect(logs).toContain('--override-kv tokenizer.ggml.add_bos_token=bool:false,tokenizer.ggml.add_eos_token=bool:false')
    await h.json('DELETE', '/api/v1/instances/wide')
  })
})

describe('the original llamactl\'s option names on the real llama-server', () => {
  test('older spellings are translated to what this release understands; a removed flag is a 400', async () => {
    const created = await h.json('POST', '/api/v1/instances/original', {
      backend_options: { model, ctx_size: 256, threads: 1, parallel: 1, no_mmap: true, no_webui: true, draft_max: 2, extra_args: { props: '' } },
      nodes: ['main'],
    })
    expect([created.status, created.body.status, created.body.error]).toEqual([201, 'running', null])
    const logs = await (await h.request('GET', '/api/v1/instances/original/logs')).text()
    expect(logs).toContain('--load-mode none')
    expect(logs).toContain('--spec-draft-n-max 2')
    expect(logs).toContain('--no-ui')
    await h.json('DELETE', '/api/v1/instances/original')
    const gone = await h.json('POST', '/api/v1/instances/gone', { backend_options: { model, verbose_prompt: true } })
    expect([gone.status, gone.body.error]).toEqual([400, expect.stringContaining('newer llama.cpp releases removed it')])
  })
})

describe('server info endpoints against the real llama-server', () => {
  test('help, version and devices answer its text', async () => {
    const helpRes = await h.request('GET', '/api/v1/server/help')
    expect(helpRes.status).toBe(200)
    const text = await helpRes.text()
    expect(text).toContain('--ctx-size')
    expect(text).toBe(help)
    const version = await (await h.request('GET', '/api/v1/server/version')).text()
    expect(version).toMatch(/^version: \S+ \(build \d+, commit \w+\)\nbuilt with /)
    const devices = await (await h.request('GET', '/api/v1/server/devices')).text()
    expect(devices).toStartWith('Available devices:')
  })
})
