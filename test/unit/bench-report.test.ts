/**
 * The performance verdicts are computed from bench/results.json, never written by hand: a small
 * results fixture through the classification (met / missed, within noise / a finding, better /
 * worse than the last run) and the rendering, with figures moved across their limits to show the
 * verdict follows the number.
 */
import { afterAll, describe, expect, test } from 'bun:test'
import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import type { Figure, Results } from '../../bench/figures'
import { BEGIN, END, change, floorCall, readResults, render, splice, verdict } from '../../bench/report'
import { floorNoise } from '../../bench/lib'
import { BUN, tempDir } from '../helpers'

const FIXTURE = resolve(import.meta.dir, '../fixtures/bench-results.json')
const load = (): Results => JSON.parse(readFileSync(FIXTURE, 'utf8'))
const fig = (r: Results, id: string): Figure => r.sections.flatMap((s) => s.figures).find((f) => f.id === id)!
/** The table row of a figure's first target, split into cells. */
function row(markdown: string, label: string): string[] {
  const line = markdown.split('\n').find((l) => l.startsWith(`| ${label} |`))
  if (!line) throw new Error(`no row for ${label}`)
  return line.split(' | ').map((c) => c.replace(/^\| | \|$/g, ''))
}
/** The fixture as a last run: RSS was lower, throughput lower, the rest the same. */
function previousRun(): Results {
  const p = load()
  p.date = '2026-11-30T12:00:00.000Z'
  p.commit = 'def5678'
  fig(p, 'rss.idle').value = 64
  fig(p, 'throughput.ratio').value = 0.28
  return p
}
const dirs: string[] = []
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

describe('verdict against the target', () => {
  test('a figure inside its limit is met, with the margin', () => {
    const f = fig(load(), 'health.added_p50')
    const v = verdict(f, f.targets[0]!)
    expect(v.met).toBe(true)
    expect(v.margin).toBeCloseTo(0.05, 9)
    expect(v.decisive).toBe(true)
  })

  test('the same figure moved past its limit is missed, by how much', () => {
    const f = { ...fig(load(), 'health.added_p50'), value: 0.5 }
    const v = verdict(f, f.targets[0]!)
    expect(v.met).toBe(false)
    expect(v.margin).toBeCloseTo(0.2, 9)
  })

  test('≥ targets: a ratio below its limit is missed, above it met', () => {
    const f = fig(load(), 'throughput.ratio')
    expect(verdict(f, f.targets[0]!)).toMatchObject({ met: false })
    expect(verdict(f, f.targets[0]!).margin).toBeCloseTo(0.59, 9)
    expect(verdict({ ...f, value: 0.95 }, f.targets[0]!)).toMatchObject({ met: true })
  })

  test('a margin inside the noise band is not decisive, whichever side it falls', () => {
    const f = fig(load(), 'chat.over_floor_p50') // limit 0.05, band 0.03
    expect(verdict({ ...f, value: 0.06 }, f.targets[0]!)).toMatchObject({ met: false, decisive: false })
    expect(verdict({ ...f, value: 0.04 }, f.targets[0]!)).toMatchObject({ met: true, decisive: false })
    expect(verdict({ ...f, value: 0.1 }, f.targets[0]!)).toMatchObject({ met: false, decisive: true })
  })
})

describe('against the floor', () => {
  test('a difference inside the floor-against-floor band is within noise, outside it a finding', () => {
    const r = load()
    expect(floorCall(fig(r, 'chat.over_floor_p50'))).toBe('within noise') // 0.015 in ±0.03
    expect(floorCall(fig(r, 'health.over_floor_p50'))).toBe('finding') // 0.09 outside ±0.02
    expect(floorCall({ ...fig(r, 'health.over_floor_p50'), value: -0.01 })).toBe('within noise')
    expect(floorCall({ ...fig(r, 'chat.over_floor_p50'), value: -0.05 })).toBe('finding')
  })

  test('a ratio to the floor is judged by its distance from 1', () => {
    const f = { ...fig(load(), 'throughput.ratio'), relativeTo: 'floor' as const } // band 0.01
    expect(floorCall({ ...f, value: 0.995 })).toBe('within noise')
    expect(floorCall({ ...f, value: 1.005 })).toBe('within noise')
    expect(floorCall({ ...f, value: 0.93 })).toBe('finding')
    expect(render({ ...load(), sections: [{ ...load().sections[0]!, figures: [{ ...f, value: 0.93 }] }] }, null)).toContain('**a finding**: 0.930 of the floor, outside ±0.010')
  })

  test('only figures relative to the floor get the call', () => {
    expect(floorCall(fig(load(), 'health.added_p50'))).toBeNull()
  })
})

describe('against the last run', () => {
  const prev = (r: Results, id: string, value: number) => ({ ...fig(r, id), value })

  test('worse beyond the band, within the band, better', () => {
    const r = load()
    expect(change(fig(r, 'rss.idle'), prev(r, 'rss.idle', 64)).kind).toBe('worse') // 70 vs 64, band 0.5
    expect(change(fig(r, 'health.added_p50'), prev(r, 'health.added_p50', 0.26)).kind).toBe('within noise')
    expect(change(fig(r, 'throughput.ratio'), prev(r, 'throughput.ratio', 0.28)).kind).toBe('better') // higher is better
    expect(change(fig(r, 'throughput.ratio'), prev(r, 'throughput.ratio', 0.4)).kind).toBe('worse')
    expect(change(fig(r, 'rss.idle'), undefined).kind).toBe('new')
  })

  test("the band is the larger of this run's and the last run's", () => {
    const r = load()
    const last = { ...prev(r, 'rss.idle', 67), noise: { band: 4, how: 'two processes' } }
    expect(change(fig(r, 'rss.idle'), last)).toMatchObject({ kind: 'within noise', band: 4 })
  })
})

describe('rendering', () => {
  test('each figure with its samples, target, verdict, noise band, floor call and last run', () => {
    const md = render(load(), previousRun())
    expect(row(md, '/health: llamactl added over direct, p50')).toEqual([
      '/health: llamactl added over direct, p50', '+0.250 ms', '3000 requests a path', '≤ 0.300 ms over direct (issue 8)',
      'met, 0.050 ms to spare', '±0.020 ms (two identical floors)', '', 'was +0.250 ms; +0.000 ms, within noise',
    ])
    const floor = row(md, '/health: llamactl over the floor, p50')
    expect(floor[4]).toBe('**missed** by 0.040 ms')
    expect(floor[6]).toBe('**a finding**: +0.090 ms above the floor, outside ±0.020 ms')
    expect(row(md, 'chat: llamactl over the floor, p50')[6]).toBe('within noise')
    expect(row(md, 'throughput, llamactl / direct')[4]).toBe('**missed** by 0.590')
    expect(row(md, 'throughput, llamactl / direct')[7]).toBe('was 0.280; +0.030, better')
    expect(row(md, 'RSS idle')[3]).toBe('(no target)')
    expect(row(md, 'RSS idle')[7]).toBe('was 64.0 MB; **+6.0 MB, worse beyond the noise band (±0.5 MB)**')
  })

  test('the summary counts what the figures say', () => {
    const md = render(load(), previousRun())
    expect(md).toContain(
      [
        '4 targets: 2 met, 2 missed.',
        '',
        'Missed:',
        '',
        '- /health: llamactl over the floor, p50: +0.090 ms against ≤ 0.050 ms over the floor (issue 20), missed by 0.040 ms',
        '- throughput, llamactl / direct: 0.310 against ≥ 0.900 (issue 8), missed by 0.590',
        '',
        'Against the floor, outside its noise band (findings):',
        '',
        '- /health: llamactl over the floor, p50: +0.090 ms above the floor, outside ±0.020 ms',
        '',
        'Worse than the last run beyond the noise band:',
        '',
        '- RSS idle: was 64.0 MB; +6.0 MB, worse beyond the noise band (±0.5 MB)',
      ].join('\n'),
    )
    expect(md).toContain('Last run, for comparison: 2026-11-30T12:00:00.000Z, commit def5678')
  })

  test('moving the figures moves the verdicts', () => {
    const r = load()
    fig(r, 'health.added_p50').value = 0.5
    fig(r, 'throughput.ratio').value = 0.97
    const md = render(r, null)
    expect(row(md, '/health: llamactl added over direct, p50')[4]).toBe('**missed** by 0.200 ms')
    expect(row(md, 'throughput, llamactl / direct')[4]).toBe('met, 0.070 to spare')
    expect(row(md, 'RSS idle')[7]).toBe('no earlier figure')
    expect(md).toContain('No earlier run to compare with.')
    expect(md).toContain('4 targets: 2 met, 2 missed.')
    expect(md).toContain('- /health: llamactl added over direct, p50: +0.500 ms against ≤ 0.300 ms over direct (issue 8), missed by 0.200 ms')
    expect(md).not.toContain('- throughput, llamactl / direct:')
    expect(md).toContain('Worse than the last run beyond the noise band: none.')
  })

  test("the sections' notes and tables follow, numbers in their column's unit", () => {
    const md = render(load(), null)
    expect(md).toContain('### /health through the instance proxy\n\nOne request at a time.')
    expect(md).toContain('| path | p50 | n |\n|---|---|---|\n| direct | 0.100 ms | 3000 |\n| llamactl | 0.350 ms | 3000 |')
  })

  test("the machine's load average is shown when the run recorded it", () => {
    expect(render(load(), null)).not.toContain('Load average')
    expect(render({ ...load(), load: { start: [3.5, 2, 1.25], end: [6, 4.5, 2] } }, null)).toContain('Load average of the machine (1 / 5 / 15 min) as the run started: 3.50 / 2.00 / 1.25; as it ended: 6.00 / 4.50 / 2.00.')
  })

  test('a QUICK run says so', () => {
    expect(render({ ...load(), quick: true }, null)).toContain('QUICK run: short windows, not for the record.')
  })
})

describe('the noise band of two identical floors', () => {
  test('two floors that came out equal still get the band their samples spread allows, the same every time', () => {
    const a = Array.from({ length: 999 }, (_, i) => 1 + (i % 100) / 100)
    const same = floorNoise(a, [...a].reverse(), 50)
    expect(same.observed).toBe(0)
    expect(same.resampled).toBeGreaterThan(0)
    expect(floorNoise(a, [...a].reverse(), 50)).toEqual(same)
  })

  test('floors apart by more than their spread: the observed difference is the larger', () => {
    const a = Array.from({ length: 500 }, (_, i) => 1 + (i % 10) / 1000)
    const n = floorNoise(a, a.map((x) => x + 0.5), 50)
    expect(n.observed).toBeCloseTo(0.5, 9)
    expect(n.resampled).toBeGreaterThanOrEqual(0.5)
  })
})

describe('results of the old harness', () => {
  test('are read as figures of the same ids, without a noise band, so a run still compares with them', () => {
    const dir = tempDir('llamactl-report-')
    dirs.push(dir)
    const path = join(dir, 'old.json')
    const s = (p50: number, p99: number, n: number) => ({ p50, p99, mean: p50, n })
    writeFileSync(path, JSON.stringify({
      machine: 'old machine',
      latency_health: { direct: s(0.1, 0.5, 3000), passthrough: s(0.3, 1.5, 3000), llamactl: s(0.35, 2, 3000) },
      throughput_fake_16: { errors: 0, direct: 1000, passthrough: 400, llamactl: 300 },
      streaming: { direct: { ttfb: s(4, 9, 60), gaps: s(0.3, 2, 1900), events: 2100, reads: 2000 }, passthrough: { ttfb: s(5, 9, 60), gaps: s(0.3, 2, 1900), events: 2100, reads: 1900 }, llamactl: { ttfb: s(5.5, 9, 60), gaps: s(0.4, 2.5, 1800), events: 2100, reads: 1750 } },
      streams256: { peak: 90 * 1024 * 1024, before: 0, failed: 0 },
    }))
    const old = readResults(path)!
    const f = (id: string) => old.sections[0]!.figures.find((x) => x.id === id)
    expect(f('latency.health.added_p50')!.value).toBeCloseTo(0.25, 9)
    expect(f('latency.health.over_floor_p50')!.value).toBeCloseTo(0.05, 9)
    expect(f('throughput.fake.16.vs_floor')!.value).toBeCloseTo(0.75, 9)
    expect(f('streaming.merged')!.value).toBeCloseTo(2100 / 1750 - 2100 / 2000, 9)
    expect(f('footprint.rss_256_streams')!).toMatchObject({ value: 90, unit: 'MB', noise: null })
    expect(f('latency.chat.added_p50')).toBeUndefined()
    // This run's /health figure (0.25, band 0.02) against the old one (0.25): within noise.
    expect(change(fig(load(), 'health.added_p50'), { ...f('latency.health.added_p50')!, id: 'health.added_p50' }).kind).toBe('within noise')
    expect(readResults(join(dir, 'missing.json'))).toBeNull()
  })
})

describe('the document', () => {
  test('splice replaces only what lies between the markers', () => {
    const doc = `# Performance\n\nintro\n\n${BEGIN}\nold figures\n${END}\n\nafter\n`
    expect(splice(doc, 'new')).toBe(`# Performance\n\nintro\n\n${BEGIN}\nnew\n${END}\n\nafter\n`)
    expect(splice('', 'new')).toBe(`# Performance\n\n${BEGIN}\nnew\n${END}\n`)
  })

  test("docs/PERFORMANCE.md's block is exactly what bench/results.json renders to: nothing in it edited by hand", () => {
    const root = resolve(import.meta.dir, '../..')
    const doc = readFileSync(join(root, 'docs/PERFORMANCE.md'), 'utf8')
    const results = readResults(join(root, 'bench/results.json'))
    expect(results).not.toBeNull()
    const block = doc.slice(doc.indexOf(BEGIN) + BEGIN.length + 1, doc.indexOf(END) - 1)
    expect(block).toBe(render(results!, readResults(join(root, 'bench/results.previous.json'))))
    expect(results!.quick).toBe(false)
  })

  test('bun bench/report.ts re-renders the document from the results files alone', () => {
    const dir = tempDir('llamactl-report-')
    dirs.push(dir)
    const prev = join(dir, 'previous.json')
    const doc = join(dir, 'PERFORMANCE.md')
    writeFileSync(prev, JSON.stringify(previousRun()))
    writeFileSync(doc, `# Performance\n\n${BEGIN}\nstale\n${END}\n\nHow to reproduce.\n`)
    const r = Bun.spawnSync([BUN, resolve(import.meta.dir, '../../bench/report.ts'), FIXTURE, prev, doc], { stdout: 'pipe', stderr: 'pipe' })
    expect(r.stderr.toString()).toBe('')
    expect(r.exitCode).toBe(0)
    const text = readFileSync(doc, 'utf8')
    expect(text).toBe(`# Performance\n\n${BEGIN}\n${render(load(), previousRun())}\n${END}\n\nHow to reproduce.\n`)
    expect(text).not.toContain('stale')
  })
})
