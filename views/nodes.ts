/** The nodes: this llamactl and the remote nodes it places instances on, with their health. */
import { ago } from './format'
import { html, type Html } from './html'
import { layout, type PageContext } from './layout'

/** One node as GET /api/v1/nodes answers it. */
export interface NodeItem {
  name: string
  address: string
  local: boolean
  reachable: boolean | null
  version: string | null
  running: number | null
  total: number | null
  max_running_instances: number | null
  managed: number
  last_seen: number | null
  error: string | null
}

function health(n: NodeItem): Html {
  if (n.local) return html`<span class="badge s-running">this llamactl</span>`
  if (n.reachable === null) return html`<span class="badge s-starting">not asked yet</span>`
  return n.reachable ? html`<span class="badge s-running">up</span>` : html`<span class="badge s-down">down</span>`
}

/** The polled fragment: replaces itself every 5 s. */
export function nodeList(nodes: NodeItem[], now: number): Html {
  return html`<section id="nodes" class="nodes" aria-label="Nodes" hx-get="/ui/nodes" hx-trigger="every 5s" hx-swap="outerHTML">
<table class="list">
  <thead><tr><th scope="col">Node</th><th scope="col">Health</th><th scope="col">Address</th><th scope="col">Version</th><th scope="col">Running</th><th scope="col">Placed from here</th><th scope="col">Last answer</th></tr></thead>
  <tbody>
${nodes.map((n) => html`<tr id="node-${n.name}">
  <th scope="row" data-label="Node">${n.name}</th>
  <td data-label="Health">${health(n)}${n.error ? html`<p class="error small">${n.error}</p>` : ''}</td>
  <td data-label="Address">${n.address || '—'}</td>
  <td data-label="Version">${n.version ?? '—'}</td>
  <td data-label="Running">${n.running === null ? '—' : `${n.running} of ${n.total}`}${n.max_running_instances !== null && n.max_running_instances >= 0 ? html` <span class="muted small">at most ${n.max_running_instances}</span>` : ''}</td>
  <td data-label="Placed from here">${n.managed}</td>
  <td data-label="Last answer">${n.local ? '—' : ago(n.last_seen === null ? null : n.last_seen * 1000, now)}</td>
</tr>`)}
  </tbody>
</table>
</section>`
}

export function nodesPage(ctx: PageContext, nodes: NodeItem[], now: number): Html {
  const body = html`<div class="page-head"><h1>Nodes</h1></div>
<p class="muted">Instances run on this llamactl or on the remote nodes of the <code>nodes</code> setting; a new instance chooses its node in its form.</p>
${nodeList(nodes, now)}`
  return layout(ctx, { title: 'Nodes', section: 'nodes', body })
}
