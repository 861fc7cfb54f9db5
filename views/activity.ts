/**
 * An instance's last ten minutes, drawn on the server as SVG: requests and errors as bars,
 * completion tokens per second as a line. Only numbers go into the drawing.
 */
import { type ActivitySeries, BUCKET_MS } from '../src/metrics/recent'
import { html, type Html, raw, seg } from './html'

const W = 600
const H = 120

function bars(values: number[], max: number, cls: string): string {
  const w = W / values.length
  return values
    .map((v, i) => (v > 0 ? `<rect class="${cls}" x="${(i * w + 1).toFixed(1)}" y="${(H - (v / max) * H).toFixed(1)}" width="${(w - 2).toFixed(1)}" height="${((v / max) * H).toFixed(1)}"/>` : ''))
    .join('')
}

function line(values: number[], max: number, cls: string): string {
  const w = W / values.length
  const pts = values.map((v, i) => `${(i * w + w / 2).toFixed(1)},${(H - (v / max) * H).toFixed(1)}`).join(' ')
  return `<polyline class="${cls}" fill="none" points="${pts}"/>`
}

const sum = (a: number[]) => a.reduce((x, y) => x + y, 0)

export function activitySummary(s: ActivitySeries): string {
  const req = sum(s.requests)
  const err = sum(s.errors)
  const tokens = Math.round(sum(s.tokensPerSecond) * (BUCKET_MS / 1000))
  return `${req} request${req === 1 ? '' : 's'} · ${err} error${err === 1 ? '' : 's'} · ${tokens} token${tokens === 1 ? '' : 's'}`
}

/** The chart and its figures; polls itself every 10 s. */
export function activityChart(name: string, s: ActivitySeries): Html {
  const maxReq = Math.max(1, ...s.requests)
  const maxTps = Math.max(1, ...s.tokensPerSecond)
  const svg = `<svg class="chart" viewBox="0 0 ${W} ${H}" preserveAspectRatio="none" role="img" aria-hidden="true">${bars(s.requests, maxReq, 'req')}${bars(s.errors, maxReq, 'err')}${line(s.tokensPerSecond, maxTps, 'tps')}</svg>`
  return html`<section id="activity" class="activity" aria-label="Activity of the last 10 minutes"
  hx-get="/ui/instances/${seg(name)}/activity" hx-trigger="every 10s" hx-swap="outerHTML">
  <h2 class="small">Last 10 minutes <span class="muted">(${activitySummary(s)}; at most ${Math.max(...s.tokensPerSecond).toFixed(1)} tokens/s)</span></h2>
  ${raw(svg)}
  <p class="legend small muted"><span class="key req"></span> requests <span class="key err"></span> errors <span class="key tps"></span> tokens/s</p>
</section>`
}
