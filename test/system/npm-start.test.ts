/**
 * `npm start` as the README runs it: stopping what the user started (SIGTERM to npm's process,
 * as a service manager or `kill` does) stops llamactl, which stops its backends.
 */
import { expect, test } from 'bun:test'
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { tempDir } from '../helpers'
import { llamactlEnv } from './process'

const ROOT = resolve(import.meta.dir, '../..')

function alive(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'))
  } catch {
    return false
  }
}

test('SIGTERM to `npm start` stops llamactl itself, not only npm', async () => {
  const dir = tempDir()
  const npm = Bun.spawn(['npm', 'start', '--silent', '--', '--port', '0'], {
    cwd: ROOT,
    env: { ...llamactlEnv(dir), PATH: `${resolve(ROOT, 'node_modules/.bin')}:${process.env.PATH}` },
    stdout: 'pipe',
    stderr: 'pipe',
  })
  let out = ''
  let pid = 0
  void (async () => {
    for await (const c of npm.stdout) out += new TextDecoder().decode(c)
  })()
  void (async () => {
    for await (const c of npm.stderr) out += new TextDecoder().decode(c)
  })()
  try {
    for (const until = Date.now() + 30000; !/listening on http/.test(out); ) {
      if (Date.now() > until || npm.exitCode !== null) throw new Error(`llamactl did not start under npm:\n${out}`)
      await Bun.sleep(20)
    }
    // The llamactl process: npm's descendant running src/main.ts.
    const ps = Bun.spawnSync(['ps', '-eo', 'pid=,ppid=,args=']).stdout.toString().split('\n')
    const rows = ps.map((l) => l.trim().split(/\s+/)).filter((r) => r.length > 2).map(([pid, ppid, ...args]) => ({ pid: Number(pid), ppid: Number(ppid), args: args.join(' ') }))
    const descendants = new Set([npm.pid])
    for (let grew = true; grew; ) {
      grew = false
      for (const r of rows) if (descendants.has(r.ppid) && !descendants.has(r.pid)) descendants.add(r.pid), (grew = true)
    }
    // bun itself, not a shell npm may have run it through (whose command line names main.ts too).
    const llamactl = rows.find((r) => descendants.has(r.pid) && /^\S*bun /.test(r.args) && r.args.includes('src/main.ts'))
    expect(llamactl).toBeDefined()
    pid = llamactl!.pid
    npm.kill('SIGTERM')
    for (const until = Date.now() + 15000; alive(pid) && Date.now() < until; ) await Bun.sleep(50)
    expect(alive(pid)).toBe(false)
  } finally {
    npm.kill('SIGKILL')
    if (pid && alive(pid)) process.kill(pid, 'SIGKILL')
  }
}, 60000)
