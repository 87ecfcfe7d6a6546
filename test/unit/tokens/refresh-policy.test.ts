import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import type { SessionRecord } from '../../../src/session/types.ts'
import { decideRefresh, isStillValid, needsRefresh, tokenKeyFor, type RefreshPolicy } from '../../../src/tokens/refresh-policy.ts'

const token = (expiresAt: number) => ({ access_token: 'a', token_type: 'Bearer', expires_at: expiresAt })
const record = (overrides: Partial<SessionRecord> = {}): SessionRecord => ({
  v: 1, iss: 'i', sub: 's', claims: {}, refresh_token: 'ORT1', tokens: { '': token(10_000) },
  created_at: 1000, absolute_expires_at: 1_000_000, refreshed_at: 1000, ...overrides,
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
    assert.deepEqual(decideRefresh(record({ tokens: { '': token(1120) } }), '', 1100, online), { refresh: true, reason: 'expiring' })
    assert.deepEqual(decideRefresh(record(), 'https://orders ', 1100, online), { refresh: true, reason: 'missing' })
  })

  test('online refresh tokens are exchanged once half the IdP idle window has passed since the last exchange (keep-alive)', () => {
    assert.deepEqual(decideRefresh(record(), '', 1000 + 1799, online), { refresh: false })
    assert.deepEqual(decideRefresh(record(), '', 1000 + 1800, online), { refresh: true, reason: 'keep_alive' })
    assert.deepEqual(decideRefresh(record(), '', 1000 + 1800, { ...online, refreshTokenKind: 'offline' }), { refresh: false }, 'offline tokens are not tied to the IdP session')
    assert.deepEqual(decideRefresh(record({ refresh_token: undefined }), '', 1000 + 1800, online), { refresh: false }, 'nothing to exchange')
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
