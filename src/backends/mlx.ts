import { type Backend } from './types'
import { buildFlags, flag, type FlagSpec, validateAgainst } from './spec'

const SPECS: FlagSpec[] = [
  flag('model', 'string'),
  flag('adapter_path', 'string'),
  flag('trust_remote_code', 'bool'),
  flag('log_level', 'string'),
  flag('chat_template', 'string'),
  flag('use_default_chat_template', 'bool'),
  flag('temp', 'float'),
  flag('top_p', 'float'),
  flag('top_k', 'int'),
  flag('max_tokens', 'int'),
]

export const mlx: Backend = {
  type: 'mlx_lm',
  configKey: 'mlx',
  healthPath: '/health',
  specs: new Map(SPECS.map((s) => [s.name, s])),
  validate(options) {
    validateAgainst(this.specs, options, 'mlx_lm.server')
  },
  buildArgs(options, { host, port }) {
    const { host: _h, port: _p, ...rest } = options
    return [...buildFlags(this.specs, rest), '--host', host, '--port', String(port)]
  },
}
