/**
 * The original llamactl's instance JSON as its web UI sends it: `nodes`, `group`, `preset_ini`
 * and `extra_args` as a map are taken, kept and answered; what cannot work yet (a remote node)
 * is a 400 that says so.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { type Harness, harness } from '../helpers'

let h: Harness
beforeAll(async () => {
  h = await harness()
})
afterAll(async () => {
  await h.close()
})

describe('the original llamactl\'s instance fields', () => {
  test('nodes ["main"], group and preset_ini are kept and answered; extra_args as a map reaches argv', async () => {
    const preset = '; router presets\n[tiny]\nmodel = /m/tiny.gguf\nctx-size = 512\n'
    const body = {
      backend_type: 'llama_cpp',
      backend_options: { model: 'load-5', no_webui: true, extra_args: { 'log-file': '/tmp/x.log', 'log-timestamps': '' } },
      nodes: ['main'],
      group: 'large-models',
      preset_ini: preset,
    }
    const res = await h.json('POST', '/api/v1/instances/orig', body)
    expect([res.status, res.body.error]).toEqual([201, null])
    expect(res.body.options).toMatchObject({ nodes: ['main'], group: 'large-models', preset_ini: preset, backend_options: body.backend_options })
    const stored = JSON.parse(h.store.getInstance('orig')!.options)
    expect(stored).toMatchObject({ nodes: ['main'], group: 'large-models', preset_ini: preset })
    const argv = h.manager.get('orig').log.tail().find((l) => l.includes('starting: '))!
    expect(argv).toContain('--no-ui --log-file /tmp/x.log --log-timestamps --host')
    await h.json('DELETE', '/api/v1/instances/orig')
  })

  test('what cannot be taken is a 400 naming the field', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ nodes: ['gpu-box'] }, 'nodes: "gpu-box" is not a configured node; the nodes are "main"'],
      [{ nodes: [] }, 'nodes'],
      [{ nodes: ['main', 'main'] }, 'nodes: a node is given twice'],
      [{ nodes: 'main' }, 'nodes'],
      [{ nodes: ['no spaces'] }, 'nodes'],
      [{ group: '' }, 'group'],
      [{ preset_ini: '[tiny]\nthis is not ini\n' }, 'preset_ini: line 2'],
      [{ backend_options: { extra_args: { 'two words': 'x' } } }, 'backend_options.extra_args.two words'],
      [{ backend_options: { extra_args: { flag: 1 } } }, 'backend_options.extra_args.flag: must be a string'],
      [{ backend_options: { extra_args: 'x' } }, 'a map of flags to values'],
    ]
    for (const [body, fragment] of cases) {
      const res = await h.json('POST', '/api/v1/instances/refused', { backend_options: { model: 'x' }, ...body, ...(body.backend_options ? { backend_options: { model: 'x', ...(body.backend_options as object) } } : {}) })
      expect([JSON.stringify(body), res.status]).toEqual([JSON.stringify(body), 400])
      expect(res.body.error).toContain(fragment)
    }
    expect(h.manager.list().map((i) => i.name)).not.toContain('refused')
  })
})
