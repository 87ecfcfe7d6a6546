import assert from 'node:assert/strict'
import { test } from 'node:test'
import { noEvents, type GatewayEvents, type TeardownCause } from '../../../src/events.ts'
import type { SessionEndReason } from '../../../src/session/end-reason.ts'
import { createSessionEnding } from '../../../src/session/ending.ts'
import { createKeyNames } from '../../../src/session/keys.ts'
import { createKeyring } from '../../../src/session/keyring.ts'
import { createMemoryBackend } from '../../../src/session/memory-backend.ts'
import { createSessionStore } from '../../../src/session/store.ts'
import { sampleRecord, SECRET_A } from '../../contracts/session-store.contract.ts'

/** A store on the memory backend, and what the ending module reports: counts, log lines, announcements. */
function setUp() {
  const backend = createMemoryBackend()
  const store = createSessionStore({
    backend,
    keyring: createKeyring([SECRET_A]),
    keys: createKeyNames('t:'),
    idleSeconds: 60,
  })
  const counted: Array<[TeardownCause, number]> = []
  const events: GatewayEvents = {
    ...noEvents,
    sessionsEnded: (cause, count) => {
      counted.push([cause, count])
    },
  }
  const lines: Array<{ level: string; obj: Record<string, unknown> }> = []
  const log = {
    info: (obj: object) => {
      lines.push({ level: 'info', obj: obj as Record<string, unknown> })
    },
    debug: (obj: object) => {
      lines.push({ level: 'debug', obj: obj as Record<string, unknown> })
    },
  }
  const announced: SessionEndReason[] = []
  store.onSessionsEnded((_keys, reason) => {
    announced.push(reason)
  })
  const ending = createSessionEnding({ store, events, log })
  return { store, ending, counted, lines, announced, close: () => store.close() }
}

test('ending one session ends every session of its IdP session, counts them once and logs session.ended once', async (t) => {
  const { store, ending, counted, lines, announced, close } = setUp()
  t.after(close)
  const laptop = await store.create(sampleRecord())
  const phone = await store.create(sampleRecord())
  const elsewhere = await store.create(sampleRecord({ sid: 'another-idp-session' }))
  const loaded = (await store.load(laptop.cookieValue, { slide: false }))!
  assert.equal(await ending.endSession(loaded, 'logout'), 2)
  assert.equal(await store.load(laptop.cookieValue, { slide: false }), undefined)
  assert.equal(await store.load(phone.cookieValue, { slide: false }), undefined)
  assert.ok(await store.load(elsewhere.cookieValue, { slide: false }), 'a session of another IdP session stays')
  assert.deepEqual(counted, [['logout', 2]])
  assert.deepEqual(
    lines.filter((line) => line.obj.event === 'session.ended').map((line) => line.obj),
    [{ event: 'session.ended', cause: 'logout', sessions: 2 }],
  )
  await new Promise((resolve) => setImmediate(resolve))
  assert.ok(
    announced.length > 0 && announced.every((reason) => reason === 'logout'),
    `every replica hears why: ${announced.join(',')}`,
  )
})

test("ending by IdP session or by subject names how, with the caller's log when given", async (t) => {
  const { store, ending, counted, lines, close } = setUp()
  t.after(close)
  await store.create(sampleRecord())
  await store.create(sampleRecord({ sid: 'idp-session-2' }))
  const requestLines: object[] = []
  const requestLog = {
    info: (obj: object) => {
      requestLines.push(obj)
    },
    debug: () => {},
  }
  assert.equal(await ending.endIdpSession('https://idp.example/', 'idp-session-1', 'backchannel', requestLog), 1)
  assert.equal(await ending.endSubject('https://idp.example/', 'user-1', 'backchannel', requestLog), 1)
  assert.equal(await ending.endSubject('https://idp.example/', 'nobody', 'backchannel'), 0)
  assert.deepEqual(counted, [
    ['backchannel', 1],
    ['backchannel', 1],
    ['backchannel', 0],
  ])
  assert.deepEqual(requestLines, [
    { event: 'session.ended', cause: 'backchannel', by: 'sid', sessions: 1 },
    { event: 'session.ended', cause: 'backchannel', by: 'sub', sessions: 1 },
  ])
  assert.deepEqual(
    lines.map((line) => line.obj),
    [{ event: 'session.ended', cause: 'backchannel', by: 'sub', sessions: 0 }],
  )
})

test('an expiry found by a request is counted as expired and deletes nothing', async (t) => {
  const { store, ending, counted, lines, close } = setUp()
  t.after(close)
  const live = await store.create(sampleRecord())
  ending.foundExpired()
  assert.deepEqual(counted, [['expired', 1]])
  assert.deepEqual(lines, [{ level: 'debug', obj: { event: 'session.expired' } }])
  assert.ok(await store.load(live.cookieValue, { slide: false }))
})
