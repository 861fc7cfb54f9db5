import { expect, test } from 'bun:test'
import { NodeClient } from '../../src/nodes/client'
import { backoff } from '../../src/nodes/registry'
import { ConfigError } from '../../src/errors'

test('a node that keeps failing is asked again at a doubling interval, at most 16 intervals and 60 s apart', () => {
  expect([0, 1, 2, 3, 4, 5, 6].map((f) => backoff(5000, f))).toEqual([5000, 10000, 20000, 40000, 60000, 60000, 60000])
  expect([0, 1, 4, 5, 100].map((f) => backoff(200, f))).toEqual([200, 400, 3200, 3200, 3200])
  // An interval past 60 s is never shortened.
  expect(backoff(120_000, 3)).toBe(120_000)
})

test('a CA bundle that cannot be read stops start-up naming the setting it came from', () => {
  const make = (caFile: string, fallback: string) => () => new NodeClient('sec', { address: 'https://127.0.0.1:1', api_key: 'k', ...(caFile && { ca_file: caFile }) }, fallback, 1000)
  expect(make('/nonexistent/ca.pem', '')).toThrow(ConfigError)
  expect(make('/nonexistent/ca.pem', '')).toThrow('nodes.sec.ca_file: cannot read /nonexistent/ca.pem')
  expect(make('', '/nonexistent/all.pem')).toThrow('nodes_ca_file: cannot read /nonexistent/all.pem')
})

test('a node\'s key is only ever its Authorization header; the address path is kept as a prefix', () => {
  const c = new NodeClient('w', { address: 'http://10.0.0.2:8080/llamactl/', api_key: 'the-key' }, '', 1000)
  expect([c.origin, c.prefix, c.authorization(), c.label]).toEqual(['http://10.0.0.2:8080', '/llamactl', 'Bearer the-key', 'node "w"'])
  expect(JSON.stringify(c)).not.toContain('the-key')
})
