import { describe, expect, test } from 'bun:test'
import { guardIdleConnections, openFiles, openFilesBound, openFilesLimit } from '../../src/http/connections'
import { Logger } from '../../src/log'
import { waitFor } from '../helpers'

describe('the idle-connection guard', () => {
  test('closes idle connections only while the open files are above the bound, also when they cannot be counted (EMFILE)', async () => {
    const lines: string[] = []
    const logger = new Logger({ format: 'text', level: 'info' }, (t) => lines.push(t))
    let open = 10
    let calls = 0
    const server = { closeIdleConnections: () => (calls++, 7) }
    const stop = guardIdleConnections(server, 100, logger, 5, () => open)
    try {
      await Bun.sleep(30)
      expect(calls).toBe(0)
      open = 101
      await waitFor(() => calls >= 1, 2000)
      logger.flush()
      expect(lines.join('')).toContain('101 open files, more than server.max_open_files (100): closed 7 idle keep-alive connection(s)')
      open = 100
      const before = calls
      await Bun.sleep(30)
      expect(calls).toBe(before)
      open = Infinity
      const then = calls
      await waitFor(() => calls > then + 1, 2000)
    } finally {
      stop()
    }
    // one warning a minute at most
    logger.flush()
    expect(lines.join('').split('\n').filter(Boolean)).toHaveLength(1)
  })

  test('the bound: as configured, else 80 % of the open-files limit and at most 8192', () => {
    expect(openFilesBound(150)).toBe(150)
    const limit = openFilesLimit()
    expect(limit).toBeGreaterThan(0)
    expect(openFilesBound(0)).toBe(Math.min(8192, Math.floor(limit! * 0.8)))
    expect(openFiles()).toBeGreaterThan(2)
  })
})
