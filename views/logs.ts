/** An instance's log: the last lines, then new ones as they come (server-sent events, see page.js). */
import type { ActivitySeries } from '../src/metrics/recent'
import { activityChart } from './activity'
import { html, type Html, seg } from './html'
import { statusBadge } from './instances'
import { layout, type PageContext } from './layout'

export interface LogsView {
  name: string
  status: string
  lines: string[]
  /** How many lines the log had when `lines` was taken: the stream continues from there. */
  cursor: number
  /** Where the whole log is kept. */
  file: string | null
  activity: ActivitySeries
}

/** The status next to the title, polled every 2 s. */
export function logStatus(name: string, status: string): Html {
  return html`<span id="log-status" hx-get="/ui/instances/${seg(name)}/status" hx-trigger="every 2s" hx-swap="outerHTML">${statusBadge(status)}</span>`
}

export function logsPage(ctx: PageContext, v: LogsView): Html {
  const body = html`<div class="page-head">
  <h1>Log of ${v.name}</h1>
  ${logStatus(v.name, v.status)}
  <span class="spacer"></span>
  <a class="button" href="/ui/instances/${seg(v.name)}/edit">Edit</a>
  <a class="button" href="/ui">All instances</a>
</div>
${activityChart(v.name, v.activity)}
<p class="muted small">The latest lines; new ones appear as they are written.
${v.file ? html`The whole log is in <code>${v.file}</code>.` : ''}
<span class="log-state" data-log-state role="status"></span></p>
<pre id="log" class="log" tabindex="0" aria-label="Log of ${v.name}"
  data-log-stream="/ui/instances/${seg(v.name)}/logs/stream?after=${v.cursor}">${v.lines.map((l) => html`${l}\n`)}</pre>`
  return layout(ctx, { title: `Log of ${v.name}`, section: 'instances', body })
}
