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

/** For a figure that is llamactl's difference from the floor: is it inside the floor-against-floor band? */
export function floorCall(f: Figure): FloorCall | null {
  if (f.relativeTo !== 'floor') return null
  if (!f.noise) return 'noise not measured'
  return Math.abs(f.value) <= f.noise.band ? 'within noise' : 'finding'
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
  return f.noise ? `±${fmtValue(f.noise.band, f.unit)} (${f.noise.how})` : 'not measured'
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
  if (c === 'finding') return `**a finding**: ${figureText(f)} ${f.value > 0 ? 'above' : 'below'} the floor, outside ±${fmtValue(f.noise!.band, f.unit)}`
  return c
}

function cell(c: Cell, unit?: Unit): string {
  if (c === null) return ''
  if (typeof c === 'number') return unit ? fmtValue(c, unit) : String(c)
  return c
}

const esc = (s: string) => s.replace(/\|/g, '\\|')

/** Markdown for the benchmark block (without the markers). */
export function render(results: Results, previous?: Results | null): string {
  const prevFigures = new Map<string, Figure>()
  for (const s of previous?.sections ?? []) for (const f of s.figures) prevFigures.set(f.id, f)
  const all = results.sections.flatMap((s) => s.figures)
  const lines: string[] = []
  const p = (l = '') => lines.push(l)

  p(`Generated by \`bun bench/report.ts\` from \`bench/results.json\`: run of ${results.date} on ${results.machine}, commit ${results.commit}.${results.quick ? ' **QUICK run: short windows, not for the record.**' : ''}`)
  p(previous ? `Last run, for comparison: ${previous.date}${previous.quick ? ' (a QUICK run)' : ''}, commit ${previous.commit} (\`bench/results.previous.json\`).` : 'No earlier run to compare with.')
  p()

  const checks = all.flatMap((f) => f.targets.map((t) => ({ f, t, v: verdict(f, t) })))
  const missed = checks.filter((c) => !c.v.met)
  const findings = all.filter((f) => floorCall(f) === 'finding')
  const worse = all.filter((f) => change(f, prevFigures.get(f.id)).kind === 'worse')
  p('### Verdicts')
  p()
  p(`${checks.length} targets: ${checks.length - missed.length} met, ${missed.length} missed${missed.length ? ` (${missed.map((c) => `${esc(c.f.label)} ${targetText(c.f, c.t)}`).join('; ')})` : ''}.`)
  p(`Against the floor, outside its noise band: ${findings.length ? findings.map((f) => `${esc(f.label)} (${figureText(f)})`).join('; ') : 'none'}.`)
  p(`Worse than the last run beyond the noise band: ${worse.length ? worse.map((f) => esc(f.label)).join('; ') : 'none'}.`)
  p()
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
  const r = JSON.parse(readFileSync(path, 'utf8')) as Partial<Results>
  return r.format === 2 ? (r as Results) : null
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
