/** llama.cpp's llama-server; its flags are in llama-cpp-flags.ts. */
import { PORT_FIELD } from './types'
import { defineBackend, firstWordIsProgram } from './define'
import { LLAMA_SERVER_FLAGS } from './llama-cpp-flags'

export const llamaCpp = defineBackend({
  type: 'llama_cpp',
  configKey: 'llama-cpp',
  label: 'llama-server',
  title: 'llama.cpp (llama-server)',
  formFields: [
    { name: 'model', label: 'Model path', hint: 'a .gguf file', numeric: false },
    { name: 'ctx_size', label: 'Context size', hint: 'tokens; empty: the model\'s default', numeric: true },
    { name: 'gpu_layers', label: 'GPU layers', hint: 'layers to offload; 99 for all', numeric: true },
    PORT_FIELD,
  ],
  routeName: 'llama-cpp',
  seedKey: 'llama_server_options',
  flags: LLAMA_SERVER_FLAGS,
  dialect: { style: 'llama', underscores: true, attachedShort: false },
  readsHelp: true,
  // llama-server takes no bare words, so a first one is the program: llama-server, ./build/bin/llama-server, …
  programLength: firstWordIsProgram,
  // Its --parallel defaults to -1 (auto: 4 slots in recent releases); /props says what it chose.
  slots: {
    path: '/props',
    read: (body) => {
      const n = (body as { total_slots?: unknown } | null)?.total_slots
      return typeof n === 'number' && Number.isInteger(n) && n > 0 ? n : null
    },
  },
})
