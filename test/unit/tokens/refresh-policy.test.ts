import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import type { SessionRecord } from '../../../src/session/types.ts'
import {
  decideRefresh,
  effectiveSkewSeconds,
  isStillValid,
  mustWaitForRefresh,
  needsRefresh,
  skewCapped,
  tokenKeyFor,
  type RefreshPolicy,
} from '../../../src/tokens/refresh-policy.ts'

const token = (expiresAt: number) => ({ access_token: 'a', token_type: 'Bearer', expires_at: expiresAt })
const record = (overrides: Partial<SessionRecord> = {}): SessionRecord => ({
  v: 1,
  iss: 'i',
  sub: 's',
  claims: {},
  refresh_token: 'ORT1',
  tokens: { '': token(10_000) },
  created_at: 1000,
  absolute_expires_at: 1_000_000,
  refreshed_at: 1000,
  ...overrides,
})
const online: RefreshPolicy = { skewSeconds: 30, idleSeconds: 3600, refreshTokenKind: 'online' }

describe('needsRefresh / isStillValid', () => {
  test('a token is refreshed once it is within the skew of its expiry', () => {
    assert.equal(needsRefresh(token(1000), 900, 30), false)
    assert.equal(needsRefresh(token(1000), 969, 30), false)
    assert.equal(needsRefresh(token(1000), 970, 30), true)
    assert.equal(needsRefresh(token(1000), 1001, 0), true)
    assert.equal(needsRefresh(undefined, 0, 30), true)
  })

  test('a token stays usable until its expiry, skew or not', () => {
    assert.equal(isStillValid(token(1000), 999), true)
    assert.equal(isStillValid(token(1000), 1000), false)
    assert.equal(isStillValid(undefined, 0), false)
  })
})

describe('decideRefresh', () => {
  test('a valid token with a recent exchange needs nothing', () => {
    assert.deepEqual(decideRefresh(record(), '', 1100, online), { refresh: false })
  })

  test('expiry within the skew, and a missing audience token, need an exchange', () => {
    assert.deepEqual(decideRefresh(record({ tokens: { '': token(1120) } }), '', 1100, online), {
      refresh: true,
      reason: 'expiring',
    })
    assert.deepEqual(decideRefresh(record(), 'https://orders ', 1100, online), { refresh: true, reason: 'missing' })
  })

  test('online refresh tokens are exchanged once half the IdP idle window has passed since the last exchange (keep-alive)', () => {
    assert.deepEqual(decideRefresh(record(), '', 1000 + 1799, online), { refresh: false })
    assert.deepEqual(decideRefresh(record(), '', 1000 + 1800, online), { refresh: true, reason: 'keep_alive' })
    assert.deepEqual(
      decideRefresh(record(), '', 1000 + 1800, { ...online, refreshTokenKind: 'offline' }),
      { refresh: false },
      'offline tokens are not tied to the IdP session',
    )
    assert.deepEqual(
      decideRefresh(record({ refresh_token: undefined }), '', 1000 + 1800, online),
      { refresh: false },
      'nothing to exchange',
    )
  })

  test('the session check interval forces an exchange after that many seconds', () => {
    const policy = { ...online, checkSeconds: 60 }
    assert.deepEqual(decideRefresh(record(), '', 1059, policy), { refresh: false })
    assert.deepEqual(decideRefresh(record(), '', 1060, policy), { refresh: true, reason: 'session_check' })
  })

  test('a token the upstream refused is replaced, unless it was already replaced', () => {
    assert.deepEqual(decideRefresh(record(), '', 1100, online, 'a'), { refresh: true, reason: 'rejected' })
    assert.deepEqual(decideRefresh(record(), '', 1100, online, 'an-older-token'), { refresh: false })
  })

  test('token keys separate audiences and scopes; the default is the empty key', () => {
    assert.equal(tokenKeyFor({}), '')
    assert.equal(tokenKeyFor({ audience: 'https://orders' }), 'https://orders ')
    assert.notEqual(tokenKeyFor({ audience: 'a', scope: 'read' }), tokenKeyFor({ audience: 'a' }))
    assert.equal(tokenKeyFor({}, { ownDpop: true }), '#dpop')
    assert.equal(tokenKeyFor({ audience: 'https://orders' }, { ownDpop: true }), 'https://orders #dpop')
  })
})

describe('issue 14 item 2: the refresh point fits the token', () => {
  const issued = (at: number, lifetime: number) => ({
    access_token: 'a',
    token_type: 'Bearer',
    issued_at: at,
    expires_at: at + lifetime,
  })

  test('issue 14 item 2: a skew longer than the issued lifetime never makes a fresh token look stale', () => {
    // 20 s tokens, the default 30 s skew: refreshed at most a third of the lifetime early.
    assert.equal(effectiveSkewSeconds(issued(1000, 20), 30), 6)
    assert.equal(needsRefresh(issued(1000, 20), 1000, effectiveSkewSeconds(issued(1000, 20), 30)), false)
    assert.deepEqual(
      decideRefresh(record({ tokens: { '': issued(1000, 20) } }), '', 1000, online),
      { refresh: false },
      'fresh token',
    )
    assert.deepEqual(decideRefresh(record({ tokens: { '': issued(1000, 20) } }), '', 1013, online), { refresh: false })
    assert.deepEqual(decideRefresh(record({ tokens: { '': issued(1000, 20) } }), '', 1014, online), {
      refresh: true,
      reason: 'expiring',
    })
    for (const lifetime of [1, 2, 5, 9, 60, 299]) {
      const skew = effectiveSkewSeconds(issued(1000, lifetime), 300)
      assert.ok(skew <= lifetime / 3, `${lifetime} s token: skew ${skew}`)
      assert.equal(
        needsRefresh(issued(1000, lifetime), 1000, skew),
        false,
        `${lifetime} s token looks stale when issued`,
      )
    }
    // A skew that fits is kept; a token stored without issued_at keeps the configured skew.
    assert.equal(effectiveSkewSeconds(issued(1000, 3600), 30), 30)
    assert.equal(effectiveSkewSeconds(token(1100), 30), 30)
  })

  test('issue 14 item 2: a capped skew is recognised (reported once by the token manager)', () => {
    assert.equal(skewCapped(issued(1000, 20), 30), true)
    assert.equal(skewCapped(issued(1000, 20), 6), false)
    assert.equal(skewCapped(issued(1000, 3600), 30), false)
    assert.equal(skewCapped(token(1100), 30), false, 'unknown lifetime: nothing to report')
  })
})

describe('issue 14 item 1: only a request with no usable token waits', () => {
  test('issue 14 item 1: a valid token inside the skew refreshes in the background; missing, expired, rejected and session checks wait', () => {
    const valid = token(1120)
    assert.equal(mustWaitForRefresh({ refresh: true, reason: 'expiring' }, valid, 1100), false)
    assert.equal(mustWaitForRefresh({ refresh: true, reason: 'keep_alive' }, valid, 1100), false)
    assert.equal(mustWaitForRefresh({ refresh: true, reason: 'expiring' }, valid, 1120), true, 'expired at exp')
    assert.equal(mustWaitForRefresh({ refresh: true, reason: 'expiring' }, valid, 1200), true)
    assert.equal(mustWaitForRefresh({ refresh: true, reason: 'missing' }, undefined, 1100), true)
    assert.equal(mustWaitForRefresh({ refresh: true, reason: 'rejected' }, valid, 1100), true)
    assert.equal(mustWaitForRefresh({ refresh: true, reason: 'session_check' }, valid, 1100), true)
    assert.equal(mustWaitForRefresh({ refresh: false }, valid, 1100), false)
  })
})
