/** Which files a download takes (src/models/download-plan.ts) and how repo strings and hub file names are checked (src/models/cache.ts). */
import { describe, expect, test } from 'bun:test'
import { checkRelative, ggufName, parseRepo } from '../../src/models/cache'
import { planDownload, type TreeFile } from '../../src/models/download-plan'

const tree = (...paths: string[]): TreeFile[] => paths.map((path) => ({ path, size: 1, oid: 'a'.repeat(40) }))
const take = (t: TreeFile[], tag: string, format: 'gguf' | 'safetensors' = 'gguf') => planDownload(t, format, tag, 'o/r').files.map((f) => f.path)

describe('GGUF: the tag', () => {
  test('llama.cpp\'s rule first (the tag then . or -), the original\'s substring rule when that finds nothing', () => {
    const t = tree('m-Q4_0.gguf', 'm-Q4_0_4_4.gguf', 'm-Q4_K_M.gguf', 'm-Q4_K_S.gguf')
    expect(take(t, 'Q4_0')).toEqual(['m-Q4_0.gguf'])
    expect(take(t, 'q4_k_m')).toEqual(['m-Q4_K_M.gguf'])
    expect(take(t, 'Q4_K')).toEqual(['m-Q4_K_M.gguf', 'm-Q4_K_S.gguf'])
    expect(() => take(t, 'Q2_K')).toThrow('matches the tag "Q2_K"')
  })

  test('no tag: Q4_K_M, then Q4_0, then the first model file; projectors are never the model', () => {
    expect(take(tree('mmproj-Q4_K_M.gguf', 'm-Q8_0.gguf', 'm-Q4_K_M.gguf'), '')).toEqual(['m-Q4_K_M.gguf', 'mmproj-Q4_K_M.gguf'])
    expect(take(tree('m-Q8_0.gguf', 'm-Q4_0.gguf'), '')).toEqual(['m-Q4_0.gguf'])
    expect(take(tree('m-F16.gguf', 'm-Q8_0.gguf'), '')).toEqual(['m-F16.gguf'])
    expect(() => take(tree('mmproj-F16.gguf', 'README.md'), '')).toThrow('no GGUF model file')
  })

  test('a split model is taken whole, in order, from whichever part the tag finds', () => {
    const t = tree('x/m-Q8_0-00002-of-00002.gguf', 'x/m-Q8_0-00001-of-00002.gguf', 'x/m-Q4_K_M.gguf')
    expect(take(t, 'Q8_0')).toEqual(['x/m-Q8_0-00001-of-00002.gguf', 'x/m-Q8_0-00002-of-00002.gguf'])
    expect(planDownload(t, 'gguf', 'Q8_0', 'o/r').main).toBe('x/m-Q8_0-00001-of-00002.gguf')
    expect(ggufName('m-Q8_0-00002-of-00002.gguf')).toEqual({ prefix: 'm-Q8_0', tag: 'Q8_0', index: 2, count: 2 })
  })

  test('the projector: the model\'s folder (or above) and the closest bits', () => {
    const t = tree('a/m-Q8_0.gguf', 'a/mmproj-F16.gguf', 'a/mmproj-Q8_0.gguf', 'b/mmproj-Q8_0.gguf', 'mmproj-F32.gguf')
    expect(take(t, 'Q8_0')).toEqual(['a/m-Q8_0.gguf', 'a/mmproj-Q8_0.gguf'])
    expect(take(tree('m-Q4_K_M.gguf', 'b/mmproj-Q4_0.gguf'), '')).toEqual(['m-Q4_K_M.gguf'])
  })
})

test('safetensors: weights (or .bin), and the small files a model needs', () => {
  expect(take(tree('w.safetensors', 'w.bin', 'config.json', 'README.md', '.gitattributes', 'tok.model', 'chat.jinja', 'x.py', 'vocab.txt'), '', 'safetensors').sort()).toEqual(
    ['chat.jinja', 'config.json', 'tok.model', 'vocab.txt', 'w.safetensors', 'x.py'].sort(),
  )
  expect(take(tree('w.bin', 'config.json'), '', 'safetensors')).toEqual(['w.bin', 'config.json'])
  expect(() => take(tree('config.json'), '', 'safetensors')).toThrow('no .safetensors (or .bin) weights')
})

describe('checks', () => {
  test('repo strings: org/name[:tag] as llama.cpp takes them', () => {
    expect(parseRepo('bartowski/Llama-3.2-3B-Instruct-GGUF:Q4_K_M')).toEqual({ repo: 'bartowski/Llama-3.2-3B-Instruct-GGUF', tag: 'Q4_K_M' })
    expect(parseRepo('meta-llama/Llama-3.2-3B')).toEqual({ repo: 'meta-llama/Llama-3.2-3B', tag: '' })
    for (const bad of ['', 'a', 'a/b/c', '/a', 'a/', 'a/.b', 'a/b.', 'a--x/b', 'a/b:', 'a/b:x y', 'a/b:-x', 'a b/c', 'a/b\u0000']) {
      expect(() => parseRepo(bad)).toThrow()
    }
  })

  test('hub file names: nothing that leaves the snapshot', () => {
    expect(checkRelative('sub/dir/m-Q4_K_M.gguf')).toBe('sub/dir/m-Q4_K_M.gguf')
    for (const bad of ['../x.gguf', 'a/../../x', '/etc/passwd', 'C:/x', 'a\\\\..\\\\x', 'a//b', './a', 'a/./b', '', 'a\u0000b', 'a\nb']) {
      expect(() => checkRelative(bad)).toThrow('refuses to write')
    }
  })
})

describe('settings', () => {
  test('HF_ENDPOINT and HF_TOKEN are read (the LLAMACTL_ names win); the token is masked in the config view', async () => {
    const { loadConfig } = await import('../../src/config/load')
    const { configView } = await import('../../src/config/view')
    const token = 'hf_settingsTestToken0123456789abcdefghij'
    const { config } = loadConfig({ env: { HF_ENDPOINT: 'http://mirror.local', HF_TOKEN: token, LLAMA_CACHE: '/m/cache' }, cwd: '/tmp', home: '/tmp' })
    expect(config.backends['llama-cpp']).toMatchObject({ hf_endpoint: 'http://mirror.local', hf_token: token, cache_dir: '/m/cache' })
    expect(JSON.stringify(configView(config))).not.toContain(token)
    const both = loadConfig({ env: { HF_ENDPOINT: 'http://a', LLAMACTL_HF_ENDPOINT: 'http://b' }, cwd: '/tmp', home: '/tmp' }).config
    expect(both.backends['llama-cpp'].hf_endpoint).toBe('http://b')
    const none = loadConfig({ env: {}, cwd: '/tmp', home: '/home/u' }).config
    expect(none.backends['llama-cpp']).toMatchObject({ hf_endpoint: 'https://huggingface.co', hf_token: '', cache_dir: '/home/u/.cache/llama.cpp' })
  })
})
