/**
 * MLX-LM's server: `mlx_lm.server [flags]`.
 *
 * The flag table reflects mlx_lm/server.py on mlx-lm's main branch as read in 2026 (the 0.30
 * series and the flags added after it, such as --prefill-step-size and --max-prompt-tokens).
 * MLX runs only on Apple silicon, so no test compares it with a live --help. Its flags are
 * plain argparse: booleans are store_true (no `--no-` form), sizes like --prompt-cache-bytes
 * take strings such as `20G`, --chat-template-args takes JSON.
 */
import { PORT_FIELD } from './types'
import { defineBackend } from './define'
import { type FlagSpec, opt } from './spec'

export const MLX_FLAGS: FlagSpec[] = [
  opt('--model', 'string'),
  opt('--adapter-path', 'string'),
  opt('--host', 'string'),
  opt('--port', 'int'),
  opt('--draft-model', 'string'),
  opt('--num-draft-tokens', 'int'),
  opt('--trust-remote-code', 'bool'),
  opt('--log-level', 'string'),
  opt('--chat-template', 'string'),
  opt('--use-default-chat-template', 'bool'),
  opt('--temp', 'float'),
  opt('--top-p', 'float'),
  opt('--top-k', 'int'),
  opt('--min-p', 'float'),
  opt('--max-tokens', 'int'),
  opt('--chat-template-args', 'string'),
  opt('--decode-concurrency', 'int'),
  opt('--prompt-concurrency', 'int'),
  opt('--prefill-step-size', 'int'),
  opt('--prompt-cache-size', 'int'),
  opt('--prompt-cache-bytes', 'string'),
  opt('--max-prompt-tokens', 'int'),
  opt('--prompt-overflow-policy', 'string'),
  opt('--prompt-keep-tokens', 'int'),
  opt('--max-active-kv-bytes', 'string'),
  opt('--max-active-memory-bytes', 'string'),
  opt('--max-kv-size', 'int'),
  opt('--kv-bits', 'int'),
  opt('--kv-group-size', 'int'),
  opt('--quantized-kv-start', 'int'),
  opt('--pipeline', 'bool'),
]

const PYTHON = /^python[0-9.]*$/

export const mlx = defineBackend({
  type: 'mlx_lm',
  configKey: 'mlx',
  label: 'mlx_lm.server',
  title: 'MLX-LM',
  formFields: [{ name: 'model', label: 'Model', hint: 'a path or a Hugging Face repository', numeric: false }, PORT_FIELD],
  routeName: 'mlx',
  seedKey: 'mlx_server_options',
  flags: MLX_FLAGS,
  dialect: { style: 'argparse', underscores: false, attachedShort: true },
  /** `mlx_lm.server`, `mlx_lm server`, `python -m mlx_lm.server`, `python -m mlx_lm server`, or any first bare word. */
  programLength(words) {
    const base = (w: string | undefined) => w?.split('/').pop() ?? ''
    if (PYTHON.test(base(words[0])) && words[1] === '-m') return words[2] === 'mlx_lm' && words[3] === 'server' ? 4 : 3
    if (base(words[0]) === 'mlx_lm' && words[1] === 'server') return 2
    return words[0] !== undefined && !words[0].startsWith('-') ? 1 : 0
  },
})
