/**
 * An instance's last ten minutes, drawn on the server as SVG: requests and errors as bars
 * (left axis), the generation speed the backend measured as a line (right axis, tokens/s),
 * time along the bottom. Only numbers go into the drawing.
 */
import { type ActivitySeries, BUCKET_MS, BUCKETS } from '../src/metrics/recent'
import { html, type Html, raw, seg } from './html'

const W = 1000
const H = 170
const PAD = { left: 34, right: 46, top: 8, bottom: 20 }
const PW = W - PAD.left - PAD.right
const PH = H - PAD.top - PAD.bottom

const sum = (a: number[]) => a.reduce((x, y) => x + y, 0)
const y = (v: number, max: number) => PAD.top + PH - (v / max) * PH

/** A round axis maximum at or above `v`: 1, 2, 5, 10, 20, 50, … */
export function niceMax(v: number): number {
  if (v <= 1) return 1
  const p = 10 ** Math.floor(Math.log10(v))
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p
  return 10 * p
}

function bars(values: number[], max: number, cls: string): string {
  const w = PW / values.length
  return values
    .map((v, i) => (v > 0 ? `<rect class="${cls}" x="${(PAD.left + i * w + 1).toFixed(1)}" y="${y(v, max).toFixed(1)}" width="${(w - 2).toFixed(1)}" height="${((v / max) * PH).toFixed(1)}"/>` : ''))
    .join('')
}

/** The speed line, broken where a bucket has no reading. */
function line(values: (number | null)[], max: number, cls: string): string {
  const w = PW / values.length
  const runs: string[][] = [[]]
  values.forEach((v, i) => {
    if (v === null) runs.push([])
    else runs.at(-1)!.push(`${(PAD.left + i * w + w / 2).toFixed(1)},${y(v, max).toFixed(1)}`)
  })
  return runs
    .filter((r) => r.length)
    .map((pts) => (pts.length === 1 ? `<circle class="${cls}" r="2.5" cx="${pts[0]!.split(',')[0]}" cy="${pts[0]!.split(',')[1]}"/>` : `<polyline class="${cls}" fill="none" points="${pts.join(' ')}"/>`))
    .join('')
}

function axes(maxReq: number, maxSpeed: number | null): string {
  const x0 = PAD.left
  const x1 = PAD.left + PW
  const yb = PAD.top + PH
  const t = (x: number, yy: number, anchor: string, text: string, cls = 'axis') => `<text class="${cls}" x="${x}" y="${yy}" text-anchor="${anchor}">${text}</text>`
  const minutes = (BUCKETS * BUCKET_MS) / 60_000
  return [
    `<line class="grid" x1="${x0}" y1="${yb}" x2="${x1}" y2="${yb}"/>`,
    `<line class="grid" x1="${x0}" y1="${PAD.top}" x2="${x1}" y2="${PAD.top}"/>`,
    t(x0 - 4, PAD.top + 4, 'end', String(maxReq)),
    t(x0 - 4, yb, 'end', '0'),
    t(x0 - 4, PAD.top + PH / 2 + 4, 'end', 'req', 'axis unit'),
    ...(maxSpeed === null ? [] : [t(x1 + 4, PAD.top + 4, 'start', String(maxSpeed)), t(x1 + 4, yb, 'start', '0'), t(x1 + 4, PAD.top + PH / 2 + 4, 'start', 'tok/s', 'axis unit')]),
    t(x0, H - 5, 'start', `−${minutes} min`),
    t(x0 + PW / 2, H - 5, 'middle', `−${minutes / 2} min`),
    t(x1, H - 5, 'end', 'now'),
  ].join('')
}

function speeds(s: ActivitySeries): number[] {
  return s.speed.filter((v): v is number => v !== null)
}

export function activitySummary(s: ActivitySeries): string {
  const req = sum(s.requests)
  const err = sum(s.errors)
  const tokens = Math.round(sum(s.tokens))
  return `${req} request${req === 1 ? '' : 's'} · ${err} error${err === 1 ? '' : 's'} · ${tokens} token${tokens === 1 ? '' : 's'}`
}

/** The chart and its figures; polls itself every 10 s. */
export function activityChart(name: string, s: ActivitySeries): Html {
  const refresh = html`hx-get="/ui/instances/${seg(name)}/activity" hx-trigger="every 10s" hx-swap="outerHTML"`
  if (sum(s.requests) === 0) {
    return html`<section id="activity" class="activity" aria-label="Activity of the last 10 minutes" ${refresh}>
  <h2 class="small">Last 10 minutes</h2>
  <p class="muted empty">No requests yet in the last 10 minutes.</p>
</section>`
  }
  const maxReq = niceMax(Math.max(...s.requests))
  const sp = speeds(s)
  const maxSpeed = sp.length ? niceMax(Math.max(...sp)) : null
  const svg = `<svg class="chart" viewBox="0 0 ${W} ${H}" role="img" aria-hidden="true">${axes(maxReq, maxSpeed)}${bars(s.requests, maxReq, 'req')}${bars(s.errors, maxReq, 'err')}${maxSpeed === null ? '' : line(s.speed, maxSpeed, 'tps')}</svg>`
  const speedText = sp.length ? `; generation ${Math.round(Math.min(...sp))}–${Math.round(Math.max(...sp))} tokens/s as the backend measured it` : ''
  return html`<section id="activity" class="activity" aria-label="Activity of the last 10 minutes" ${refresh}>
  <h2 class="small">Last 10 minutes <span class="muted">(${activitySummary(s)}${speedText})</span></h2>
  ${raw(svg)}
  <p class="legend small muted"><span class="key req"></span> requests per 10 s <span class="key err"></span> errors <span class="key tps"></span> generation speed (tokens/s, the backend's own timings)</p>
</section>`
}
