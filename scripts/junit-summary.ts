/**
 * The plain line CI reads, "N passed, N failed", from each suite's junit report, its console
 * output and its exit code, so that it is red whenever the run is:
 * - a failing test counts once (from the junit report);
 * - a test file that never reported (it threw while loading: bun leaves it out of the report)
 *   counts as many tests as it declares, at least one;
 * - a file whose hook failed (a throwing beforeAll: bun reports one "(unnamed)" failure for the
 *   lot) counts the tests it declares that never ran;
 * - an error between tests that bun's own summary counts ("N error") and nothing above explains
 *   counts once each;
 * - a suite that exited non-zero with none of the above counts one, and one with no report at all
 *   counts one (it did not run to the end).
 * Each such case is named on a line of its own before the total.
 *
 * Usage: bun scripts/junit-summary.ts NAME=GLOB … — reads test-results/NAME.xml, NAME.log and
 * NAME.exit (written by .ci/run), and GLOB is the suite's test files.
 */
import { existsSync, readFileSync } from 'node:fs'
import { join, relative, resolve } from 'node:path'

export interface SuiteInput {
  name: string
  /** The junit report's text, or null when there is none. */
  junit: string | null
  /** What bun printed. */
  console: string
  exitCode: number | null
  /** The suite's test files, relative to `root`. */
  files: string[]
  /** Reads a test file (to count the tests it declares). */
  read: (file: string) => string
}

export interface SuiteResult {
  passed: number
  failed: number
  skipped: number
  notes: string[]
}

interface FileReport {
  tests: number
  failures: number
  skipped: number
  hookFailure: boolean
}

/** Per file of a bun junit report: its test cases, failures, skips, and whether a hook failed. */
export function parseJunit(xml: string): Map<string, FileReport> {
  const out = new Map<string, FileReport>()
  // each <testcase …> … (</testcase> or />), with the file it names
  const re = /<testcase\b([^>]*?)(\/>|>([\s\S]*?)<\/testcase>)/g
  for (let m = re.exec(xml); m; m = re.exec(xml)) {
    const attrs = m[1]!
    const inner = m[3] ?? ''
    const file = /\bfile="([^"]*)"/.exec(attrs)?.[1] ?? '?'
    const name = /\bname="([^"]*)"/.exec(attrs)?.[1] ?? ''
    const r = out.get(file) ?? { tests: 0, failures: 0, skipped: 0, hookFailure: false }
    r.tests++
    if (/<failure\b|<error\b/.test(inner)) {
      r.failures++
      if (name === '(unnamed)') r.hookFailure = true
    } else if (/<skipped\b/.test(inner)) r.skipped++
    out.set(file, r)
  }
  // files with no test case at all still appear as <testsuite file="…">
  for (const m of xml.matchAll(/<testsuite\b[^>]*\bfile="([^"]*)"/g)) {
    if (!out.has(m[1]!)) out.set(m[1]!, { tests: 0, failures: 0, skipped: 0, hookFailure: false })
  }
  return out
}

/** Tests a file declares: test(…), it(…), test.skip/only/todo/if(…)(…) — not those made in loops. */
export function declaredTests(source: string): number {
  const code = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '')
  return (code.match(/(?<![\w.])(?:test|it)(?:\.(?:skip|only|todo|failing|serial|concurrent|if\([^)]*\)|skipIf\([^)]*\)|todoIf\([^)]*\)))?\s*\(/g) ?? []).length
}

/** bun's own closing counts ("N pass", "N fail", "N error"). */
export function parseBunSummary(text: string): { pass: number; fail: number; error: number; found: boolean } {
  const n = (word: string) => {
    const all = [...text.matchAll(new RegExp(`^\\s*(\\d+) ${word}$`, 'gm'))]
    return all.length ? Number(all[all.length - 1]![1]) : 0
  }
  return { pass: n('pass'), fail: n('fail'), error: n('errors?'), found: /^Ran \d+ tests? across \d+ files?/m.test(text) }
}

export function summarizeSuite(s: SuiteInput): SuiteResult {
  const notes: string[] = []
  if (s.junit === null) {
    notes.push(`${s.name}: no junit report (the suite did not run to the end; exit ${s.exitCode ?? 'unknown'})`)
    return { passed: 0, failed: 1, skipped: 0, notes }
  }
  const files = parseJunit(s.junit)
  let passed = 0
  let failed = 0
  let skipped = 0
  for (const r of files.values()) {
    passed += r.tests - r.failures - r.skipped
    failed += r.failures
    skipped += r.skipped
  }
  let missing = 0
  for (const file of s.files) {
    const r = files.get(file)
    const declared = declaredTests(s.read(file))
    if (!r) {
      const count = Math.max(1, declared)
      missing++
      failed += count
      notes.push(`${s.name}: ${file} reported nothing (it failed to load?): its ${count} declared test(s) count as failed`)
    } else if (r.hookFailure) {
      const notRun = Math.max(0, declared - (r.tests - r.failures))
      // the "(unnamed)" failure already counts one
      if (notRun > 1) failed += notRun - 1
      notes.push(`${s.name}: ${file}: a hook failed; ${notRun} of its ${declared} declared test(s) never ran and count as failed`)
    }
  }
  const bun = parseBunSummary(s.console)
  const unexplained = bun.error - missing
  if (unexplained > 0) {
    failed += unexplained
    notes.push(`${s.name}: bun counted ${bun.error} error(s) outside tests; ${unexplained} not explained by a file above, counted as failed`)
  }
  if (!bun.found) notes.push(`${s.name}: bun printed no closing summary`)
  if (s.exitCode !== 0 && failed === 0) {
    failed = 1
    notes.push(`${s.name}: exited ${s.exitCode ?? 'unknown'} with no failing test reported; counted as one failure`)
  }
  if (s.exitCode === null) notes.push(`${s.name}: no exit code recorded`)
  return { passed, failed, skipped, notes }
}

export function totalLine(results: SuiteResult[]): string {
  const sum = (k: 'passed' | 'failed' | 'skipped') => results.reduce((a, r) => a + r[k], 0)
  const skipped = sum('skipped')
  return `${sum('passed')} passed, ${sum('failed')} failed${skipped ? `, ${skipped} skipped` : ''}`
}

function readOr(path: string): string | null {
  return existsSync(path) ? readFileSync(path, 'utf8') : null
}

if (import.meta.main) {
  const root = process.cwd()
  const results: SuiteResult[] = []
  for (const arg of process.argv.slice(2)) {
    const eq = arg.indexOf('=')
    if (eq < 1) {
      console.error(`junit-summary: expected NAME=GLOB, got ${JSON.stringify(arg)}`)
      process.exit(2)
    }
    const name = arg.slice(0, eq)
    const glob = new Bun.Glob(arg.slice(eq + 1))
    const files = [...glob.scanSync({ cwd: root })].filter((f) => !f.includes('node_modules/')).sort()
    const exitText = readOr(join('test-results', `${name}.exit`))
    const result = summarizeSuite({
      name,
      junit: readOr(join('test-results', `${name}.xml`)),
      console: readOr(join('test-results', `${name}.log`)) ?? '',
      exitCode: exitText === null ? null : Number(exitText.trim()),
      files: files.map((f) => relative(root, resolve(root, f))),
      read: (f) => readFileSync(resolve(root, f), 'utf8'),
    })
    for (const n of result.notes) console.log(`junit-summary: ${n}`)
    console.log(`junit-summary: ${name}: ${totalLine([result])}`)
    results.push(result)
  }
  const line = totalLine(results)
  console.log(line)
  process.exit(results.some((r) => r.failed > 0) ? 1 : 0)
}
