/**
 * deploy/llamactl.service: listens on 127.0.0.1 unless told otherwise, carries the usual
 * hardening, and passes `systemd-analyze verify` without a warning.
 */
import { describe, expect, test } from 'bun:test'
import { chmodSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { SETTINGS_BY_KEY } from '../../src/config/settings'
import { tempDir } from '../helpers'

const UNIT = resolve(import.meta.dir, '../../deploy/llamactl.service')
const text = readFileSync(UNIT, 'utf8')

/** Directive → every value it is given in [Service] (comments and other sections left out). */
function service(): Map<string, string[]> {
  const out = new Map<string, string[]>()
  let section = ''
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (!line || line.startsWith('#') || line.startsWith(';')) continue
    const header = /^\[(.+)\]$/.exec(line)
    if (header) {
      section = header[1]!
      continue
    }
    if (section !== 'Service') continue
    const eq = line.indexOf('=')
    const key = line.slice(0, eq)
    out.set(key, [...(out.get(key) ?? []), line.slice(eq + 1)])
  }
  return out
}

const one = (s: Map<string, string[]>, key: string) => s.get(key)?.at(-1)
const analyze = Bun.which('systemd-analyze')
if (!analyze) console.warn('systemd-analyze is not installed (apt-get install systemd): skipping `systemd-analyze verify` of deploy/llamactl.service')

describe('deploy/llamactl.service', () => {
  test('listens on 127.0.0.1 unless told otherwise', () => {
    const s = service()
    const exec = one(s, 'ExecStart')!
    // No --host (or --host 127.0.0.1) on the command line and no LLAMACTL_HOST: server.host's default.
    const host = /--host[= ](\S+)/.exec(exec)?.[1]
    expect(host === undefined || host === '127.0.0.1').toBe(true)
    const env = (s.get('Environment') ?? []).flatMap((e) => e.split(/\s+/))
    const hostVar = env.find((e) => e.startsWith('LLAMACTL_HOST='))
    expect(hostVar === undefined || hostVar === 'LLAMACTL_HOST=127.0.0.1').toBe(true)
    if (host === undefined && hostVar === undefined) expect(SETTINGS_BY_KEY.get('server.host')!.default).toBe('127.0.0.1')
  })

  test('carries the usual hardening, with the data folder writable and GPUs reachable', () => {
    const s = service()
    expect(one(s, 'NoNewPrivileges')).toBe('yes')
    expect(one(s, 'ProtectSystem')).toBe('strict')
    expect(one(s, 'PrivateTmp')).toBe('yes')
    expect(['yes', 'read-only', 'tmpfs']).toContain(one(s, 'ProtectHome') ?? 'no')
    expect(one(s, 'UMask')).toBe('0077')
    expect(one(s, 'CapabilityBoundingSet')).toBe('')
    const groups = (s.get('SupplementaryGroups') ?? []).flatMap((g) => g.split(/\s+/))
    expect(groups).toEqual(expect.arrayContaining(['video', 'render']))
    // GPU device nodes must stay visible; Bun's JIT needs writable executable memory.
    expect(one(s, 'PrivateDevices') ?? 'no').toBe('no')
    expect(one(s, 'MemoryDenyWriteExecute') ?? 'no').toBe('no')
    // The data folder is writable under ProtectSystem=strict: a StateDirectory or a ReadWritePaths entry.
    const dataDir = (s.get('Environment') ?? []).flatMap((e) => e.split(/\s+/)).find((e) => e.startsWith('LLAMACTL_DATA_DIRECTORY='))!.split('=')[1]!
    const writable = [
      ...(s.get('StateDirectory') ?? []).flatMap((d) => d.split(/\s+/)).map((d) => `/var/lib/${d}`),
      ...(s.get('ReadWritePaths') ?? []).flatMap((d) => d.split(/\s+/)).map((d) => d.replace(/^-/, '')),
    ]
    expect(writable).toContain(dataDir)
  })

  test.skipIf(!analyze)('passes systemd-analyze verify without a warning', () => {
    const dir = tempDir('llamactl-unit-')
    try {
      // verify checks that ExecStart's program exists: point it at a stand-in.
      const program = join(dir, 'llamactl')
      writeFileSync(program, '#!/bin/sh\nexit 0\n')
      chmodSync(program, 0o755)
      const unit = join(dir, 'llamactl.service')
      writeFileSync(unit, text.replace(/^ExecStart=\S+/m, `ExecStart=${program}`))
      const r = Bun.spawnSync([analyze!, 'verify', unit], { stdout: 'pipe', stderr: 'pipe' })
      const output = r.stdout.toString() + r.stderr.toString()
      expect(output).toBe('')
      expect(r.exitCode).toBe(0)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
