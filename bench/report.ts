/**
 * Renders docs/PERFORMANCE.md's benchmark block from bench/results.json alone: every figure with
 * its samples, its target and the verdict (met or missed, by how much), against the floor (within
 * noise or a finding) and against the last run (bench/results.previous.json).
 *
 * usage: bun bench/report.ts [results.json] [previous.json] [doc]
 *   (defaults: bench/results.json, bench/results.previous.json, docs/PERFORMANCE.md)
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import type { Cell, Figure, Results, Target, Unit } from './figures'

export const BEGIN = '<!-- bench:begin -->'
export const END = '<!-- bench:end -->'

export interface Verdict {
  met: boolean
  /** how far the figure is inside (met) or outside (missed) the limit, ≥ 0 */
  margin: number
  /** false when the margin is inside the figure's noise band: the run cannot tell */
  decisive: boolean
}

export function verdict(f: Figure, t: Target): Verdict {
  const met = t.cmp === '<=' ? f.value <= t.limit : f.value >= t.limit
  const margin = Math.abs(f.value - t.limit)
  return { met, margin, decisive: f.noise === null || margin > f.noise.band }
}

export type FloorCall = 'within noise' | 'finding' | 'noise not measured'

/** How far a figure relative to the floor is from "the same as the floor": 0 for a difference, 1 for a ratio. */
export const offFloor = (f: Figure) => (f.unit === 'ratio' ? f.value - 1 : f.value)

/** For a figure that compares llamactl with the floor: is it inside the floor-against-floor band? */
export function floorCall(f: Figure): FloorCall | null {
  if (f.relativeTo !== 'floor') return null
  if (!f.noise) return 'noise not measured'
  return Math.abs(offFloor(f)) <= f.noise.band ? 'within noise' : 'finding'
}

export interface Change {
  kind: 'new' | 'within noise' | 'better' | 'worse'
  previous?: number
  delta?: number
  /** the band the change was judged against: the larger of this run's and the last run's */
  band?: number
}

/** This run's figure against the same figure of the last run. */
export function change(f: Figure, prev: Figure | undefined): Change {
  if (!prev || prev.unit !== f.unit) return { kind: 'new' }
  const delta = f.value - prev.value
  const band = Math.max(f.noise?.band ?? 0, prev.noise?.band ?? 0)
  if (Math.abs(delta) <= band) return { kind: 'within noise', previous: prev.value, delta, band }
  const worse = f.better === 'lower' ? delta > 0 : delta < 0
  return { kind: worse ? 'worse' : 'better', previous: prev.value, delta, band }
}

const DIGITS: Record<Unit, number> = { ms: 3, ratio: 3, MB: 1, 'events/read': 3 }
const SUFFIX: Record<Unit, string> = { ms: ' ms', ratio: '', MB: ' MB', 'events/read': '' }

export function fmtValue(v: number, unit: Unit, signed = false): string {
  if (!Number.isFinite(v)) return String(v)
  const s = v.toFixed(DIGITS[unit])
  return `${signed && v >= 0 ? '+' : ''}${s}${SUFFIX[unit]}`
}

const signedFigure = (f: Figure) => f.relativeTo !== 'absolute' && f.unit !== 'ratio'
const figureText = (f: Figure) => fmtValue(f.value, f.unit, signedFigure(f))
const RELATIVE: Record<Figure['relativeTo'], string> = { direct: 'over direct', floor: 'over the floor', backend: "over the backend's own", absolute: '' }

export function targetText(f: Figure, t: Target): string {
  const rel = f.unit === 'ratio' ? '' : RELATIVE[f.relativeTo]
  return `${t.cmp === '<=' ? '≤' : '≥'} ${fmtValue(t.limit, f.unit, false)}${rel ? ` ${rel}` : ''} (${t.source})`
}

export function verdictText(f: Figure, t: Target): string {
  const v = verdict(f, t)
  const by = fmtValue(v.margin, f.unit)
  const text = v.met ? `met, ${by} to spare` : `**missed** by ${by}`
  return v.decisive ? text : `${text} (inside the noise band)`
}

export function noiseText(f: Figure): string {
  if (!f.noise) return 'not measured'
  const parts = (f.noise.parts ?? []).map((x) => `${x.label} ${fmtValue(x.value, f.unit)}`)
  return `±${fmtValue(f.noise.band, f.unit)} (${[f.noise.how, ...parts].join('; ')})`
}

export function changeText(f: Figure, c: Change): string {
  if (c.kind === 'new') return 'no earlier figure'
  const was = `was ${fmtValue(c.previous!, f.unit, signedFigure(f))}`
  const d = fmtValue(c.delta!, f.unit, true)
  if (c.kind === 'within noise') return `${was}; ${d}, within noise`
  if (c.kind === 'better') return `${was}; ${d}, better`
  return `${was}; **${d}, worse beyond the noise band (±${fmtValue(c.band!, f.unit)})**`
}

function floorText(f: Figure): string {
  const c = floorCall(f)
  if (c === null) return ''
  if (c === 'finding') {
    const what = f.unit === 'ratio' ? `${fmtValue(f.value, f.unit)} of the floor` : `${figureText(f)} ${f.value > 0 ? 'above' : 'below'} the floor`
    return `**a finding**: ${what}, outside ±${fmtValue(f.noise!.band, f.unit)}`
  }
  return c
}

function cell(c: Cell, unit?: Unit): string {
  if (c === null) return ''
  if (typeof c === 'number') return unit ? fmtValue(c, unit) : String(c)
  return c
}

const esc = (s: string) => s.replace(/\|/g, '\\|')

/** Markdown for the benchmark block (without the markers). */
export function render(results: Results, previous?: Results | null, files = { results: 'bench/results.json', previous: 'bench/results.previous.json' }): string {
  const prevFigures = new Map<string, Figure>()
  for (const s of previous?.sections ?? []) for (const f of s.figures) prevFigures.set(f.id, f)
  const all = results.sections.flatMap((s) => s.figures)
  const lines: string[] = []
  const p = (l = '') => lines.push(l)

  p(`Generated by \`bun bench/report.ts\` from \`${files.results}\`: run of ${results.date} on ${results.machine}, commit ${results.commit}.${results.quick ? ' **QUICK run: short windows, not for the record.**' : ''}`)
  if (results.load) {
    const l = (xs: number[]) => xs.map((x) => x.toFixed(2)).join(' / ')
    p(`Load average of the machine (1 / 5 / 15 min) as the run started: ${l(results.load.start)}; as it ended: ${l(results.load.end)}.`)
  }
  p(previous ? `Last run, for comparison: ${previous.date}${previous.quick ? ' (a QUICK run)' : ''}, commit ${previous.commit} (\`${files.previous}\`).` : 'No earlier run to compare with.')
  p()

  const checks = all.flatMap((f) => f.targets.map((t) => ({ f, t, v: verdict(f, t) })))
  const missed = checks.filter((c) => !c.v.met)
  const findings = all.filter((f) => floorCall(f) === 'finding')
  const worse = all.filter((f) => change(f, prevFigures.get(f.id)).kind === 'worse')
  const list = (title: string, items: string[]) => {
    p(`${title}${items.length ? ':' : ': none.'}`)
    if (items.length) {
      p()
      for (const i of items) p(`- ${i}`)
    }
    p()
  }
  p('### Verdicts')
  p()
  p(`${checks.length} targets: ${checks.length - missed.length} met, ${missed.length} missed.`)
  p()
  list('Missed', missed.map((c) => `${c.f.label}: ${figureText(c.f)} against ${targetText(c.f, c.t)}, missed by ${fmtValue(c.v.margin, c.f.unit)}${c.v.decisive ? '' : ' (inside the noise band)'}`))
  list('Against the floor, outside its noise band (findings)', findings.map((f) => `${f.label}: ${floorText(f).replace('**a finding**: ', '')}`))
  list('Worse than the last run beyond the noise band', worse.map((f) => `${f.label}: ${changeText(f, change(f, prevFigures.get(f.id))).replace(/\*\*/g, '')}`))
  p('| figure | value | samples | target | verdict | noise band | against the floor | against the last run |')
  p('|---|---|---|---|---|---|---|---|')
  for (const f of all) {
    const ts: (Target | null)[] = f.targets.length ? f.targets : [null]
    for (const t of ts) {
      const row = [
        esc(f.label),
        figureText(f),
        `${f.n} ${f.of}`,
        t ? targetText(f, t) : '(no target)',
        t ? verdictText(f, t) : '',
        noiseText(f),
        floorText(f),
        changeText(f, change(f, prevFigures.get(f.id))),
      ]
      p(`| ${row.join(' | ')} |`)
    }
  }

  for (const s of results.sections) {
    p()
    p(`### ${s.title}`)
    for (const n of s.notes) {
      p()
      p(n)
    }
    for (const t of s.tables) {
      p()
      p(`**${t.caption}**`)
      p()
      p(`| ${t.columns.map((c) => esc(c.label)).join(' | ')} |`)
      p(`|${t.columns.map(() => '---').join('|')}|`)
      for (const r of t.rows) p(`| ${r.map((c, i) => esc(cell(c, t.columns[i]?.unit))).join(' | ')} |`)
    }
  }
  return lines.join('\n')
}

/** Puts `block` between the markers of `doc`, or a new document around it. */
export function splice(doc: string, block: string): string {
  const text = `${BEGIN}\n${block}\n${END}`
  const a = doc.indexOf(BEGIN)
  const b = doc.indexOf(END)
  if (a < 0 || b < a) return `# Performance\n\n${text}\n${doc ? `\n${doc}` : ''}`
  return doc.slice(0, a) + text + doc.slice(b + END.length)
}

export function readResults(path: string): Results | null {
  if (!existsSync(path)) return null
  const r = JSON.parse(readFileSync(path, 'utf8'))
  if (r.format === 2) return r as Results
  return 'latency_health' in r ? fromFormat1(r) : null
}

/**
 * The results of the harness before figures had ids (one floor, no noise band, no date), as
 * figures of the same ids where they were measured the same way, so a run can be compared with
 * the last run of the old harness. Figures it did not record (idle RSS, RSS with 1,000 instances)
 * stay without a comparison.
 */
export function fromFormat1(old: Record<string, any>): Results {
  const figures: Figure[] = []
  const add = (id: string, value: number | undefined, unit: Unit, n: number | undefined, better: Figure['better'] = 'lower') => {
    if (typeof value === 'number' && Number.isFinite(value)) {
      figures.push({ id, label: id, value, unit, n: n ?? 0, of: 'samples', relativeTo: 'absolute', better, noise: null, targets: [] })
    }
  }
  for (const k of ['health', 'chat']) {
    const l = old[`latency_${k}`]
    if (!l) continue
    const n = l.llamactl?.n
    add(`latency.${k}.added_p50`, l.llamactl?.p50 - l.direct?.p50, 'ms', n)
    add(`latency.${k}.added_p99`, l.llamactl?.p99 - l.direct?.p99, 'ms', n)
    add(`latency.${k}.over_floor_p50`, l.llamactl?.p50 - l.passthrough?.p50, 'ms', n)
    add(`latency.${k}.over_floor_p99`, l.llamactl?.p99 - l.passthrough?.p99, 'ms', n)
    add(`latency.${k}.floor_added_p50`, l.passthrough?.p50 - l.direct?.p50, 'ms', n)
  }
  for (const b of ['fake', 'real']) {
    for (const c of [16, 64]) {
      const t = old[`throughput_${b}_${c}`]
      if (!t) continue
      add(`throughput.${b}.${c}.vs_direct`, t.llamactl / t.direct, 'ratio', undefined, 'higher')
      add(`throughput.${b}.${c}.vs_floor`, t.llamactl / t.passthrough, 'ratio', undefined, 'higher')
    }
  }
  const st = old.streaming
  if (st) {
    add('streaming.ttfb_added_p99', st.llamactl?.ttfb?.p99 - st.direct?.ttfb?.p99, 'ms', st.llamactl?.ttfb?.n)
    add('streaming.gap_added_p99', st.llamactl?.gaps?.p99 - st.direct?.gaps?.p99, 'ms', st.llamactl?.gaps?.n)
    add('streaming.ttfb_over_floor_p50', st.llamactl?.ttfb?.p50 - st.passthrough?.ttfb?.p50, 'ms', st.llamactl?.ttfb?.n)
    add('streaming.gap_over_floor_p50', st.llamactl?.gaps?.p50 - st.passthrough?.gaps?.p50, 'ms', st.llamactl?.gaps?.n)
    add('streaming.merged', st.llamactl?.events / st.llamactl?.reads - st.direct?.events / st.direct?.reads, 'events/read', st.llamactl?.reads)
  }
  add('on_demand.added_p50', old.on_demand?.added_p50, 'ms', old.on_demand?.via?.n)
  add('footprint.instances_1000_p50', old.scale?.instances?.p50, 'ms', old.scale?.instances?.n)
  add('footprint.models_1000_p50', old.scale?.models?.p50, 'ms', old.scale?.models?.n)
  add('footprint.rss_256_streams', old.streams256?.peak / (1024 * 1024), 'MB', 1)
  add('footprint.startup_p50', old.startup?.p50, 'ms', old.startup?.n)
  return {
    format: 2,
    date: 'not recorded (the harness before figures had ids; converted)',
    machine: String(old.machine ?? 'not recorded'),
    commit: 'not recorded',
    quick: false,
    sections: [{ id: 'format1', title: 'converted', notes: [], tables: [], figures }],
  }
}

export function writeDoc(docPath: string, results: Results, previous: Results | null) {
  const old = existsSync(docPath) ? readFileSync(docPath, 'utf8') : ''
  writeFileSync(docPath, splice(old, render(results, previous)))
}

if (import.meta.main) {
  const root = resolve(import.meta.dir, '..')
  const resultsPath = process.argv[2] ?? join(root, 'bench/results.json')
  const previousPath = process.argv[3] ?? join(root, 'bench/results.previous.json')
  const results = readResults(resultsPath)
  if (!results) throw new Error(`${resultsPath}: no results of format 2`)
  const docPath = process.argv[4] ?? join(root, 'docs/PERFORMANCE.md')
  writeDoc(docPath, results, readResults(previousPath))
  console.log(`${docPath} rendered from ${resultsPath}`)
}
