/** Where the real llama-server and tiny model are (scripts/test-real.sh builds them and sets LLAMA_SERVER_DIR). */
import { existsSync } from 'node:fs'
import { join } from 'node:path'

export function realLlama(): { server: string; model: string; moe: string } {
  const dir = process.env.LLAMA_SERVER_DIR
  if (!dir) throw new Error('LLAMA_SERVER_DIR is not set: run this suite with `npm run test:real`, which builds llama-server')
  const server = join(dir, 'bin', 'llama-server')
  const model = join(dir, 'models', 'tiny-llama.gguf')
  // A second model, with mixture-of-experts layers (router and estimate tests).
  const moe = join(dir, 'models', 'tiny-llama-moe.gguf')
  for (const p of [server, model, moe]) if (!existsSync(p)) throw new Error(`${p} is missing: run scripts/build-llama-server.sh`)
  return { server, model, moe }
}

/** Settings for llamactl that run the real llama-server. */
export function realEnv(): Record<string, string> {
  return { LLAMACTL_LLAMACPP_COMMAND: realLlama().server, LLAMACTL_LLAMACPP_ARGS: '' }
}
