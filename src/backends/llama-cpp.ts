/** llama.cpp's llama-server; its flags are in llama-cpp-flags.ts. */
import { defineBackend, firstWordIsProgram } from './define'
import { LLAMA_SERVER_FLAGS } from './llama-cpp-flags'

export const llamaCpp = defineBackend({
  type: 'llama_cpp',
  configKey: 'llama-cpp',
  label: 'llama-server',
  routeName: 'llama-cpp',
  seedKey: 'llama_server_options',
  flags: LLAMA_SERVER_FLAGS,
  dialect: { style: 'llama', underscores: true, attachedShort: false },
  readsHelp: true,
  // llama-server takes no bare words, so a first one is the program: llama-server, ./build/bin/llama-server, …
  programLength: firstWordIsProgram,
})
