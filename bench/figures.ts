/**
 * What a benchmark run records in bench/results.json, and the builders the measurements use.
 * A figure is one number from one run, with the samples behind it, its noise band (measured in
 * the same run) and the targets it is held to. Nothing here renders; bench/report.ts does.
 */

export type Cmp = '<=' | '>='
/** What a figure is measured against: the backend alone, the minimal pass-through, the backend's own start, or nothing. */
export type Relative = 'direct' | 'floor' | 'backend' | 'absolute'
export type Unit = 'ms' | 'ratio' | 'MB' | 'events/read'

export interface Target {
  cmp: Cmp
  limit: number
  /** where the target was set, e.g. "issue 8" */
  source: string
}

export interface Noise {
  /** the figure's uncertainty in its own unit: a difference inside it is not a finding */
  band: number
  /** how the band was measured, e.g. "two identical floors, interleaved" */
  how: string
  /** what the band was taken from, in the figure's unit, e.g. the floors' observed difference */
  parts?: { label: string; value: number }[]
}

export interface Figure {
  /** stable across runs, so a run can be compared with the last */
  id: string
  label: string
  value: number
  unit: Unit
  /** how many samples the figure rests on, and of what */
  n: number
  of: string
  relativeTo: Relative
  better: 'lower' | 'higher'
  noise: Noise | null
  targets: Target[]
}

export type Cell = string | number | null

export interface Table {
  caption: string
  columns: { label: string; unit?: Unit }[]
  rows: Cell[][]
}

export interface SectionResult {
  id: string
  title: string
  /** how the section measures, in words (no figures but those of this run) */
  notes: string[]
  tables: Table[]
  figures: Figure[]
}

export interface Results {
  format: 2
  date: string
  machine: string
  commit: string
  quick: boolean
  /** the machine's load average (1, 5, 15 min) as the run started and ended: others' work on it shows here */
  load?: { start: number[]; end: number[] }
  sections: SectionResult[]
}

export const le = (limit: number, source: string): Target => ({ cmp: '<=', limit, source })
export const ge = (limit: number, source: string): Target => ({ cmp: '>=', limit, source })

/** A figure; `better` follows its first target unless given. */
export function figure(f: Omit<Figure, 'better' | 'targets' | 'noise'> & { better?: Figure['better']; targets?: Target[]; noise?: Noise | null }): Figure {
  const targets = f.targets ?? []
  const better = f.better ?? (targets[0]?.cmp === '>=' ? 'higher' : 'lower')
  return { ...f, better, targets, noise: f.noise ?? null }
}

/** Splits samples taken in sequence into two interleaved halves (even, odd), to measure a figure against itself. */
export function halves<T>(samples: T[]): [T[], T[]] {
  return [samples.filter((_, i) => i % 2 === 0), samples.filter((_, i) => i % 2 === 1)]
}
