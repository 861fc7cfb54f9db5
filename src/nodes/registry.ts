/**
 * The configured remote nodes and what is known of each: reachable or not, its version, its
 * limits and its instances as it last listed them. Each node is watched on its own timer (its
 * health check is GET /api/v1/instances): a node that does not answer within the interval is
 * marked down, then asked again with a doubling interval, and sooner when a request needs it.
 * Nothing here is ever awaited by a request for another node or for a local instance.
 */
import type { Config } from '../config/load'
import { NodeClient, NodeConfigSchema, NodeListSchema, type NodeView } from './client'

export interface NodeState {
  name: string
  address: string
  client: NodeClient
  /** null: not asked yet since llamactl started. */
  up: boolean | null
  /** Unix ms of the last answer. */
  lastSeen: number | null
  /** Unix ms it went down (while down). */
  downSince: number | null
  /** Why it is down, or why its last check failed. */
  error: string | null
  version: string | null
  limits: { max_running_instances: number; max_instances: number } | null
  /** Its instances, all of them, as it last listed them. */
  instances: NodeView[]
}

/** Limits and version are read again after this many checks (they change when the node restarts). */
const REREAD_EVERY = 12
/** A request for a node that is down asks it again at most this often, ms. */
const NUDGE_MS = 1000

export class NodeRegistry {
  readonly nodes = new Map<string, NodeState>()
  private timers = new Map<string, ReturnType<typeof setTimeout>>()
  private probes = new Map<string, Promise<void>>()
  private failures = new Map<string, number>()
  private checks = new Map<string, number>()
  private nudged = new Map<string, number>()
  /** Requests being forwarded to each node: aborted when it goes down. */
  private inflight = new Map<string, Set<AbortController>>()
  private stopped = false
  private readonly intervalMs: number

  constructor(
    private config: Config,
    /** After every check: the node's state may have changed. */
    private changed: (node: NodeState) => void,
  ) {
    this.intervalMs = config.node_health_check_interval * 1000
    for (const [name, cfg] of Object.entries(config.nodes)) {
      if (name === config.local_node || !cfg.address) continue
      const client = new NodeClient(name, cfg, config.nodes_ca_file, config.node_request_timeout * 1000)
      this.nodes.set(name, { name, address: cfg.address, client, up: null, lastSeen: null, downSince: null, error: null, version: null, limits: null, instances: [] })
    }
  }

  get(name: string): NodeState | undefined {
    return this.nodes.get(name)
  }

  /** Starts watching every node (the first check at once). */
  start() {
    for (const name of this.nodes.keys()) this.schedule(name, 0)
  }

  stop() {
    this.stopped = true
    for (const t of this.timers.values()) clearTimeout(t)
    this.timers.clear()
  }

  private schedule(name: string, ms: number) {
    if (this.stopped) return
    clearTimeout(this.timers.get(name))
    const t = setTimeout(() => void this.probe(name).finally(() => this.schedule(name, this.nextDelay(name))), ms)
    this.timers.set(name, t)
  }

  private nextDelay(name: string): number {
    return backoff(this.intervalMs, this.failures.get(name) ?? 0)
  }

  /** Asks the node now (joining a check under way); resolves when it has answered or failed. */
  probe(name: string): Promise<void> {
    const node = this.nodes.get(name)
    if (!node) return Promise.resolve()
    let p = this.probes.get(name)
    if (!p) {
      p = this.check(node).finally(() => this.probes.delete(name))
      this.probes.set(name, p)
    }
    return p
  }

  /** A request found the node down: ask it again soon, so its return is noticed. */
  nudge(name: string) {
    const now = Date.now()
    if (now - (this.nudged.get(name) ?? 0) < NUDGE_MS) return
    this.nudged.set(name, now)
    void this.probe(name)
  }

  private async check(node: NodeState) {
    const timeoutMs = Math.min(node.client.timeoutMs, Math.max(this.intervalMs, 2000))
    const n = (this.checks.get(node.name) ?? 0) + 1
    this.checks.set(node.name, n)
    try {
      const list = await node.client.call('GET', '/api/v1/instances', { timeoutMs })
      node.instances = node.client.expect(list, [200], NodeListSchema, 'GET /api/v1/instances')
      if (node.up !== true || n % REREAD_EVERY === 0 || !node.limits) await this.readDetails(node, timeoutMs)
      node.lastSeen = Date.now()
      if (node.up === false) console.error(`llamactl: ${node.client.label} answers again`)
      node.up = true
      node.downSince = null
      node.error = null
      this.failures.set(node.name, 0)
    } catch (e) {
      this.failures.set(node.name, (this.failures.get(node.name) ?? 0) + 1)
      this.markDown(node, (e as Error).message)
    }
    this.changed(node)
  }

  private async readDetails(node: NodeState, timeoutMs: number) {
    const version = await node.client.call('GET', '/api/v1/version', { timeoutMs })
    if (version.status !== 200) throw node.client.refusal(version, 'GET /api/v1/version')
    const line = version.text.split('\n').find((l) => l.startsWith('Version:'))
    node.version = line ? line.slice(8).trim().slice(0, 100) : null
    const cfg = node.client.expect(await node.client.call('GET', '/api/v1/config', { timeoutMs }), [200], NodeConfigSchema, 'GET /api/v1/config')
    node.limits = { max_running_instances: cfg.instances.max_running_instances, max_instances: cfg.instances.max_instances }
  }

  private markDown(node: NodeState, why: string) {
    node.error = why
    if (node.up === false) return
    node.up = false
    node.downSince = Date.now()
    console.error(`llamactl: ${node.client.label} is down: ${why}`)
    // Requests under way to it end now, with a 502 naming it, rather than whenever TCP notices.
    for (const c of this.inflight.get(node.name) ?? []) c.abort(new Error(`${node.client.label} stopped answering: ${why}`))
  }

  /** A request is being forwarded to the node; call the answer when it has ended. */
  track(name: string, ctrl: AbortController): () => void {
    let set = this.inflight.get(name)
    if (!set) this.inflight.set(name, (set = new Set()))
    set.add(ctrl)
    return () => set.delete(ctrl)
  }
}

/** The wait before the next check: the interval, doubled for each failed check in a row, at most 16 intervals and 60 s (never below the interval). */
export function backoff(intervalMs: number, failures: number): number {
  const cap = Math.max(intervalMs, Math.min(60_000, intervalMs * 16))
  return Math.min(cap, intervalMs * 2 ** Math.min(failures, 30))
}
