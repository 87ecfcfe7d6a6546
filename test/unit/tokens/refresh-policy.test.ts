import assert from 'node:assert/strict'
import { test } from 'node:test'
import { isStillValid, needsRefresh } from '../../../src/tokens/refresh-policy.ts'

const token = (expiresAt: number) => ({ access_token: 'a', token_type: 'Bearer', expires_at: expiresAt })

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
