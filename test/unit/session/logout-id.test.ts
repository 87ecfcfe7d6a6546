import assert from 'node:assert/strict'
import { test } from 'node:test'
import { logoutIdOf } from '../../../src/session/logout-id.ts'

test('issue 13 item 11: the logout id is stable per session, differs between sessions, and reveals nothing of the storage key', () => {
  const a = { storageKey: 'bff:session:{Qm9iJ3Mgc2Vzc2lvbiBrZXk}' }
  const b = { storageKey: 'bff:session:{QWxpY2UncyBzZXNzaW9uIGs}' }
  assert.equal(logoutIdOf(a), logoutIdOf({ ...a }))
  assert.notEqual(logoutIdOf(a), logoutIdOf(b))
  assert.match(logoutIdOf(a), /^[A-Za-z0-9_-]{22}$/)
  assert.ok(!logoutIdOf(a).includes('Qm9i') && !a.storageKey.includes(logoutIdOf(a)))
})
