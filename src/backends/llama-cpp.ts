import { type Backend } from './types'
import { buildFlags, flag, type FlagSpec, validateAgainst } from './spec'

const SPECS: FlagSpec[] = [
  flag('model', 'string', ['-m']),
  flag('alias', 'string', ['-a']),
  flag('ctx_size', 'int', ['-c']),
  flag('gpu_layers', 'int', ['-ngl', '--n-gpu-layers']),
  flag('threads', 'int', ['-t']),
  flag('batch_size', 'int', ['-b']),
  flag('parallel', 'int', ['-np']),
  flag('embeddings', 'bool', ['--embedding']),
  flag('reranking', 'bool', ['--rerank']),
  flag('flash_attn', 'string', ['-fa']),
  flag('mmap', 'bool', [], '--no-mmap'),
  flag('lora', 'list'),
  flag('override_kv', 'list'),
  flag('api_key', 'string'),
]

export const llamaCpp: Backend = {
  type: 'llama_cpp',
  configKey: 'llama-cpp',
  healthPath: '/health',
  specs: new Map(SPECS.map((s) => [s.name, s])),
  validate(options) {
    validateAgainst(this.specs, options, 'llama-server')
  },
  buildArgs(options, { host, port }) {
    const { host: _h, port: _p, ...rest } = options
    return [...buildFlags(this.specs, rest), '--host', host, '--port', String(port)]
  },
}
