/**
 * Instances on remote nodes, as the main node keeps them: a row in its own SQLite (with the
 * node's name), so it lists them after a restart, and what the node last said of each. Every
 * operation is carried out by the node's llamactl through its management API; the row changes
 * only once the node has answered as the API promises, so nothing is half-recorded. A node that
 * is down answers for nothing: its instances are `unknown`, operations on them a 503 naming it.
 */
import type { Config } from '../config/load'
import { BadRequest, NotFound, StartFailed, Unavailable } from '../errors'
import type { Instance } from '../instances/instance'
import type { Wait } from '../instances/lifecycle'
import { checkName, parseOptions, type InstanceOptionsInput, type InstanceView } from '../instances/options'
import type { Metrics } from '../metrics/llamactl'
import type { Store } from '../store/db'
import { Garbled, NodeUnreachable, NodeViewSchema } from './client'
import { createOn, type Creating } from './create'
import { NodeForwarder } from './forward'
import { type Holder, refuseTaken } from './names'
import { checkNodes, place } from './placement'
import { aliasesOf, type RemoteRecord, viewOf } from './records'
import { NodeRegistry, type NodeState } from './registry'

/** What the main node's own instances offer this module: the manager. */
export interface LocalSide {
  list(): Instance[]
  find(name: string): Instance | undefined
  create(name: string, body: unknown, wait: Wait): Promise<InstanceView>
}

const enc = encodeURIComponent

export class RemoteInstances {
  readonly registry: NodeRegistry
  /** /v1, the proxy and logs followed, passed through to the node. */
  readonly forwarder: NodeForwarder
  private records = new Map<string, RemoteRecord>()
  /** Names being created on a node, with their aliases: taken, though not recorded yet. */
  private pending = new Map<string, readonly string[]>()
  private readonly creating: Creating

  constructor(
    readonly config: Config,
    private store: Store,
    private metrics: Metrics,
    private local: LocalSide,
  ) {
    this.registry = new NodeRegistry(config, (node) => this.readBack(node))
    this.forwarder = new NodeForwarder(this, metrics)
    this.creating = { store, records: this.records, timeout: (node, wait) => this.timeout(node, wait) }
  }

  /** Loads the recorded instances and starts watching the nodes. */
  init() {
    for (const row of this.store.listRemoteInstances()) {
      let input: InstanceOptionsInput
      try {
        input = parseOptions(JSON.parse(row.options))
      } catch (e) {
        console.error(`llamactl: stored instance ${row.name} (node ${row.node}) has options this version cannot read (${(e as Error).message}); it is left out`)
        continue
      }
      this.records.set(row.name, { id: row.id, name: row.name, node: row.node, input, created: row.created, last: null, missing: false })
    }
    this.registry.start()
  }

  shutdown() {
    this.registry.stop()
  }

  has(name: string): boolean {
    return this.records.has(name)
  }

  find(name: string): RemoteRecord | undefined {
    return this.records.get(name)
  }

  list(): RemoteRecord[] {
    return [...this.records.values()]
  }

  /** The remote instance an alias names, else the name as given. */
  resolve(model: string): string {
    if (this.records.has(model)) return model
    for (const r of this.records.values()) if (aliasesOf(r).includes(model)) return r.name
    return model
  }

  /** The manager's half of uniqueness: what remote instances (and creates under way) answer to. */
  refuseTaken(name: string, aliases: readonly string[], creating: boolean) {
    refuseTaken(this.holders(), name, aliases, creating)
  }

  private holders(except?: string): Holder[] {
    const out: Holder[] = [...this.pending].map(([n, aliases]) => ({ name: n, aliases, where: '(being created on a node)' }))
    for (const r of this.records.values()) if (r.name !== except) out.push({ name: r.name, aliases: aliasesOf(r), where: `on node ${JSON.stringify(r.node)}` })
    return out
  }

  /** Every name taken anywhere but by `except`, for a remote create or update. */
  private refuseTakenAnywhere(name: string, aliases: readonly string[], creating: boolean, except?: string) {
    const local: Holder[] = this.local.list().map((i) => ({ name: i.name, aliases: i.options.aliases ?? [], where: `on node ${JSON.stringify(this.config.local_node)}` }))
    refuseTaken([...local, ...this.holders(except)], name, aliases, creating)
  }

  view(r: RemoteRecord): InstanceView {
    return viewOf(r, this.registry.get(r.node))
  }

  /** After each health check: the node's real state of every instance recorded on it. */
  private readBack(node: NodeState) {
    if (!node.up) return
    const byName = new Map(node.instances.map((i) => [i.name, i]))
    for (const r of this.records.values()) {
      if (r.node !== node.name) continue
      const seen = byName.get(r.name)
      r.missing = !seen
      if (seen) r.last = seen
    }
  }

  /** The record and its node, which must be answering: else a 503 naming it, at once. */
  reach(name: string): { r: RemoteRecord; node: NodeState } {
    const r = this.records.get(checkName(name))
    if (!r) throw new NotFound(`instance ${JSON.stringify(name)} not found`)
    const node = this.registry.get(r.node)
    if (!node) throw new Unavailable(`instance ${JSON.stringify(name)} is on node ${JSON.stringify(r.node)}, which is not configured any more`)
    if (node.up === false) {
      this.registry.nudge(node.name)
      throw new Unavailable(`instance ${JSON.stringify(name)} is on node ${JSON.stringify(node.name)}, which is not answering: ${node.error}`, { 'retry-after': '1' })
    }
    return { r, node }
  }

  /** A failure reaching the node: have it checked now, so its instances go unknown soon. */
  private noted<T>(node: NodeState, p: Promise<T>): Promise<T> {
    return p.catch((e) => {
      if (e instanceof NodeUnreachable) this.registry.nudge(node.name)
      throw e
    })
  }

  private timeout(node: NodeState, wait: Wait): number {
    return node.client.timeoutMs + (wait === 'ready' ? this.config.instances.startup_timeout * 1000 : 0)
  }

  /**
   * Creates the instance where `nodes` says (see placement.ts): on this llamactl through the
   * manager, else on the chosen node. Nothing is left on either side when it fails.
   */
  async create(name: string, body: unknown, wait: Wait): Promise<InstanceView> {
    checkName(name)
    const input = parseOptions(body)
    checkNodes(input.nodes ?? [], this.config, this.registry)
    const localRunning = this.local.list().filter((i) => i.active).length
    const chosen = await place(input.nodes!, this.config, this.registry, { maxRunning: this.config.instances.max_running_instances, running: localRunning })
    if (chosen === this.config.local_node) return this.local.create(name, { ...input, nodes: [chosen] }, wait)
    const node = this.registry.get(chosen)!
    this.refuseTakenAnywhere(name, input.aliases ?? [], true)
    this.pending.set(name, input.aliases ?? [])
    try {
      return this.view(await this.noted(node, createOn(this.creating, node, name, input, wait)))
    } finally {
      this.pending.delete(name)
    }
  }

  async get(name: string): Promise<InstanceView> {
    const r = this.records.get(checkName(name))
    if (!r) throw new NotFound(`instance ${JSON.stringify(name)} not found`)
    const node = this.registry.get(r.node)
    // A node that is down (or gone from the configuration) answers from what was last known.
    if (!node || node.up === false) return this.view(r)
    const path = `/api/v1/instances/${enc(name)}`
    const a = await this.noted(node, node.client.call('GET', path))
    if (a.status === 404) {
      r.missing = true
      return this.view(r)
    }
    r.last = node.client.expect(a, [200], NodeViewSchema, `GET ${path}`)
    r.missing = false
    return this.view(r)
  }

  async update(name: string, body: unknown, wait: Wait): Promise<InstanceView> {
    const { r, node } = this.reach(name)
    const input = parseOptions(body)
    if (input.nodes && (input.nodes.length !== 1 || input.nodes[0] !== r.node)) {
      throw new BadRequest(`nodes: instance ${JSON.stringify(name)} is on node ${JSON.stringify(r.node)}; instances do not move between nodes (delete it and create it on the other)`)
    }
    this.refuseTakenAnywhere(name, input.aliases ?? [], false, name)
    const { nodes: _, ...sent } = input
    const stored = { ...input, nodes: [r.node] }
    return this.act(r, node, 'PUT', '', wait, sent, () => {
      this.store.updateOptions(name, JSON.stringify(stored))
      r.input = stored
    })
  }

  start(name: string, wait: Wait = 'bounded'): Promise<InstanceView> {
    const { r, node } = this.reach(name)
    return this.act(r, node, 'POST', '/start', wait)
  }

  stop(name: string): Promise<InstanceView> {
    const { r, node } = this.reach(name)
    return this.act(r, node, 'POST', '/stop', 'bounded')
  }

  restart(name: string, wait: Wait = 'bounded'): Promise<InstanceView> {
    const { r, node } = this.reach(name)
    return this.act(r, node, 'POST', '/restart', wait)
  }

  /**
   * One operation on the node: its answer becomes the instance's state here. A start that
   * failed there (500) did change it: the state is read back, and the 500 passed on.
   */
  private async act(r: RemoteRecord, node: NodeState, method: string, suffix: string, wait: Wait, body?: unknown, applied?: () => void): Promise<InstanceView> {
    const c = node.client
    const path = `/api/v1/instances/${enc(r.name)}`
    const what = `${method} ${path}${suffix}`
    const a = await this.noted(node, c.call(method, path + suffix + (wait === 'ready' ? '?wait=ready' : ''), { body, timeoutMs: this.timeout(node, wait) }))
    if (a.status === 500) {
      const failed = c.refusal(a, what)
      if (failed instanceof StartFailed) {
        applied?.()
        const back = await c.call('GET', path).catch(() => null)
        if (back?.status === 200) r.last = c.expect(back, [200], NodeViewSchema, `GET ${path}`)
      }
      throw failed
    }
    r.last = c.expect(a, [200], NodeViewSchema, what)
    r.missing = false
    applied?.()
    return this.view(r)
  }

  /** Deletes it on its node, then here; an instance the node no longer has is deleted here only. */
  async remove(name: string): Promise<void> {
    const r = this.records.get(checkName(name))
    if (!r) throw new NotFound(`instance ${JSON.stringify(name)} not found`)
    if (this.registry.get(r.node)) {
      const { node } = this.reach(name)
      const path = `/api/v1/instances/${enc(name)}`
      const a = await this.noted(node, node.client.call('DELETE', path))
      if (a.status !== 204 && a.status !== 404) throw node.client.refusal(a, `DELETE ${path}`)
    }
    this.store.deleteInstance(name)
    this.records.delete(name)
    this.metrics.forgetInstance(name)
  }

  /** The last lines of its log, as the node keeps them. */
  async logs(name: string, lines: string | undefined): Promise<Response> {
    const { r, node } = this.reach(name)
    const path = `/api/v1/instances/${enc(r.name)}/logs${lines !== undefined ? `?lines=${enc(lines)}` : ''}`
    const a = await this.noted(node, node.client.call('GET', path))
    if (a.status !== 200) throw node.client.refusal(a, `GET ${path}`)
    if (!a.type.startsWith('text/plain')) throw new Garbled(`${node.client.label} answered GET ${path} with ${a.type || 'no content type'}, not text`)
    return new Response(a.text, { headers: { 'content-type': 'text/plain; charset=utf-8' } })
  }

  /** Records for the nodes view: how many instances this llamactl keeps on the node. */
  countOn(node: string): number {
    let n = 0
    for (const r of this.records.values()) if (r.node === node) n++
    return n
  }
}
