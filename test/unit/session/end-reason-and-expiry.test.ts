import assert from 'node:assert/strict'
import { test } from 'node:test'
import { decodeRemoval, encodeRemoval, endReasonFor, SESSION_END_REASONS } from '../../../src/session/end-reason.ts'
import { capAbsoluteDeadline, declaredSessionExpiry } from '../../../src/session/session-expiry.ts'

test('issue 17 item 4: a removal announcement carries its reason and round-trips; one without a reason (an older replica) reads as ended', () => {
  const keys = ['bff:session:{abc}', 'bff:session:{def}']
  for (const reason of SESSION_END_REASONS)
    assert.deepEqual(decodeRemoval(encodeRemoval(keys, reason)), { keys, reason })
  assert.deepEqual(decodeRemoval(encodeRemoval(keys)), { keys, reason: 'ended' })
  assert.equal(
    encodeRemoval(keys),
    'bff:session:{abc} bff:session:{def}',
    'replicas that know no reason still read the keys',
  )
})

test('issue 17 item 4: only a known reason in first place is a reason; a key prefix that looks like one stays a key', () => {
  assert.deepEqual(decodeRemoval('!unknown bff:session:{a}'), {
    keys: ['!unknown', 'bff:session:{a}'],
    reason: 'ended',
  })
  assert.deepEqual(decodeRemoval('!logoutsession:{a}'), { keys: ['!logoutsession:{a}'], reason: 'ended' })
  assert.deepEqual(decodeRemoval('!logout !logoutsession:{a}'), { keys: ['!logoutsession:{a}'], reason: 'logout' })
  assert.deepEqual(decodeRemoval(''), { keys: [], reason: 'ended' })
})

test('issue 17 item 4: teardown causes map onto the reasons a page is told', () => {
  assert.equal(endReasonFor('invalid_grant'), 'revoked')
  assert.equal(endReasonFor('backchannel'), 'backchannel_logout')
  assert.equal(endReasonFor('logout'), 'logout')
  assert.equal(endReasonFor('expired'), 'expired')
})

test('issue 17 item 5: session_expiry caps the absolute deadline and never raises it; anything but a positive NumericDate is ignored', () => {
  assert.equal(capAbsoluteDeadline(2000, { session_expiry: 1500 }), 1500)
  assert.equal(capAbsoluteDeadline(2000, { session_expiry: 1500.9 }), 1500)
  assert.equal(capAbsoluteDeadline(2000, { session_expiry: 2500 }), 2000)
  assert.equal(capAbsoluteDeadline(2000, undefined), 2000)
  for (const value of ['1500', null, -1, 0, Number.NaN, Infinity, { at: 1 }, [1500], true]) {
    assert.equal(declaredSessionExpiry({ session_expiry: value }), undefined, String(value))
    assert.equal(capAbsoluteDeadline(2000, { session_expiry: value }), 2000)
  }
})
