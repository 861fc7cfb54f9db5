/** Sums bun's junit reports into the plain line CI reads: "N passed, N failed". */
import { readFileSync } from 'node:fs'

let passed = 0
let failed = 0
let skipped = 0
for (const file of process.argv.slice(2)) {
  let xml: string
  try {
    xml = readFileSync(file, 'utf8')
  } catch {
    console.error(`junit-summary: no report at ${file} (that suite did not run to the end)`)
    failed++
    continue
  }
  const m = /<testsuites[^>]*\btests="(\d+)"[^>]*\bfailures="(\d+)"[^>]*\bskipped="(\d+)"/.exec(xml)
  if (!m) {
    console.error(`junit-summary: ${file} has no totals`)
    failed++
    continue
  }
  const [tests, failures, skips] = [Number(m[1]), Number(m[2]), Number(m[3])]
  // bun counts errors outside tests (a throwing file) under failures too
  passed += tests - failures - skips
  failed += failures
  skipped += skips
}
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`)
process.exit(failed ? 1 : 0)
