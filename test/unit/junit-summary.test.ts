/**
 * The CI line must be red whenever the run is: real bun runs of deliberately broken test files
 * (one that throws while loading, a failing beforeAll, a wrong assertion) through the summary.
 */
import { afterAll, describe, expect, test } from 'bun:test'
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { declaredTests, summarizeSuite, totalLine } from '../../scripts/junit-summary'
import { BUN, tempDir } from '../helpers'

const SCRIPT = resolve(import.meta.dir, '../../scripts/junit-summary.ts')
const dirs: string[] = []
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

const GOOD = `import { test, expect } from 'bun:test'
test('one', () => expect(1).toBe(1))
test('two', () => expect(2).toBe(2))
`
const BROKEN: Record<string, string> = {
  'throws while loading': `import { test, expect } from 'bun:test'
throw new Error('this file fails to load')
test('a', () => expect(1).toBe(1))
test('b', () => expect(1).toBe(1))
`,
  'has a failing beforeAll': `import { beforeAll, describe, test, expect } from 'bun:test'
describe('browser', () => {
  beforeAll(() => { throw new Error('no browser') })
  test('a', () => expect(1).toBe(1))
  test('b', () => expect(1).toBe(1))
  test('c', () => expect(1).toBe(1))
  test('d', () => expect(1).toBe(1))
})
`,
  'has a wrong assertion': `import { test, expect } from 'bun:test'
test('wrong', () => expect(1).toBe(2))
`,
}

/** Runs bun test in a folder of its own as .ci/run does, then the summary script on it. */
async function runSuite(files: Record<string, string>) {
  const dir = tempDir('llamactl-junit-')
  dirs.push(dir)
  mkdirSync(join(dir, 'test'))
  mkdirSync(join(dir, 'test-results'))
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, 'test', name), text)
  const run = Bun.spawn([BUN, 'test', '--reporter=junit', '--reporter-outfile=test-results/s.xml'], { cwd: dir, stdout: 'pipe', stderr: 'pipe' })
  const [out, err, code] = await Promise.all([new Response(run.stdout).text(), new Response(run.stderr).text(), run.exited])
  writeFileSync(join(dir, 'test-results', 's.log'), out + err)
  writeFileSync(join(dir, 'test-results', 's.exit'), String(code))
  const summary = Bun.spawn([BUN, SCRIPT, 's=test/*.test.ts'], { cwd: dir, stdout: 'pipe', stderr: 'pipe' })
  const [text, , summaryCode] = await Promise.all([new Response(summary.stdout).text(), new Response(summary.stderr).text(), summary.exited])
  const lines = text.trim().split('\n')
  return { bunExit: code, summaryCode, last: lines[lines.length - 1]!, text }
}

describe('the CI line', () => {
  test('a clean suite is green and counts every test', async () => {
    const r = await runSuite({ 'good.test.ts': GOOD })
    expect(r.last).toBe('2 passed, 0 failed')
    expect(r.summaryCode).toBe(0)
  })

  for (const [what, text] of Object.entries(BROKEN)) {
    test(`a file that ${what} turns the line red`, async () => {
      const r = await runSuite({ 'good.test.ts': GOOD, 'broken.test.ts': text })
      expect(r.bunExit).not.toBe(0)
      const m = /^(\d+) passed, (\d+) failed/.exec(r.last)
      expect(m).not.toBeNull()
      expect(Number(m![1])).toBe(2)
      // every declared test of the broken file that did not pass counts as failed
      expect(Number(m![2])).toBe(declaredTests(text))
      expect(r.summaryCode).toBe(1)
      if (what !== 'has a wrong assertion') expect(r.text).toContain('broken.test.ts')
    })
  }

  test('a suite that exited non-zero with nothing failing, or left no report, is red', () => {
    const base = { name: 's', console: '', files: [], read: () => '' }
    const clean = '<testsuites><testsuite name="a" file="a.test.ts"><testcase name="x" file="a.test.ts" /></testsuite></testsuites>'
    expect(summarizeSuite({ ...base, junit: clean, exitCode: 0 }).failed).toBe(0)
    const died = summarizeSuite({ ...base, junit: clean, exitCode: 137 })
    expect(died.failed).toBe(1)
    expect(died.notes.join()).toContain('exited 137')
    const none = summarizeSuite({ ...base, junit: null, exitCode: 1 })
    expect(totalLine([none])).toBe('0 passed, 1 failed')
  })

  test('declared tests are counted from the source, comments left out', () => {
    expect(declaredTests("test('a', () => {})\n// test('b')\ntest.skip('c', () => {})\nit('d', () => {})\n/* test('e') */")).toBe(3)
    expect(declaredTests(readFileSync(resolve(import.meta.dir, 'config.test.ts'), 'utf8'))).toBeGreaterThan(5)
  })
})
