/**
 * The multi-host harness: two or three "hosts" on this one machine, each a network namespace
 * (`ip netns add`) with one end of a veth pair; the other ends are ports of a bridge in the root
 * namespace, which also has an address there, so the test process reaches every host and the
 * hosts reach each other:
 *
 *   root namespace: bridge lcb-<run> 10.213.S.1/24
 *     ├─ lcv-<run>-0 ── veth ── eth0 in lcns-<run>-h0  10.213.S.10/24 (+ its own lo)
 *     └─ lcv-<run>-1 ── veth ── eth0 in lcns-<run>-h1  10.213.S.11/24
 *
 * S is a /24 of 10.213.0.0/16 that no interface or route of this machine uses. <run> holds this
 * process's pid (base 36) and two random characters, so parallel runs never share a name, and a
 * run finds what a dead run left: `sweepStale()` (called by `makeNet`) removes namespaces and
 * links of our prefix whose pid is no longer alive, and nothing of a live run.
 *
 * `cutLink(host)` sets the root end of the host's veth down (the cable pulled at the switch: the
 * host keeps its address, nothing crosses); `restoreLink(host)` sets it up again. `relay()`
 * starts test/nodes/relay.ts, a TCP relay holding each chunk a while (a slow node or link:
 * `tc netem`, which would do this in the kernel, is not in this kernel; `netem` says why).
 * `teardown()` stops every process the harness started (SIGTERM, then SIGKILL), then kills
 * whatever is still inside its namespaces (backends a llamactl started), and deletes the
 * namespaces, veths and bridge; it is safe to call twice and is meant for `afterAll`.
 *
 * Where namespaces cannot be made (not root, no `ip`, `ip netns add` refused), `makeNet` says
 * why (`why`) and falls back to loopback addresses 127.0.0.2, 127.0.0.3, …: every process runs
 * in the root namespace, the test reaches the hosts at those addresses, and a link cut is
 * emulated by stopping (SIGSTOP) the host's processes and their children, which a client sees
 * the same way (silence, no reset). Nothing ever reaches an address off this machine.
 */
import type { Subprocess } from 'bun'
import { readdirSync, readFileSync } from 'node:fs'
import { resolve } from 'node:path'

export const BUN = process.execPath
export const RELAY = resolve(import.meta.dir, 'relay.ts')
const PREFIX_NS = 'lcns-'
const PREFIX_LINK = /^lc[bvi]-([0-9a-z]+)-[0-9a-z]{2}/
const NS_NAME = /^lcns-([0-9a-z]+)-[0-9a-z]{2}-h\d+$/

export interface Host {
  name: string
  /** the network namespace, or null in the loopback fallback */
  ns: string | null
  /** this host's address, as other hosts and the test process reach it */
  address: string
  /** the root end of its veth (what cutLink sets down), or null in the fallback */
  link: string | null
}

export interface Spawned {
  proc: Subprocess<'ignore', 'pipe', 'pipe'>
  host: Host
  output: () => string
  /** Waits (bounded) for the output to match; throws with the output when the process ends or time runs out. */
  waitFor: (re: RegExp, ms?: number) => Promise<RegExpExecArray>
  /** SIGTERM, then SIGKILL after `graceMs`; resolves to the exit code. */
  stop: (graceMs?: number) => Promise<number>
}

export interface RelayEvent {
  kind: 'held' | 'released'
  conn: number
  dir: 'up' | 'down'
  seq: number
  bytes: number
  /** held: when (the relay's clock, ms); released: how long it was held, ms */
  ms: number
}

export interface Relay {
  /** the address and port clients connect to */
  host: string
  port: number
  url: string
  /** what the relay has logged so far, parsed */
  events: () => RelayEvent[]
  proc: Spawned
}

export interface Net {
  mode: 'netns' | 'loopback'
  /** why the fallback was taken (empty in netns mode) */
  why: string
  /** whether `tc qdisc add … netem` works on a link of this net, and what it said */
  netem: { available: boolean; said: string }
  hosts: Host[]
  /** the test process's own address on the hosts' network (the bridge, or 127.0.0.1) */
  client: string
  namespaces: string[]
  links: string[]
  /** Runs a process on a host (inside its namespace). Its stdout and stderr are collected. */
  spawn: (host: Host, argv: string[], opts?: { env?: Record<string, string>; cwd?: string }) => Spawned
  cutLink: (host: Host) => Promise<void>
  restoreLink: (host: Host) => Promise<void>
  /** A delaying relay running on `on`, listening on its address, to `target` ("address:port"). */
  relay: (opts: { on: Host; target: string; delayMs: number; maxChunk?: number }) => Promise<Relay>
  /** Pids of the processes this net started (and, in netns mode, of everything inside its namespaces) still alive. */
  alive: () => number[]
  teardown: () => Promise<void>
}

/** Runs a command to completion: exit code and output. */
export function run(argv: string[]): { code: number; out: string; err: string } {
  try {
    const r = Bun.spawnSync(argv, { stdout: 'pipe', stderr: 'pipe', stdin: 'ignore' })
    return { code: r.exitCode ?? -1, out: r.stdout.toString(), err: r.stderr.toString().trim() }
  } catch (e) {
    return { code: -1, out: '', err: (e as Error).message }
  }
}

function must(argv: string[]): string {
  const r = run(argv)
  if (r.code !== 0) throw new Error(`${argv.join(' ')}: exit ${r.code}: ${r.err}`)
  return r.out
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** A zombie still answers kill(0); it has ended all the same. */
function running(pid: number): boolean {
  if (!pidAlive(pid)) return false
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z'
  } catch {
    return false
  }
}

/** Why namespaces cannot be made here, or null when they can (root, `ip` present). */
export function netnsUnavailable(ip = 'ip'): string | null {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return 'not running as root (network namespaces need CAP_SYS_ADMIN and CAP_NET_ADMIN)'
  const r = run([ip, '-V'])
  if (r.code !== 0) return `no usable \`${ip}\` command (${r.err || `exit ${r.code}`}): install iproute2`
  return null
}

/** Our namespaces (lcns-…) and links (lcb-…, lcv-…) whose run's pid has ended: removes them, returns their names. */
export function sweepStale(): string[] {
  if (netnsUnavailable() !== null) return []
  const removed: string[] = []
  const dead = (pid36: string) => {
    const pid = Number.parseInt(pid36, 36)
    return !Number.isFinite(pid) || pid <= 0 || !running(pid)
  }
  for (const line of run(['ip', 'netns', 'list']).out.split('\n')) {
    const ns = line.split(' ')[0] ?? ''
    const m = NS_NAME.exec(ns)
    if (!m || !dead(m[1]!)) continue
    killInside(ns)
    if (run(['ip', 'netns', 'del', ns]).code === 0) removed.push(ns)
  }
  for (const line of run(['ip', '-o', 'link', 'show']).out.split('\n')) {
    const name = /^\d+:\s+([^:@\s]+)/.exec(line)?.[1] ?? ''
    const m = PREFIX_LINK.exec(name)
    if (!m || !dead(m[1]!)) continue
    if (run(['ip', 'link', 'del', name]).code === 0) removed.push(name)
  }
  return removed
}

/** SIGKILLs every process inside a namespace; returns their pids. */
function killInside(ns: string): number[] {
  const pids = run(['ip', 'netns', 'pids', ns]).out.split(/\s+/).filter(Boolean).map(Number)
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      // gone already
    }
  }
  return pids
}

const ip4 = (a: string) => a.split('.').reduce((n, o) => n * 256 + Number(o), 0)

/** Whether two IPv4 prefixes share an address. */
export function overlaps(a: string, b: string): boolean {
  const [aa, al] = a.split('/') as [string, string | undefined]
  const [ba, bl] = b.split('/') as [string, string | undefined]
  const block = 2 ** (32 - Math.min(Number(al ?? 32), Number(bl ?? 32)))
  return Math.floor(ip4(aa) / block) === Math.floor(ip4(ba) / block)
}

/** A /24 of 10.213.0.0/16 that no address or route of this machine overlaps (the default route aside). */
function freeSubnet(): number {
  const used = run(['ip', '-o', '-4', 'addr', 'show']).out + run(['ip', '-4', 'route', 'show', 'table', 'all']).out
  const prefixes = [...used.matchAll(/\b(\d{1,3}(?:\.\d{1,3}){3})(\/\d{1,2})?\b/g)].map((m) => `${m[1]}${m[2] ?? '/32'}`).filter((p) => !p.startsWith('0.0.0.0/'))
  const free = Array.from({ length: 254 }, (_, i) => i + 1).filter((s) => !prefixes.some((p) => overlaps(p, `10.213.${s}.0/24`)))
  if (!free.length) throw new Error('no /24 of 10.213.0.0/16 is free of this machine\'s addresses and routes; the harness will not overlap them')
  return free[Math.floor(Math.random() * free.length)]!
}

/** The children, grandchildren, … of a process (from /proc), for the fallback's SIGSTOP. */
function descendants(pid: number): number[] {
  const parent = new Map<number, number>()
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8')
      parent.set(Number(e), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]))
    } catch {
      // gone
    }
  }
  const out: number[] = []
  const walk = (p: number) => {
    for (const [child, pp] of parent) if (pp === p && !out.includes(child)) (out.push(child), walk(child))
  }
  walk(pid)
  return out
}

/**
 * Makes `count` hosts (2 or 3 is what the suite uses). `mode: 'loopback'` forces the fallback
 * (the suite proves it too). Call `teardown()` in afterAll whatever happens.
 */
export async function makeNet(count: number, opts: { mode?: 'netns' | 'loopback'; log?: (line: string) => void } = {}): Promise<Net> {
  if (count < 1 || count > 200) throw new Error(`makeNet: ${count} hosts`)
  const log = opts.log ?? ((line: string) => console.error(`netns: ${line}`))
  let why = opts.mode === 'loopback' ? 'loopback mode asked for' : netnsUnavailable() ?? ''
  const spawned: Spawned[] = []
  const stopped = new Set<Host>()
  const namespaces: string[] = []
  const links: string[] = []
  let hosts: Host[] = []
  let client = '127.0.0.1'
  let mode: Net['mode'] = 'loopback'
  let netem = { available: false, said: 'not tried (loopback fallback)' }

  const swept = why ? [] : sweepStale()
  if (swept.length) log(`removed what a dead run left: ${swept.join(', ')}`)

  if (!why) {
    const id = `${process.pid.toString(36)}-${Math.random().toString(36).slice(2, 4).padEnd(2, '0')}`
    const bridge = `lcb-${id}`
    try {
      const s = freeSubnet()
      must(['ip', 'link', 'add', bridge, 'type', 'bridge'])
      links.push(bridge)
      must(['ip', 'addr', 'add', `10.213.${s}.1/24`, 'dev', bridge])
      must(['ip', 'link', 'set', bridge, 'up'])
      for (let i = 0; i < count; i++) {
        const ns = `${PREFIX_NS}${id}-h${i}`
        const outer = `lcv-${id}-${i}`
        const inner = `lci-${id}-${i}`
        must(['ip', 'netns', 'add', ns])
        namespaces.push(ns)
        must(['ip', 'link', 'add', outer, 'type', 'veth', 'peer', 'name', inner])
        links.push(outer)
        must(['ip', 'link', 'set', inner, 'netns', ns])
        must(['ip', '-n', ns, 'link', 'set', inner, 'name', 'eth0'])
        must(['ip', '-n', ns, 'addr', 'add', `10.213.${s}.${10 + i}/24`, 'dev', 'eth0'])
        must(['ip', '-n', ns, 'link', 'set', 'eth0', 'up'])
        must(['ip', '-n', ns, 'link', 'set', 'lo', 'up'])
        must(['ip', 'link', 'set', outer, 'master', bridge])
        must(['ip', 'link', 'set', outer, 'up'])
        hosts.push({ name: String.fromCharCode(97 + (i % 26)) + (i >= 26 ? String(i) : ''), ns, address: `10.213.${s}.${10 + i}`, link: outer })
      }
      // another run may have picked the same /24 at the same moment: then two routes would clash
      const owners = run(['ip', '-o', '-4', 'addr', 'show']).out.split('\n').filter((l) => l.includes(`10.213.${s}.`))
      if (owners.length !== 1) throw new Error(`10.213.${s}.0/24 is on more than one interface here: ${owners.join(' | ')}`)
      client = `10.213.${s}.1`
      mode = 'netns'
      const tc = run(['tc', 'qdisc', 'add', 'dev', links[1]!, 'root', 'netem', 'delay', '10ms'])
      netem = { available: tc.code === 0, said: tc.code === 0 ? 'netem works here' : tc.err || `exit ${tc.code}` }
      if (tc.code === 0) run(['tc', 'qdisc', 'del', 'dev', links[1]!, 'root'])
      log(`${count} hosts in namespaces ${namespaces.join(', ')} on ${bridge} (10.213.${s}.0/24; the test process is ${client}); tc netem: ${netem.said}`)
    } catch (e) {
      why = `could not build the namespaces: ${(e as Error).message}`
      for (const ns of namespaces) run(['ip', 'netns', 'del', ns])
      for (const l of links) run(['ip', 'link', 'del', l])
      namespaces.length = 0
      links.length = 0
      hosts = []
    }
  }
  if (why) {
    hosts = Array.from({ length: count }, (_, i) => ({ name: String.fromCharCode(97 + (i % 26)) + (i >= 26 ? String(i) : ''), ns: null, address: `127.0.0.${2 + i}`, link: null }))
    log(`network namespaces unavailable (${why}); falling back to loopback addresses ${hosts.map((h) => h.address).join(', ')}: a link cut is emulated by SIGSTOP of the host's processes`)
  }

  const spawn: Net['spawn'] = (host, argv, o = {}) => {
    const command = host.ns ? ['ip', 'netns', 'exec', host.ns, ...argv] : argv
    // `ip netns exec` execs the command itself: the pid is the command's
    const proc = Bun.spawn(command, {
      cwd: o.cwd,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...o.env },
      stdin: 'ignore',
      stdout: 'pipe',
      stderr: 'pipe',
    })
    let out = ''
    const collect = async (s: ReadableStream<Uint8Array>) => {
      const dec = new TextDecoder()
      for await (const c of s) out += dec.decode(c, { stream: true })
    }
    void collect(proc.stdout)
    void collect(proc.stderr)
    const s: Spawned = {
      proc,
      host,
      output: () => out,
      async waitFor(re, ms = 30000) {
        const deadline = Date.now() + ms
        for (;;) {
          const m = re.exec(out)
          if (m) return m
          if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`${argv.join(' ')} ended (${proc.exitCode ?? proc.signalCode}) before ${re}:\n${out}`)
          if (Date.now() > deadline) throw new Error(`${argv.join(' ')}: no ${re} within ${ms} ms:\n${out}`)
          await Bun.sleep(10)
        }
      },
      async stop(graceMs = 10000) {
        if (stopped.has(host)) for (const p of [proc.pid, ...descendants(proc.pid)]) signal(p, 'SIGCONT')
        if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM')
        const killer = setTimeout(() => proc.kill('SIGKILL'), graceMs)
        try {
          return await proc.exited
        } finally {
          clearTimeout(killer)
        }
      },
    }
    spawned.push(s)
    return s
  }

  const signal = (pid: number, sig: NodeJS.Signals) => {
    try {
      process.kill(pid, sig)
    } catch {
      // gone
    }
  }

  const onHost = (host: Host) => {
    if (!hosts.includes(host)) throw new Error(`host ${host.name} is not of this net`)
    return host
  }

  const net: Net = {
    mode,
    why,
    netem,
    hosts,
    client,
    namespaces,
    links,
    spawn,
    async cutLink(host) {
      onHost(host)
      if (host.link) must(['ip', 'link', 'set', host.link, 'down'])
      else {
        stopped.add(host)
        for (const s of spawned) if (s.host === host) for (const p of [s.proc.pid, ...descendants(s.proc.pid)]) signal(p, 'SIGSTOP')
      }
    },
    async restoreLink(host) {
      onHost(host)
      if (host.link) must(['ip', 'link', 'set', host.link, 'up'])
      else {
        stopped.delete(host)
        for (const s of spawned) if (s.host === host) for (const p of [s.proc.pid, ...descendants(s.proc.pid)]) signal(p, 'SIGCONT')
      }
    },
    async relay({ on, target, delayMs, maxChunk = 0 }) {
      onHost(on)
      const [tHost, tPort] = [target.slice(0, target.lastIndexOf(':')), target.slice(target.lastIndexOf(':') + 1)]
      const proc = spawn(on, [BUN, RELAY, on.address, tHost, tPort, String(delayMs), String(maxChunk)])
      const port = Number((await proc.waitFor(/^listening (\d+)$/m, 15000))[1])
      return {
        host: on.address,
        port,
        url: `http://${on.address}:${port}`,
        proc,
        events: () =>
          [...proc.output().matchAll(/^(held|released) (\d+) (up|down) (\d+) (\d+) ([\d.]+)$/gm)].map((m) => ({
            kind: m[1] as RelayEvent['kind'],
            conn: Number(m[2]),
            dir: m[3] as RelayEvent['dir'],
            seq: Number(m[4]),
            bytes: Number(m[5]),
            ms: Number(m[6]),
          })),
      }
    },
    alive() {
      const pids = new Set<number>()
      for (const s of spawned) if (running(s.proc.pid)) pids.add(s.proc.pid)
      for (const ns of namespaces) for (const p of run(['ip', 'netns', 'pids', ns]).out.split(/\s+/).filter(Boolean)) if (running(Number(p))) pids.add(Number(p))
      return [...pids]
    },
    async teardown() {
      // the hosts' links back up, so that processes stopping can say goodbye to their peers
      for (const h of hosts) if (h.link && links.includes(h.link)) run(['ip', 'link', 'set', h.link, 'up'])
      await Promise.all(spawned.map((s) => s.stop(5000)))
      for (const ns of namespaces) {
        // what the processes started and left (a backend of a llamactl that was SIGKILLed)
        for (let i = 0; i < 50 && killInside(ns).length; i++) await Bun.sleep(20)
        const r = run(['ip', 'netns', 'del', ns])
        if (r.code !== 0) log(`ip netns del ${ns}: ${r.err}`)
      }
      // deleting a namespace deletes the veths in it and their peers; the bridge is ours to delete
      for (const l of links) if (run(['ip', 'link', 'show', l]).code === 0) run(['ip', 'link', 'del', l])
      namespaces.length = 0
      links.length = 0
    },
  }
  return net
}

/** Our namespaces that exist now (for checks after teardown). */
export function ourNamespaces(): string[] {
  return run(['ip', 'netns', 'list']).out.split('\n').map((l) => l.split(' ')[0] ?? '').filter((n) => n.startsWith(PREFIX_NS))
}

export { running as processRunning }
