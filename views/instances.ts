/** The instance list: the page, and the fragment the page polls every 2 s for live status. */
import { ago, duration } from './format'
import { html, type Html, seg } from './html'
import { layout, type PageContext } from './layout'

export interface InstanceItem {
  name: string
  /** The node it runs on. */
  node?: string
  /** On a remote node: its log and edits are that node's page's. */
  remote?: boolean
  status: string
  backend: string
  /** What it serves, in a word: the model file's name, the Hugging Face repo or the model id. */
  model?: string | null
  /** Its group (instances.group_limits), if it has one. */
  group?: string | null
  /** Other model names it answers to. */
  aliases?: string[]
  port: number | null
  /** Unix ms since the backend has been ready (null unless running). */
  readySince: number | null
  /** Unix ms of the last request through /v1 (null: none since llamactl started). */
  lastRequest: number | null
  restarts: number
  /** Requests waiting in its queue now (max_concurrent_requests reached). */
  queued?: number
  /** How long the longest-waiting request in its queue has waited. */
  queuedForMs?: number | null
  error: string | null
  /** The last log lines, shown when the instance failed or is waiting to restart. */
  lastLines: string[]
  /** Requests, errors and tokens/s of the last ten minutes, in words. */
  activity: string
}

export interface Flash {
  kind: 'ok' | 'error'
  message: string
}

const ACTIVE = new Set(['starting', 'running', 'restarting'])

export function statusBadge(status: string, id?: string): Html {
  return html`<span class="badge s-${status}"${id ? html` id="${id}"` : ''}>${status}</span>`
}

/**
 * Every row has the same buttons in the same places; those that do not apply now are disabled,
 * so nothing moves under the pointer while an instance starts or stops.
 */
function actionButton(name: string, action: 'start' | 'stop' | 'restart', label: string, enabled: boolean): Html {
  // The id lets htmx put keyboard focus back on the button after a poll replaces the list.
  return html`<button type="button" id="${action}-${name}" hx-post="/ui/instances/${seg(name)}/${action}"
    hx-target="#instances" hx-swap="outerHTML" hx-sync="#instances:replace"${enabled ? '' : html` disabled`}>${label}<span class="vh"> ${name}</span></button>`
}

function row(i: InstanceItem, now: number, nodes: boolean, groups: boolean): Html {
  const canStart = !ACTIVE.has(i.status) && i.status !== 'stopping' && i.status !== 'unknown'
  const canStop = ACTIVE.has(i.status)
  const why = i.error !== null && (i.status === 'failed' || i.status === 'restarting' || i.status === 'unknown')
  return html`<tr id="row-${i.name}" class="instance s-${i.status}">
  <th scope="row" data-label="Name" class="name">${i.remote ? i.name : html`<a id="logs-${i.name}" href="/ui/instances/${seg(i.name)}/logs" title="its page: log, activity, how to connect">${i.name}</a>`}${i.aliases?.length ? html` <span class="muted small">also ${i.aliases.join(', ')}</span>` : ''}</th>
  <td data-label="Status">${statusBadge(i.status)}${i.restarts > 0 ? html` <span class="muted small">${i.restarts} restart${i.restarts === 1 ? '' : 's'}</span>` : ''}${i.queued ? html` <span class="muted small" title="requests waiting for a free slot (max_concurrent_requests)">${i.queued} queued${i.queuedForMs != null ? `, longest ${(i.queuedForMs / 1000).toFixed(1)} s` : ''}</span>` : ''}</td>
  ${nodes ? html`<td data-label="Node">${i.node ?? ''}</td>` : ''}
  <td data-label="Model" class="model">${i.model ? html`<span title="${i.model}">${i.model}</span>` : '—'}</td>
  <td data-label="Backend">${i.backend}</td>
  ${groups ? html`<td data-label="Group">${i.group ?? '—'}</td>` : ''}
  <td data-label="Port">${i.port ?? '—'}</td>
  <td data-label="Uptime">${i.readySince ? duration(now - i.readySince) : '—'}</td>
  <td data-label="Last request">${ago(i.lastRequest, now)}</td>
  <td data-label="Last 10 min" class="small">${i.activity}</td>
  <td class="cell-actions"><div class="actions">
    ${actionButton(i.name, 'start', 'Start', canStart)}
    ${actionButton(i.name, 'stop', 'Stop', canStop)}
    ${actionButton(i.name, 'restart', 'Restart', i.status === 'running')}
    ${i.remote
      ? ''
      : html`<a class="button" id="edit-${i.name}" href="/ui/instances/${seg(i.name)}/edit">Edit<span class="vh"> ${i.name}</span></a>`}
    <button type="button" class="danger" id="delete-${i.name}" hx-post="/ui/instances/${seg(i.name)}/delete"
      hx-target="#instances" hx-swap="outerHTML" hx-sync="#instances:replace"
      hx-confirm="Delete the instance ${i.name}? It is stopped first and its logs are removed.">Delete<span class="vh"> ${i.name}</span></button>
  </div></td>
</tr>
${why
    ? html`<tr class="why s-${i.status}"><td colspan="${9 + (nodes ? 1 : 0) + (groups ? 1 : 0)}">
  <p class="error"><strong>${i.status === 'failed' ? 'Failed' : i.status === 'unknown' ? 'Unknown' : 'Restarting'}:</strong> ${i.error}</p>
  ${i.lastLines.length ? html`<pre class="log small" aria-label="Last log lines of ${i.name}">${i.lastLines.map((l) => html`${l}\n`)}</pre>` : ''}
</td></tr>`
    : ''}`
}

/** The polled fragment: replaces itself every 2 s (and after each action). */
export function instanceList(items: InstanceItem[], now: number): Html {
  // The node column only where instances run on more than one node.
  const nodes = new Set(items.map((i) => i.node)).size > 1 || items.some((i) => i.remote)
  // The group column only where some instance has a group.
  const groups = items.some((i) => i.group)
  return html`<section id="instances" class="instances" aria-label="Instances" hx-get="/ui" hx-trigger="every 2s" hx-swap="outerHTML">
${items.length === 0
    ? html`<p class="empty">No instances yet. <a href="/ui/instances/new">Create the first one</a>.</p>`
    : html`<table class="list">
  <thead><tr><th scope="col">Name</th><th scope="col">Status</th>${nodes ? html`<th scope="col">Node</th>` : ''}<th scope="col">Model</th><th scope="col">Backend</th>${groups ? html`<th scope="col">Group</th>` : ''}<th scope="col">Port</th><th scope="col">Uptime</th><th scope="col">Last request</th><th scope="col">Last 10 min</th><th scope="col"><span class="vh">Actions</span></th></tr></thead>
  <tbody>
${items.map((i) => row(i, now, nodes, groups))}
  </tbody>
</table>`}
</section>`
}

/** The message after an action, swapped in out of band so the next poll leaves it alone. */
export function flashBox(flash: Flash | null, oob = false): Html {
  return html`<div id="flash" class="flash${flash ? ` ${flash.kind}` : ''}" role="status"${oob ? html` hx-swap-oob="true"` : ''}>${flash?.message ?? ''}</div>`
}

export function instancesPage(ctx: PageContext, items: InstanceItem[], now: number, flash: Flash | null = null, connect: Html | null = null): Html {
  const body = html`<div class="page-head">
  <h1>Instances</h1>
  <a class="button primary" href="/ui/instances/new">New instance</a>
</div>
${flashBox(flash)}
${instanceList(items, now)}
${connect ?? ''}`
  return layout(ctx, { title: 'Instances', section: 'instances', body })
}
