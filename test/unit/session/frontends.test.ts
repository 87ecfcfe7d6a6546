import assert from 'node:assert/strict'
import { test } from 'node:test'
import { endSessionsOf } from '../../../src/revocation/end-sessions.ts'
import { createSessionEnding } from '../../../src/session/ending.ts'
import { createKeyNames } from '../../../src/session/keys.ts'
import { createKeyring } from '../../../src/session/keyring.ts'
import { createMemoryBackend } from '../../../src/session/memory-backend.ts'
import { createSessionStore } from '../../../src/session/store.ts'
import { sampleRecord, SECRET_A } from '../../contracts/session-store.contract.ts'

/*
 * Sessions of several frontends in one store (docs/frontends.md): the record names its
 * frontend; a read for another frontend finds nothing; index lookups are per frontend, the
 * first frontend keeping the keys of a single-frontend deployment.
 */

const keys = createKeyNames('t:')
const silent = { info: () => {}, debug: () => {} }

function setUp() {
  const backend = createMemoryBackend()
  const store = createSessionStore({
    backend,
    keyring: createKeyring([SECRET_A]),
    keys,
    idleSeconds: 60,
    primaryFrontend: 'shop',
  })
  return { backend, store, ending: createSessionEnding({ store, log: silent }), close: () => store.close() }
}

test("a session is found only by its own frontend; a record written before frontends is the first frontend's", async (t) => {
  const { store, close } = setUp()
  t.after(close)
  const admin = await store.create(sampleRecord({ frontend: 'admin' }))
  const old = await store.create(sampleRecord())
  assert.ok(await store.load(admin.cookieValue, { slide: false, frontend: 'admin' }))
  assert.equal(await store.load(admin.cookieValue, { slide: false, frontend: 'shop' }), undefined)
  assert.deepEqual(await store.find(admin.cookieValue, { slide: true, frontend: 'shop' }), { missing: 'not_ours' })
  assert.ok(await store.load(old.cookieValue, { slide: false, frontend: 'shop' }))
  assert.equal(await store.load(old.cookieValue, { slide: false, frontend: 'admin' }), undefined)
  // Internal reads (no frontend named) find either.
  assert.ok(await store.load(admin.cookieValue, { slide: false }))
})

test("index lookups end only the named frontend's sessions; the first frontend keeps today's index keys", async (t) => {
  const { backend, store, ending, close } = setUp()
  t.after(close)
  const shop = await store.create(sampleRecord({ frontend: 'shop' }))
  const old = await store.create(sampleRecord())
  const admin = await store.create(sampleRecord({ frontend: 'admin' }))
  const { iss, sid, sub } = sampleRecord()
  // The first frontend's sessions (and those that name none) are under the unscoped keys.
  assert.equal((await backend.members(keys.sidIndex(iss, sid!))).length, 2)
  assert.equal((await backend.members(keys.sidIndex(iss, sid!, 'admin'))).length, 1)
  assert.equal(await ending.endIdpSession(iss, sid!, 'backchannel', undefined, 'admin'), 1)
  assert.equal(await store.load(admin.cookieValue, { slide: false }), undefined)
  assert.ok(await store.load(shop.cookieValue, { slide: false }))
  assert.equal(await ending.endSubject(iss, sub, 'backchannel'), 2, "no frontend named: the first one's")
  assert.equal(await store.load(old.cookieValue, { slide: false }), undefined)
})

test("a revocation channel ends the subject's sessions on every frontend of the issuer it is given", async (t) => {
  const { store, ending, close } = setUp()
  t.after(close)
  const shop = await store.create(sampleRecord({ frontend: 'shop' }))
  const admin = await store.create(sampleRecord({ frontend: 'admin' }))
  const blog = await store.create(sampleRecord({ frontend: 'blog' }))
  const { iss, sub } = sampleRecord()
  assert.equal(
    await endSessionsOf(ending, iss, { kind: 'user', sub }, 'security_event', undefined, ['shop', 'admin']),
    2,
  )
  assert.equal(await store.load(shop.cookieValue, { slide: false }), undefined)
  assert.equal(await store.load(admin.cookieValue, { slide: false }), undefined)
  assert.ok(await store.load(blog.cookieValue, { slide: false }), 'a frontend at another issuer is not named')
})
