/** llamactl's own process with an original-style config: what start-up says, --print-config, and .env reaching backends. */
import { afterAll, expect, test } from 'bun:test'
import { Database } from 'bun:sqlite'
import { readFileSync, writeFileSync } from 'node:fs'
import { platform } from 'node:os'
import { join } from 'node:path'
import { BUN, tempDir } from '../helpers'
import { llamactlEnv, MAIN, type Running, startLlamactl } from './process'

const running: Running[] = []
afterAll(async () => {
  for (const r of running) if (r.proc.exitCode === null) await r.stop('SIGTERM')
})

const CONFIG = `
instances:
  llama_executable: \${LLAMA_BIN}
backends:
  llama-cpp:
    environment:
      FROM_CONFIG: \${DOTENV_ONLY:-unset}
`

test('start-up names the old spelling, once, and no key as unused; .env reaches the config and the backends', async () => {
  const dir = tempDir()
  writeFileSync(join(dir, 'config.yaml'), CONFIG)
  writeFileSync(join(dir, '.env'), `LLAMA_BIN=${BUN}\nDOTENV_ONLY=from-dotenv\n`)
  // Not the helper's LLAMACTL_LLAMACPP_COMMAND: the command must come from the file's old key.
  const r = await startLlamactl(dir, { env: { LLAMACTL_LLAMACPP_COMMAND: '' } })
  running.push(r)
  const lines = r.output().split('\n')
  expect(lines.filter((l) => l.includes("'instances.llama_executable' is the old name of 'backends.llama-cpp.command'"))).toHaveLength(1)
  // Every key is used now (instances_dir holds router presets since issue 18): none is said to be unused.
  expect(lines.filter((l) => l.includes('is read and checked but not used yet'))).toEqual([])
  expect(r.output()).toContain(`.env: ${join(dir, '.env')}`)
  const created = await r.api('POST', '/api/v1/instances/envcheck', { backend_options: { model: 'x' } })
  expect(created.body.status).toBe('running')
  const config = await r.api('GET', '/api/v1/config')
  expect(config.body.backends['llama-cpp'].command).toBe(BUN)
  expect(config.body.backends['llama-cpp'].environment).toEqual({ FROM_CONFIG: 'from-dotenv' })
  expect(config.body.auth.management_keys).toEqual([])
  if (platform() === 'linux') {
    // What .env added is llamactl's environment, so the backend inherits it (as in the original).
    const db = new Database(join(dir, 'llamactl.db'), { readonly: true })
    const { pid } = db.query<{ pid: number }, []>("SELECT pid FROM backend_processes WHERE instance = 'envcheck'").get()!
    db.close()
    const environ = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')
    expect(environ).toContain('DOTENV_ONLY=from-dotenv')
    expect(environ).toContain('FROM_CONFIG=from-dotenv')
  }
  expect(await r.stop('SIGTERM')).toBe(0)
})

test('--print-config prints the effective configuration, masked, and exits', async () => {
  const dir = tempDir()
  writeFileSync(join(dir, 'config.yaml'), 'auth:\n  management_keys: [printed-secret]\nserver:\n  port: ${P:-9123}\n')
  const proc = Bun.spawn([BUN, MAIN, '--print-config'], { cwd: dir, env: { ...llamactlEnv(dir), LLAMACTL_MANAGEMENT_KEYS: '' }, stdout: 'pipe', stderr: 'pipe' })
  const [out, code] = await Promise.all([new Response(proc.stdout).text(), proc.exited])
  expect(code).toBe(0)
  expect(out).not.toContain('printed-secret')
  expect(out).toMatch(/^server\.port = 9123 +# file .*config\.yaml$/m)
  expect(out).toMatch(/^auth\.management_keys = \["\(set\)"\] +# file /m)
  expect(out).not.toContain('listening')
})
