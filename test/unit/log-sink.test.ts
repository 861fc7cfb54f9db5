import { describe, expect, test } from 'bun:test'
import { chmodSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { LogSink, MAX_TAIL_LINE } from '../../src/supervisor/log-sink'
import { openFds, tempDir } from '../helpers'

const enc = (s: string) => new TextEncoder().encode(s)

function sink(over: Partial<ConstructorParameters<typeof LogSink>[0]> = {}) {
  const file = join(tempDir(), 'i.log')
  return { file, log: new LogSink({ file, maxFileBytes: 1 << 20, maxFiles: 2, rotate: true, tailLines: 5, ...over }) }
}

describe('log sink', () => {
  test('splits chunks into lines across chunk boundaries, for stdout and stderr separately', () => {
    const { log, file } = sink()
    log.write('out', enc('hel'))
    log.write('err', enc('E1\nE'))
    log.write('out', enc('lo\nwor'))
    log.write('out', enc('ld\r\n'))
    log.write('err', enc('2\n'))
    expect(log.tail()).toEqual(['E1', 'hello', 'world', 'E2'])
    log.close()
    expect(readFileSync(file, 'utf8')).toBe('E1\nhello\nworld\nE2\n')
  })

  test('keeps only the last tailLines in memory; tail(n) gives the last n', () => {
    const { log } = sink()
    for (let i = 0; i < 12; i++) log.write('out', enc(`line ${i}\n`))
    expect(log.tail()).toEqual(['line 7', 'line 8', 'line 9', 'line 10', 'line 11'])
    expect(log.tail(2)).toEqual(['line 10', 'line 11'])
    expect(log.tail(0)).toEqual([])
    expect(log.tail(100)).toHaveLength(5)
  })

  test('since(cursor) gives the lines after a cursor, and how many are no longer kept', () => {
    const { log } = sink()
    expect(log.written).toBe(0)
    log.write('out', enc('a\nb\n'))
    const cursor = log.written
    expect(cursor).toBe(2)
    expect(log.since(cursor)).toEqual({ lines: [], missed: 0 })
    log.note('c')
    log.write('out', enc('d\n'))
    const after = log.since(cursor)
    expect(after.lines).toHaveLength(2)
    expect(after.lines[1]).toBe('d')
    for (let i = 0; i < 10; i++) log.write('out', enc(`n${i}\n`))
    expect(log.since(cursor)).toEqual({ lines: ['n5', 'n6', 'n7', 'n8', 'n9'], missed: 7 })
    // a cursor from another sink (an instance deleted and made again) starts over
    expect(log.since(1000).lines).toEqual(log.tail())
  })

  test('a huge line is written whole to the file and cut in memory', () => {
    const { log, file } = sink()
    const huge = 'x'.repeat(MAX_TAIL_LINE * 4 + 17)
    for (let i = 0; i < huge.length; i += 5000) log.write('out', enc(huge.slice(i, i + 5000)))
    log.write('out', enc('\nafter\n'))
    const [cut, after] = log.tail(2)
    expect(cut!.length).toBeLessThan(MAX_TAIL_LINE + 100)
    expect(cut).toContain('line cut in memory')
    expect(after).toBe('after')
    log.close()
    expect(readFileSync(file, 'utf8')).toBe(`${huge}\nafter\n`)
  })

  test('rotates by size and keeps at most maxFiles old files', () => {
    const { log, file } = sink({ maxFileBytes: 100, maxFiles: 2 })
    for (let i = 0; i < 50; i++) log.write('out', enc(`${String(i).padStart(9, '0')}\n`)) // 10 bytes a line
    log.close()
    expect(readFileSync(file, 'utf8').length).toBeLessThanOrEqual(100)
    expect(existsSync(`${file}.1`)).toBe(true)
    expect(existsSync(`${file}.2`)).toBe(true)
    expect(existsSync(`${file}.3`)).toBe(false)
    expect(readFileSync(file, 'utf8').trim().split('\n').at(-1)).toBe('000000049')
  })

  test('with compress, rotated files become .N.gz holding their lines; the numbering and the cap hold', async () => {
    const { log, file } = sink({ maxFileBytes: 100, maxFiles: 2, compress: true })
    for (let i = 0; i < 25; i++) {
      log.write('out', enc(`${String(i).padStart(9, '0')}\n`)) // 10 bytes a line: a rotation every 10 lines
      if (i % 10 === 9) await log.compressed()
    }
    log.close()
    await log.compressed()
    const lines = (p: string) => new TextDecoder().decode(Bun.gunzipSync(readFileSync(p))).trim().split('\n')
    expect(lines(`${file}.2.gz`)).toEqual(Array.from({ length: 10 }, (_, i) => String(i).padStart(9, '0')))
    expect(lines(`${file}.1.gz`)).toEqual(Array.from({ length: 10 }, (_, i) => String(i + 10).padStart(9, '0')))
    expect(readFileSync(file, 'utf8').trim().split('\n')).toEqual(['000000020', '000000021', '000000022', '000000023', '000000024'])
    for (const gone of [`${file}.1`, `${file}.2`, `${file}.3`, `${file}.3.gz`]) expect(existsSync(gone)).toBe(false)
    expect((statSync(`${file}.1.gz`).mode & 0o777).toString(8)).toBe('600')
    expect(readdirSync(dirname(file)).filter((n) => n.includes('partial'))).toEqual([])
  })

  test('a rotation while a gzip runs leaves that file plain, never a .gz under the wrong number', async () => {
    const { log, file } = sink({ maxFileBytes: 100, maxFiles: 3, compress: true })
    for (let i = 0; i < 30; i++) log.write('out', enc(`${String(i).padStart(9, '0')}\n`))
    log.close()
    await log.compressed()
    // Every rotated file, plain or gzipped, still holds the ten lines its number says.
    for (const n of [1, 2]) {
      const gz = `${file}.${n}.gz`
      const text = existsSync(gz) ? new TextDecoder().decode(Bun.gunzipSync(readFileSync(gz))) : readFileSync(`${file}.${n}`, 'utf8')
      expect(text.trim().split('\n')[0]).toBe(String(20 - n * 10).padStart(9, '0'))
    }
    expect(readdirSync(dirname(file)).filter((n) => n.includes('partial'))).toEqual([])
  })

  test('the log file, its rotated files and the folder it makes are private (0600, 0700) whatever the umask; an older 0644 file too', () => {
    const umask = process.umask(0o022)
    const mode = (p: string) => (statSync(p).mode & 0o777).toString(8)
    try {
      const dir = join(tempDir(), 'logs')
      const file = join(dir, 'i.log')
      let log = new LogSink({ file, maxFileBytes: 100, maxFiles: 2, rotate: true, tailLines: 5 })
      for (let i = 0; i < 25; i++) log.write('out', enc(`${String(i).padStart(9, '0')}\n`))
      log.close()
      expect([file, `${file}.1`, `${file}.2`].map(mode)).toEqual(['600', '600', '600'])
      expect(mode(dir)).toBe('700')

      const old = join(tempDir(), 'old.log')
      writeFileSync(old, 'from an older llamactl\n')
      chmodSync(old, 0o644)
      log = new LogSink({ file: old, maxFileBytes: 1 << 20, maxFiles: 2, rotate: true, tailLines: 5 })
      log.write('out', enc('new line\n'))
      log.close()
      expect(mode(old)).toBe('600')
      expect(readFileSync(old, 'utf8')).toBe('from an older llamactl\nnew line\n')
    } finally {
      process.umask(umask)
    }
  })

  test('the file is open only while held (a backend runs); lines written meanwhile still reach it, rotation too', () => {
    const { log, file } = sink({ maxFileBytes: 100, maxFiles: 2 })
    expect(openFds(file)).toBe(0)
    log.note('defined')
    expect(openFds(file)).toBe(0)
    log.hold()
    log.write('out', enc('running\n'))
    expect(openFds(file)).toBe(1)
    for (let i = 0; i < 15; i++) log.write('out', enc(`${String(i).padStart(9, '0')}\n`))
    expect(openFds(file)).toBe(1)
    log.release()
    expect(openFds(file)).toBe(0)
    log.note('stopped')
    expect(openFds(file)).toBe(0)
    expect(existsSync(`${file}.1`)).toBe(true)
    expect(readFileSync(file, 'utf8').trim().split('\n').at(-1)).toEndWith('stopped')
    expect(log.tail(2)).toEqual(['000000014', expect.stringContaining('stopped')])
    log.close()
    log.write('out', enc('after close\n'))
    expect(openFds(file)).toBe(0)
    expect(readFileSync(file, 'utf8')).not.toContain('after close')
  })

  test('multi-byte characters split across chunks survive', () => {
    const { log } = sink()
    const bytes = enc('héllo 🦙\n')
    log.write('out', bytes.slice(0, 2))
    log.write('out', bytes.slice(2, 9))
    log.write('out', bytes.slice(9))
    expect(log.tail()).toEqual(['héllo 🦙'])
  })

  test('a log file that cannot be written (its folder is a file, read-only, …) leaves a memory-only log, not an error', () => {
    const dir = tempDir()
    writeFileSync(join(dir, 'not-a-dir'), '')
    const log = new LogSink({ file: join(dir, 'not-a-dir', 'i.log'), maxFileBytes: 100, maxFiles: 2, rotate: true, tailLines: 5 })
    log.write('out', enc('still here\n'))
    expect(log.tail()[0]).toContain('cannot write the log file')
    expect(log.tail()[1]).toBe('still here')
    log.close()
  })
})
