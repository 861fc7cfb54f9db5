import { describe, expect, test } from 'bun:test'
import { chmodSync, readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { BackendProcess } from '../../src/supervisor/backend-process'
import { LogSink } from '../../src/supervisor/log-sink'
import { processStartTime } from '../../src/supervisor/os-process'
import { BUN, FAKE_SERVER, tempDir, waitFor } from '../helpers'

const memoryLog = () => new LogSink({ file: null, maxFileBytes: 1 << 20, maxFiles: 1, rotate: false, tailLines: 100 })
const env = { PATH: process.env.PATH ?? '/usr/bin:/bin' }

describe('the start gate', () => {
  test('the backend runs only after open(); same pid and start time as the spawned gate', async () => {
    const log = memoryLog()
    const p = BackendProcess.spawn({ argv: ['sh', '-c', 'echo "running as $$"; sleep 5'], env, healthUrl: 'http://127.0.0.1:1/' }, log)
    const startTime = p.startTime
    // The process is the gate, asleep waiting for its line: the backend has not run.
    const gateWaiting = () => {
      const cmd = readFileSync(`/proc/${p.pid}/cmdline`, 'utf8')
      const stat = readFileSync(`/proc/${p.pid}/stat`, 'utf8')
      return cmd.includes('read -r _') && stat.slice(stat.lastIndexOf(')') + 2).startsWith('S')
    }
    await waitFor(gateWaiting, 3000)
    expect(log.tail()).toEqual([])
    p.open()
    await waitFor(() => log.tail().length > 0, 3000)
    expect(log.tail()).toEqual([`running as ${p.pid}`])
    expect(processStartTime(p.pid)).toBe(startTime)
    await p.stop(1000)
  })

  test('if llamactl dies before open(), the gate exits and the backend never runs', async () => {
    const dir = tempDir()
    const port = 20000 + Math.floor(Math.random() * 20000)
    // A stand-in for llamactl: spawns the fake server behind the gate, prints the pid, dies by SIGKILL.
    const parent = join(dir, 'parent.ts')
    writeFileSync(
      parent,
      `import { BackendProcess } from ${JSON.stringify(resolve(import.meta.dir, '../../src/supervisor/backend-process'))}
import { LogSink } from ${JSON.stringify(resolve(import.meta.dir, '../../src/supervisor/log-sink'))}
const log = new LogSink({ file: null, maxFileBytes: 1 << 20, maxFiles: 1, rotate: false, tailLines: 10 })
const p = BackendProcess.spawn({ argv: [${JSON.stringify(BUN)}, ${JSON.stringify(FAKE_SERVER)}, '--port', '${port}'], env: { PATH: process.env.PATH ?? '' }, healthUrl: '' }, log)
console.log(p.pid)
process.kill(process.pid, 'SIGKILL')
`,
    )
    const run = Bun.spawnSync([BUN, parent], { stdout: 'pipe', stderr: 'pipe' })
    const pid = Number(run.stdout.toString().trim())
    expect(pid).toBeGreaterThan(0)
    await waitFor(() => processStartTime(pid) === null, 3000)
    await expect(fetch(`http://127.0.0.1:${port}/health`)).rejects.toThrow()
  })

  test('a missing or non-executable command is refused before anything is spawned', () => {
    const dir = tempDir()
    const plain = join(dir, 'not-executable')
    writeFileSync(plain, '#!/bin/sh\n')
    chmodSync(plain, 0o644)
    const spawn = (argv: string[]) => () => BackendProcess.spawn({ argv, env, cwd: dir, healthUrl: '' }, memoryLog())
    expect(spawn(['/nonexistent/llama-server'])).toThrow('executable not found: /nonexistent/llama-server')
    expect(spawn(['no-such-llama-server'])).toThrow('executable not found: no-such-llama-server')
    expect(spawn(['./not-executable'])).toThrow('cannot run ./not-executable: not an executable file')
  })
})
