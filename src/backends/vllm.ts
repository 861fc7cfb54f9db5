import { type Backend } from './types'
import { buildFlags, flag, type FlagSpec, validateAgainst } from './spec'

const SPECS: FlagSpec[] = [
  flag('model', 'string'),
  flag('tensor_parallel_size', 'int', ['-tp']),
  flag('gpu_memory_utilization', 'float'),
  flag('max_model_len', 'int'),
  flag('served_model_name', 'list'),
  flag('dtype', 'string'),
  flag('quantization', 'string', ['-q']),
  flag('enforce_eager', 'bool'),
]

export const vllm: Backend = {
  type: 'vllm',
  configKey: 'vllm',
  healthPath: '/health',
  specs: new Map(SPECS.map((s) => [s.name, s])),
  validate(options) {
    validateAgainst(this.specs, options, 'vllm serve')
  },
  // `vllm serve MODEL …`: the model is positional.
  buildArgs(options, { host, port }) {
    const { host: _h, port: _p, model, ...rest } = options
    const head = model === undefined ? ['serve'] : ['serve', String(model)]
    return [...head, ...buildFlags(this.specs, rest), '--host', host, '--port', String(port)]
  },
}
