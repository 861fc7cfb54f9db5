/** An instance's log: the last lines, then new ones as they come (server-sent events, see page.js). */
import type { ActivitySeries } from '../src/metrics/recent'
import { activityChart } from './activity'
import { html, type Html, seg } from './html'
import { flashBox, statusBadge } from './instances'
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
  /** How to reach it through /v1 (views/connect.ts). */
  connect?: Html
}

/** The status next to the title, polled every 2 s. */
export function logStatus(name: string, status: string): Html {
  return html`<span id="log-status" hx-get="/ui/instances/${seg(name)}/status" hx-trigger="every 2s" hx-swap="outerHTML">${statusBadge(status)}</span>`
}

/** How a line reads: an error, a warning, llamactl's own note, or plain (llama.cpp marks its level with E or W). */
export function lineKind(line: string): 'err' | 'warn' | 'note' | '' {
  if (line.startsWith('[llamactl]')) return /\b(failed|crash|exited unexpectedly|killing|gave up)\b/i.test(line) ? 'err' : 'note'
  if (/^\d+\.\d+\.\d+\.\d+ E /.test(line) || /\b(error|failed|fatal|panic|exception|traceback)\b/i.test(line)) return 'err'
  if (/^\d+\.\d+\.\d+\.\d+ W /.test(line) || /\bwarn(ing)?\b/i.test(line)) return 'warn'
  return ''
}

/** One line of the log: its own element, so it can be marked and searched. */
export function logLine(line: string): Html {
  const kind = lineKind(line)
  return html`<span class="ln${kind ? ` ${kind}` : ''}">${line}\n</span>`
}

export function logsPage(ctx: PageContext, v: LogsView): Html {
  const path = `/ui/instances/${seg(v.name)}`
  const act = (op: string, label: string) =>
    html`<button type="button" hx-post="${path}/${op}?view=logs" hx-target="#log-status" hx-swap="outerHTML">${label}</button>`
  const body = html`<div class="page-head">
  <h1>Log of ${v.name}</h1>
  ${logStatus(v.name, v.status)}
  <span class="spacer"></span>
  ${act('start', 'Start')}${act('stop', 'Stop')}${act('restart', 'Restart')}
  <a class="button" href="${path}/edit">Edit</a>
  <a class="button" href="/ui">All instances</a>
</div>
${flashBox(null)}
${activityChart(v.name, v.activity)}
<p class="muted small">The latest lines; new ones appear as they are written. Errors and warnings are marked.
${v.file ? html`The whole log is in <code>${v.file}</code>.` : ''}
<span class="log-state" data-log-state role="status"></span></p>
<div class="log-tools" data-log-tools>
  <label for="log-search">Search</label>
  <input id="log-search" type="search" data-log-search autocomplete="off" placeholder="show only lines with…">
  <button type="button" data-log-pause aria-pressed="false">Pause</button>
  <a class="button" href="${path}/logs/download" download="${v.name}.log">Download</a>
</div>
<pre id="log" class="log" tabindex="0" aria-label="Log of ${v.name}"
  data-log-stream="${path}/logs/stream?after=${v.cursor}">${v.lines.map(logLine)}</pre>
${v.connect ?? ''}`
  return layout(ctx, { title: `Log of ${v.name}`, section: 'instances', body })
}
