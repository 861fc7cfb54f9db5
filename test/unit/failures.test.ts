import { describe, expect, test } from 'bun:test'
import { addressKey, FailureLimit, MAX_HELD } from '../../src/auth/failures'

const settings = { max_failures: 2, failure_window: 60, failure_delay: 1 }

describe('FailureLimit', () => {
  test('limited past max_failures until the window ends; Retry-After is what is left of it', () => {
    let now = 1_000_000
    const limit = new FailureLimit(settings, () => now)
    expect(limit.fail('10.0.0.1').limited).toBe(false)
    now += 10_000
    expect(limit.fail('10.0.0.1').limited).toBe(false)
    const third = limit.fail('10.0.0.1')
    expect(third).toMatchObject({ limited: true, holdMs: 1000, retryAfter: 50 })
    if (third.limited) third.done()
    expect(limit.fail('10.0.0.2').limited).toBe(false) // another address
    now += 50_000 // the window is over: a fresh count
    expect(limit.fail('10.0.0.1').limited).toBe(false)
  })

  test('refuses unchecked only while MAX_HELD answers are held for the address', () => {
    const limit = new FailureLimit(settings)
    limit.fail('10.0.0.1')
    limit.fail('10.0.0.1')
    const held = Array.from({ length: MAX_HELD }, () => limit.fail('10.0.0.1'))
    expect(limit.refusing('10.0.0.1')).toBe(1)
    expect(limit.refusing('10.0.0.2')).toBe(0)
    for (const v of held) if (v.limited) v.done()
    if (held[0]!.limited) held[0]!.done() // twice is once
    expect(limit.heldFor('10.0.0.1')).toBe(0)
    expect(limit.refusing('10.0.0.1')).toBe(0)
  })

  test('the table stays bounded however many addresses fail', () => {
    const limit = new FailureLimit(settings, Date.now, 1000)
    for (let i = 0; i < 20_000; i++) limit.fail(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`)
    expect(limit.size).toBe(1000)
  })

  test('max_failures 0: nothing is counted', () => {
    const limit = new FailureLimit({ ...settings, max_failures: 0 })
    for (let i = 0; i < 10; i++) expect(limit.fail('10.0.0.1').limited).toBe(false)
    expect(limit.size).toBe(0)
  })

  test('addresses: IPv4 as it is (mapped too), IPv6 by /64', () => {
    expect(addressKey('127.0.0.1')).toBe('127.0.0.1')
    expect(addressKey('::ffff:127.0.0.1')).toBe('127.0.0.1')
    expect(addressKey('::1')).toBe('0:0:0:0::/64')
    expect(addressKey('2001:db8:1:2:3:4:5:6')).toBe('2001:db8:1:2::/64')
    expect(addressKey('2001:db8:1:2::7')).toBe('2001:db8:1:2::/64')
    expect(addressKey('2001:0db8:0001:0002:ffff::1%eth0')).toBe('2001:db8:1:2::/64')
    expect(addressKey('fe80::1')).toBe('fe80:0:0:0::/64')
  })
})
