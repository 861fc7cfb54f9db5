/**
 * The Activity view: the last requests llamactl forwarded, newest first, live (the table polls
 * itself every 2 s with the filter it was drawn with), filterable by instance and outcome.
 * The same records as GET /api/v1/activity.
 */
import type { RequestFilter, RequestRecord } from '../src/metrics/requests'
import { html, type Html } from './html'
import { layout, type PageContext } from './layout'

const ms = (v: number | null) => (v === null ? '—' : v < 1000 ? `${v.toFixed(v < 10 ? 1 : 0)} ms` : `${(v / 1000).toFixed(2)} s`)
const n = (v: number | null) => (v === null ? '—' : String(v))
const time = (at: number) => new Date(at).toISOString().slice(11, 19)

function query(f: RequestFilter): string {
  const q = new URLSearchParams()
  if (f.instance) q.set('instance', f.instance)
  if (f.outcome) q.set('outcome', f.outcome)
  const s = q.toString()
  return s ? `?${s}` : ''
}

export function requestsTable(rows: RequestRecord[], f: RequestFilter): Html {
  return html`<section id="requests" aria-label="Recent requests" hx-get="/ui/activity/requests${query(f)}" hx-trigger="every 2s" hx-swap="outerHTML">
  ${rows.length === 0
    ? html`<p class="muted empty">No requests yet${f.instance || f.outcome ? ' that match' : ''}. Requests to <code>/v1</code> and the instance proxy show here as they end.</p>`
    : html`<table class="list">
    <thead><tr><th scope="col">Time (UTC)</th><th scope="col">Instance</th><th scope="col">Route</th><th scope="col">Status</th><th scope="col" class="num">Prompt</th><th scope="col" class="num">Completion</th><th scope="col" class="num" title="generation speed as the backend measured it">Tokens/s</th><th scope="col" class="num">Duration</th><th scope="col" class="num" title="a stream's first generated token">First token</th></tr></thead>
    <tbody>${rows.map(
      (r) => html`<tr${r.status >= 400 || r.status === 0 ? html` class="failed"` : ''}><td><time datetime="${new Date(r.at).toISOString()}">${time(r.at)}</time></td><td>${r.instance}</td><td>${r.route}</td><td>${String(r.status)}</td><td class="num">${n(r.prompt_tokens)}</td><td class="num">${n(r.completion_tokens)}</td><td class="num">${r.tokens_per_second === null ? '—' : r.tokens_per_second.toFixed(1)}</td><td class="num">${ms(r.duration_ms)}</td><td class="num">${ms(r.first_token_ms)}</td></tr>`,
    )}</tbody>
  </table>`}
</section>`
}

export function activityPage(ctx: PageContext, v: { rows: RequestRecord[]; filter: RequestFilter; instances: string[] }): Html {
  const f = v.filter
  const body = html`<div class="page-head"><h1>Activity</h1><p class="muted small">The last requests forwarded to backends; as JSON: <code>GET /api/v1/activity</code></p></div>
<form class="filters" method="get" action="/ui/activity" hx-get="/ui/activity/requests" hx-target="#requests" hx-swap="outerHTML" hx-trigger="change" hx-push-url="false">
  <label for="a-instance">Instance</label>
  <select id="a-instance" name="instance"><option value="">all</option>${v.instances.map((i) => html`<option value="${i}"${i === f.instance ? html` selected` : ''}>${i}</option>`)}</select>
  <label for="a-outcome">Outcome</label>
  <select id="a-outcome" name="outcome"><option value="">all</option><option value="ok"${f.outcome === 'ok' ? html` selected` : ''}>ok</option><option value="error"${f.outcome === 'error' ? html` selected` : ''}>errors</option></select>
  <noscript><button type="submit">Filter</button></noscript>
</form>
${requestsTable(v.rows, f)}`
  return layout(ctx, { title: 'Activity', section: 'activity', body })
}
