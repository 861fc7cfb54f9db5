/**
 * Users run many llama.cpp releases, whose llama-server spells some flags differently or lacks
 * them. llamactl reads the configured binary's --help and builds argv in its spellings; an
 * option it cannot take is a 400 naming the difference. The fake llama-server stands in for
 * two releases: the flag table's own, and with `--fake-older-release` an older one (`--mmap`,
 * `--draft-max`, no `--load-mode`).
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { chmodSync, readFileSync, utimesSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { helpSpellings, learnFlags, understoodBy } from '../../src/backends/capabilities'
import { FAKE_SERVER, type Harness, harness, tempDir } from '../helpers'

let current: Harness
let older: Harness
beforeAll(async () => {
  current = await harness()
  older = await harness({ LLAMACTL_LLAMACPP_ARGS: `${FAKE_SERVER} --fake-older-release` })
})
afterAll(async () => {
  await current.close()
  await older.close()
})

async function argvOf(h: Harness, name: string, backend_options: Record<string, unknown>) {
  const res = await h.json('POST', `/api/v1/instances/${name}`, { backend_options: { model: 'load-5', ...backend_options } })
  expect([res.status, res.body.error]).toEqual([201, null])
  const line = h.manager.get(name).log.tail().find((l) => l.includes('starting: '))!
  await h.json('DELETE', `/api/v1/instances/${name}`)
  return line.slice(line.indexOf('starting: ') + 'starting: '.length)
}

describe('a llama-server of the flag table\'s release', () => {
  test('older spellings reach it in its own: --no-mmap as --load-mode none, --draft-max as --spec-draft-n-max', async () => {
    const argv = await argvOf(current, 'newer', { no_mmap: true, draft_max: 4, model_draft: '/d.gguf', no_webui: true })
    expect(argv).toContain('--load-mode none')
    expect(argv).toContain('--spec-draft-n-max 4')
    expect(argv).toContain('--spec-draft-model /d.gguf')
    expect(argv).toContain('--no-ui')
    expect(argv).not.toContain('--no-mmap')
  })

  test('an option it no longer has is a 400 that says so, at create, not a start failure', async () => {
    const res = await current.json('POST', '/api/v1/instances/gone', { backend_options: { model: 'x', verbose_prompt: true } })
    expect(res.status).toBe(400)
    expect(res.body.error).toContain('backend_options.verbose_prompt:')
    expect(res.body.error).toContain('understands none of --verbose-prompt')
    expect(res.body.error).toContain('newer llama.cpp releases removed it')
    expect(current.manager.list().map((i) => i.name)).not.toContain('gone')
  })

  test('two old options that become one new one with different values: a 400 that says which to give', async () => {
    const res = await current.json('POST', '/api/v1/instances/both', { backend_options: { model: 'x', no_mmap: true, mlock: true } })
    expect(res.status).toBe(400)
    expect(res.body.error).toContain('give load_mode yourself')
  })
})

describe('a llama-server of an older release', () => {
  test('the table\'s spellings reach it in its own: --draft-max, --no-mmap, --mlock', async () => {
    const argv = await argvOf(older, 'older', { spec_draft_n_max: 4, no_mmap: true, mlock: true })
    expect(argv).toContain('--draft-max 4')
    expect(argv).toContain('--no-mmap')
    expect(argv).toContain('--mlock')
    expect(argv).not.toContain('--load-mode')
  })

  test('a flag that was a bare switch there gets the switch for the values that mean it; other values are a 400', async () => {
    expect(await argvOf(older, 'fa-on', { flash_attn: 'on' })).toContain('--flash-attn --model')
    expect(await argvOf(older, 'fa-auto', { flash_attn: 'auto' })).not.toContain('--flash-attn')
    expect(await argvOf(current, 'fa-new', { flash_attn: 'auto' })).toContain('--flash-attn auto')
    const res = await older.json('POST', '/api/v1/instances/fa-odd', { backend_options: { model: 'x', flash_attn: 'sometimes' } })
    expect([res.status, res.body.error]).toEqual([400, expect.stringContaining('--flash-attn is a switch that takes no value')])
  })

  test('a flag added after its release is a 400 naming it', async () => {
    const res = await older.json('POST', '/api/v1/instances/new-flag', { backend_options: { model: 'x', load_mode: 'none' } })
    expect(res.status).toBe(400)
    expect(res.body.error).toContain('backend_options.load_mode:')
    expect(res.body.error).toContain('understands none of --load-mode')
    expect(res.body.error).toContain('its release does not have the flag')
  })

  test('an update is checked the same way', async () => {
    expect((await older.json('POST', '/api/v1/instances/upd', { backend_options: { model: 'x' }, on_demand_start: true })).status).toBe(201)
    const res = await older.json('PUT', '/api/v1/instances/upd', { backend_options: { model: 'x', load_mode: 'mmap' } })
    expect(res.status).toBe(400)
    expect(res.body.error).toContain('understands none of --load-mode')
    await older.json('DELETE', '/api/v1/instances/upd')
  })
})

describe('reading --help', () => {
  test('spellings come from the flag column; flags it calls removed are not understood', () => {
    const help = [
      '----- common params -----',
      '',
      '-c,    --ctx-size N                     size of the prompt context (mentions --not-a-flag)',
      '--draft, --draft-n, --draft-max N       the argument has been removed. use --spec-draft-n-max',
      '                                        or --spec-ngram-mod-n-max',
      '--spec-draft-type-k, -ctkd, --cache-type-k-draft TYPE',
      '                                        KV cache data type for K for the draft model',
      '-kvo,  --kv-offload, -nkvo, --no-kv-offload',
      '                                        whether to enable KV cache offloading',
    ].join('\n')
    expect([...helpSpellings(help)].sort()).toEqual(
      [
        ['-c', true], ['--ctx-size', true], ['--spec-draft-type-k', true], ['-ctkd', true], ['--cache-type-k-draft', true],
        ['-kvo', false], ['--kv-offload', false], ['-nkvo', false], ['--no-kv-offload', false],
      ].sort() as [string, boolean][],
    )
  })

  test('once per binary, off the event loop: read again only when the file changes; a binary that gives no help is unknown', async () => {
    const dir = tempDir()
    const count = join(dir, 'count')
    const bin = join(dir, 'llama-server')
    writeFileSync(count, '')
    writeFileSync(bin, `#!/bin/sh\necho run >> '${count}'\nprintf -- '-m,    --model FNAME                    model\\n--port PORT                             port\\n'\n`)
    chmodSync(bin, 0o755)
    const runs = () => readFileSync(count, 'utf8').split('\n').filter(Boolean).length
    // not learnt yet: nothing is known, and nothing ran while answering
    expect(understoodBy(bin)).toBeNull()
    expect(runs()).toBe(0)
    // three at once share one run
    await Promise.all([learnFlags(bin), learnFlags(bin), learnFlags(bin)])
    expect(understoodBy(bin)?.has('--model')).toBe(true)
    expect(understoodBy(bin)?.has('--port')).toBe(true)
    await learnFlags(bin)
    expect(runs()).toBe(1)
    utimesSync(bin, new Date(), new Date(Date.now() + 5000))
    expect(understoodBy(bin)).toBeNull()
    await learnFlags(bin)
    expect(understoodBy(bin)?.has('--model')).toBe(true)
    expect(runs()).toBe(2)

    const mute = join(dir, 'mute')
    writeFileSync(mute, '#!/bin/sh\necho nothing to see\n')
    chmodSync(mute, 0o755)
    await learnFlags(mute)
    await learnFlags(join(dir, 'missing'))
    expect(understoodBy(mute)).toBeNull()
    expect(understoodBy(join(dir, 'missing'))).toBeNull()
  })
})
