import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import type { SessionRecord, SessionStore } from '../../src/session/types.ts'

export interface StoreUnderTest {
  store: SessionStore
  /** Every raw value the backend holds (for "nothing in clear" checks), when it can tell. */
  dump?: () => Promise<Buffer[]>
  /** The session keys a user's index holds (the backend's own view, stale entries included). */
  subIndex: (iss: string, sub: string) => Promise<string[]>
}

/** `prefix`: stores made with the same prefix see the same sessions (as replicas do). */
export type MakeStore = (options: {
  idleSeconds: number
  secrets?: string[]
  prefix?: string
}) => Promise<StoreUnderTest>

export const SECRET_A = 'contract-secret-A-0123456789abcdefghijklmnop'
export const SECRET_B = 'contract-secret-B-qrstuvwxyz9876543210ABCDEFG'

export function sampleRecord(overrides: Partial<SessionRecord> = {}): SessionRecord {
  const now = Math.floor(Date.now() / 1000)
  return {
    v: 1,
    iss: 'https://idp.example/',
    sub: 'user-1',
    sid: 'idp-session-1',
    claims: { sub: 'user-1', name: 'User One' },
    id_token: 'eyJ.id-token-plaintext-marker.sig',
    refresh_token: 'ORT-refresh-token-plaintext-marker',
    tokens: { '': { access_token: 'access-token-plaintext-marker', token_type: 'Bearer', expires_at: now + 300 } },
    created_at: now,
    absolute_expires_at: now + 3600,
    refreshed_at: now,
    ...overrides,
  }
}

/**
 * The session store contract (oauth2-proxy's RunSessionStoreTests): every store
 * implementation must pass it, on a real backend, with real time (no fake clock).
 */
export function runSessionStoreContract(name: string, makeStore: MakeStore): void {
  describe(`session store contract: ${name}`, () => {
    test('a created session loads back with the same record', async (t) => {
      const { store } = await makeStore({ idleSeconds: 60 })
      t.after(() => store.close())
      const record = sampleRecord()
      const { cookieValue } = await store.create(record)
      const loaded = await store.load(cookieValue, { slide: false })
      assert.deepEqual(loaded?.record, record)
      assert.ok(loaded.expiresIn > 50 && loaded.expiresIn <= 60)
    })

    test('every login gets a new, unguessable cookie value', async (t) => {
      const { store } = await makeStore({ idleSeconds: 60 })
      t.after(() => store.close())
      const a = await store.create(sampleRecord())
      const b = await store.create(sampleRecord())
      assert.notEqual(a.cookieValue, b.cookieValue)
      assert.match(a.cookieValue, /^[A-Za-z0-9_-]{71}$/)
    })

    test('garbage, truncated and tampered cookie values load nothing', async (t) => {
      const { store } = await makeStore({ idleSeconds: 60 })
      t.after(() => store.close())
      const { cookieValue } = await store.create(sampleRecord())
      const flip = (s: string, i: number) => s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1)
      for (const bad of [
        undefined,
        '',
        'x',
        'garbage'.repeat(20),
        cookieValue.slice(1),
        `${cookieValue}A`,
        flip(cookieValue, 3),
        flip(cookieValue, 20),
        flip(cookieValue, 60),
        '%00'.repeat(24),
      ]) {
        assert.equal(await store.load(bad, { slide: false }), undefined, `loaded with ${JSON.stringify(bad)}`)
      }
    })

    test('find says why there is no session: no cookie, not one of ours, or ours and ended', async (t) => {
      const { store } = await makeStore({ idleSeconds: 60 })
      t.after(() => store.close())
      const { cookieValue, handle } = await store.create(sampleRecord())
      const found = await store.find(cookieValue, { slide: false })
      assert.ok(!('missing' in found))
      assert.equal(found.record.sub, 'user-1')
      assert.deepEqual(await store.find(undefined, { slide: false }), { missing: 'no_cookie' })
      for (const bad of ['', 'garbage', cookieValue.slice(1), '%00'.repeat(24)])
        assert.deepEqual(await store.find(bad, { slide: false }), { missing: 'not_ours' }, JSON.stringify(bad))
      // Another secret's cookie of the right shape is not ours either (its kid is unknown).
      const { store: other } = await makeStore({ idleSeconds: 60, secrets: [SECRET_B] })
      t.after(() => other.close())
      const foreign = await other.create(sampleRecord())
      assert.deepEqual(await store.find(foreign.cookieValue, { slide: false }), { missing: 'not_ours' })
      // The secret part tampered with: ours, but no record opens with it.
      const at = cookieValue.length - 2
      assert.deepEqual(
        await store.find(cookieValue.slice(0, at) + (cookieValue[at] === 'A' ? 'B' : 'A') + cookieValue.slice(at + 1), {
          slide: false,
        }),
        { missing: 'ended' },
      )
      await store.delete(handle)
      assert.deepEqual(await store.find(cookieValue, { slide: false }), { missing: 'ended' })
    })

    test('no token appears in clear in the backend', async (t) => {
      const under = await makeStore({ idleSeconds: 60 })
      t.after(() => under.store.close())
      if (under.dump === undefined) return t.skip('backend cannot be dumped')
      const record = sampleRecord()
      const { cookieValue } = await under.store.create(record)
      const everything = Buffer.concat(await under.dump()).toString('latin1')
      assert.ok(everything.length > 0, 'the dump saw the session')
      for (const secret of [
        'access-token-plaintext-marker',
        'ORT-refresh-token-plaintext-marker',
        'id-token-plaintext-marker',
        'User One',
        'user-1',
        'idp-session-1',
        cookieValue,
      ]) {
        assert.ok(!everything.includes(secret), `${secret} is stored in clear`)
      }
    })

    test('a record another replica changes or ends is seen at once, though this one opened it before', async (t) => {
      const prefix = `replicas-${Math.random().toString(36).slice(2)}:`
      const here = await makeStore({ idleSeconds: 60, prefix })
      const there = await makeStore({ idleSeconds: 60, prefix })
      t.after(async () => {
        await here.store.close()
        await there.store.close()
      })
      const { cookieValue } = await here.store.create(sampleRecord())
      for (let i = 0; i < 3; i++)
        assert.equal(
          (await here.store.load(cookieValue, { slide: false }))?.record.refresh_token,
          'ORT-refresh-token-plaintext-marker',
        )
      const elsewhere = (await there.store.load(cookieValue, { slide: false }))!
      assert.equal(
        await there.store.update(
          elsewhere.handle,
          sampleRecord({ refresh_token: 'rotated-there' }),
          (await there.store.lock(elsewhere.handle, 5000))!,
        ),
        true,
      )
      assert.equal((await here.store.load(cookieValue, { slide: false }))?.record.refresh_token, 'rotated-there')
      await there.store.delete(elsewhere.handle)
      assert.equal(await here.store.load(cookieValue, { slide: false }), undefined)
    })

    test("a cookie with a live session's id but another secret opens nothing, even right after the real one did", async (t) => {
      const { store } = await makeStore({ idleSeconds: 60 })
      t.after(() => store.close())
      const { cookieValue } = await store.create(sampleRecord())
      assert.ok(await store.load(cookieValue, { slide: false }))
      // The ticket's id comes first and its secret last: change only the secret's bytes.
      for (const at of [cookieValue.length - 2, cookieValue.length - 20]) {
        const forged = cookieValue.slice(0, at) + (cookieValue[at] === 'A' ? 'B' : 'A') + cookieValue.slice(at + 1)
        assert.equal(await store.load(forged, { slide: false }), undefined)
      }
    })

    test('update under the refresh lock replaces the record; delete removes it', async (t) => {
      const { store } = await makeStore({ idleSeconds: 60 })
      t.after(() => store.close())
      const { cookieValue, handle } = await store.create(sampleRecord())
      const changed = sampleRecord({ refresh_token: 'rotated' })
      assert.equal(await store.update(handle, changed, (await store.lock(handle, 5000))!), true)
      assert.equal((await store.load(cookieValue, { slide: false }))?.record.refresh_token, 'rotated')
      await store.delete(handle)
      assert.equal(await store.load(cookieValue, { slide: false }), undefined)
    })

    test("issue 13 item 2: a lock's lease is renewed only by its holder, and lapses when not renewed", async (t) => {
      const { store } = await makeStore({ idleSeconds: 60 })
      t.after(() => store.close())
      const { handle } = await store.create(sampleRecord())
      const lock = (await store.lock(handle, 600))!
      for (let i = 0; i < 4; i++) {
        await sleep(300)
        assert.equal(await store.renewLock(lock, 600), true, `renewal ${i}`)
      }
      assert.equal(await store.lock(handle, 600), undefined, 'still held after 1.2 s of a 600 ms lease, renewed')
      assert.equal(
        await store.renewLock({ ...lock, token: 'someone-else' }, 600),
        false,
        'another token renews nothing',
      )
      await sleep(800)
      assert.equal(await store.renewLock(lock, 600), false, 'a lapsed lease is not revived')
      const next = await store.lock(handle, 600)
      assert.ok(next !== undefined, 'a lapsed lease frees the lock')
      assert.equal(
        await store.update(handle, sampleRecord({ refresh_token: 'stale-holder' }), lock),
        false,
        'the old holder no longer writes',
      )
    })

    test('issue 13 item 2: a result whose lock was lost is stored only over the refresh token it replaced', async (t) => {
      const { store } = await makeStore({ idleSeconds: 60 })
      t.after(() => store.close())
      const { cookieValue, handle } = await store.create(sampleRecord({ refresh_token: 'RT-1' }))
      assert.equal(
        await store.updateIfRefreshToken(handle, sampleRecord({ refresh_token: 'RT-2' }), 'RT-0'),
        false,
        'not over another refresh token',
      )
      assert.equal((await store.load(cookieValue, { slide: false }))?.record.refresh_token, 'RT-1')
      assert.equal(await store.updateIfRefreshToken(handle, sampleRecord({ refresh_token: 'RT-2' }), 'RT-1'), true)
      assert.equal((await store.load(cookieValue, { slide: false }))?.record.refresh_token, 'RT-2')
      assert.equal(
        await store.updateIfRefreshToken(handle, sampleRecord({ refresh_token: 'RT-2b' }), 'RT-1'),
        false,
        'a second result from the spent token loses',
      )
      // Fenced writes keep the fingerprint current too.
      assert.equal(
        await store.update(handle, sampleRecord({ refresh_token: 'RT-3' }), (await store.lock(handle, 5000))!),
        true,
      )
      assert.equal(await store.updateIfRefreshToken(handle, sampleRecord({ refresh_token: 'RT-4' }), 'RT-2'), false)
      assert.equal(await store.updateIfRefreshToken(handle, sampleRecord({ refresh_token: 'RT-4' }), 'RT-3'), true)
      await store.delete(handle)
      assert.equal(
        await store.updateIfRefreshToken(handle, sampleRecord({ refresh_token: 'RT-5' }), 'RT-4'),
        false,
        'never brings back an ended session',
      )
      assert.equal(await store.load(cookieValue, { slide: false }), undefined)
    })

    test('a session expires after the idle timeout without activity', async (t) => {
      const { store } = await makeStore({ idleSeconds: 1 })
      t.after(() => store.close())
      const { cookieValue } = await store.create(sampleRecord())
      assert.ok(await store.load(cookieValue, { slide: false }))
      await sleep(1200)
      assert.equal(await store.load(cookieValue, { slide: false }), undefined)
    })

    test('activity slides the idle deadline; loads that do not slide leave it alone', async (t) => {
      const { store } = await makeStore({ idleSeconds: 2 })
      t.after(() => store.close())
      const active = await store.create(sampleRecord())
      const polled = await store.create(sampleRecord())
      for (let i = 0; i < 4; i++) {
        await sleep(700)
        assert.ok(await store.load(active.cookieValue, { slide: true }), `active session gone after ${(i + 1) * 0.7} s`)
        await store.load(polled.cookieValue, { slide: false })
      }
      assert.equal(
        await store.load(polled.cookieValue, { slide: false }),
        undefined,
        'a non-sliding load kept the session alive',
      )
    })

    test('a session in use slides once per interval (a hundredth of the idle timeout, at least 1 s), not per request', async (t) => {
      const { store } = await makeStore({ idleSeconds: 200 }) // slides at most every 2 s
      t.after(() => store.close())
      const { cookieValue } = await store.create(sampleRecord())
      await sleep(1000)
      // Milliseconds left as each load sees them (0: no session).
      const left = async (slide: boolean) => (await store.load(cookieValue, { slide }))?.expiresInMs ?? 0
      const early = await left(true)
      assert.ok(early > 0 && early <= 199_200, `slid within the interval: ${early} ms left`)
      await sleep(1300)
      const late = await left(true)
      assert.ok(late >= 199_500, `not slid after the interval: ${late} ms left`)
      const stored = await left(false)
      assert.ok(stored >= 199_000, `the slide was not stored: ${stored} ms left`)
    })

    test('a session never outlives its absolute deadline, whatever the activity', async (t) => {
      const { store } = await makeStore({ idleSeconds: 60 })
      t.after(() => store.close())
      const soon = Math.floor(Date.now() / 1000) + 2
      const { cookieValue } = await store.create(sampleRecord({ absolute_expires_at: soon }))
      while (Date.now() < soon * 1000 - 200) {
        assert.ok(await store.load(cookieValue, { slide: true }))
        await sleep(300)
      }
      await sleep(600)
      assert.equal(await store.load(cookieValue, { slide: true }), undefined)
    })

    test('a record past its absolute deadline cannot be created', async (t) => {
      const { store } = await makeStore({ idleSeconds: 60 })
      t.after(() => store.close())
      await assert.rejects(
        store.create(sampleRecord({ absolute_expires_at: Math.floor(Date.now() / 1000) - 1 })),
        RangeError,
      )
    })

    test('deleting by IdP session ends every session bound to it and no other', async (t) => {
      const { store } = await makeStore({ idleSeconds: 60 })
      t.after(() => store.close())
      const laptop = await store.create(sampleRecord())
      const phone = await store.create(sampleRecord())
      const otherSid = await store.create(sampleRecord({ sid: 'idp-session-2' }))
      const otherUser = await store.create(sampleRecord({ sub: 'user-2', sid: 'idp-session-3' }))
      assert.equal(await store.deleteByIdpSession('https://idp.example/', 'idp-session-1'), 2)
      assert.equal(await store.load(laptop.cookieValue, { slide: false }), undefined)
      assert.equal(await store.load(phone.cookieValue, { slide: false }), undefined)
      assert.ok(await store.load(otherSid.cookieValue, { slide: false }))
      assert.ok(await store.load(otherUser.cookieValue, { slide: false }))
      assert.equal(await store.deleteByIdpSession('https://idp.example/', 'idp-session-1'), 0)
      assert.equal(await store.deleteByIdpSession('https://other-issuer.example/', 'idp-session-2'), 0)
    })

    test("deleting by subject ends all of that user's sessions; deleted sessions leave their indexes", async (t) => {
      const { store, subIndex } = await makeStore({ idleSeconds: 60 })
      t.after(() => store.close())
      const a = await store.create(sampleRecord())
      const b = await store.create(sampleRecord({ sid: 'idp-session-2' }))
      const other = await store.create(sampleRecord({ sub: 'user-2', sid: 'idp-session-3' }))
      assert.equal((await subIndex('https://idp.example/', 'user-1')).length, 2)
      await store.delete(a.handle)
      assert.deepEqual(
        await subIndex('https://idp.example/', 'user-1'),
        [b.handle.storageKey],
        'the deleted session left the index',
      )
      assert.equal(await store.deleteBySubject('https://idp.example/', 'user-1'), 1)
      assert.deepEqual(await subIndex('https://idp.example/', 'user-1'), [])
      assert.equal(await store.load(b.cookieValue, { slide: false }), undefined)
      assert.ok(await store.load(other.cookieValue, { slide: false }))
    })

    test('claimOnce is true exactly once per id', async (t) => {
      const { store } = await makeStore({ idleSeconds: 60 })
      t.after(() => store.close())
      const results = await Promise.all(Array.from({ length: 20 }, () => store.claimOnce('login', 'state-1', 60)))
      assert.equal(results.filter(Boolean).length, 1)
      assert.equal(await store.claimOnce('login', 'state-2', 60), true)
      assert.equal(await store.claimOnce('jti', 'state-1', 60), true, 'namespaces are separate')
    })

    test('claim is taken exactly once per id, and its release makes the id claimable again', async (t) => {
      const { store } = await makeStore({ idleSeconds: 60 })
      t.after(() => store.close())
      const claims = await Promise.all(Array.from({ length: 20 }, () => store.claim('gtr', 'token-1', 60)))
      const taken = claims.filter((c) => c !== undefined)
      assert.equal(taken.length, 1)
      assert.equal(await store.claimOnce('gtr', 'token-1', 60), false, 'claimOnce sees the claim')
      await taken[0]!.release()
      const again = await store.claim('gtr', 'token-1', 60)
      assert.ok(again, 'the released id could not be claimed again')
      await taken[0]!.release()
      assert.equal(await store.claimOnce('gtr', 'token-1', 60), false, 'a stale release dropped the newer claim')
    })

    test('the refresh lock is exclusive, released only by its holder, and lapses after its TTL', async (t) => {
      const { store } = await makeStore({ idleSeconds: 60 })
      t.after(() => store.close())
      const { handle } = await store.create(sampleRecord())
      const attempts = await Promise.all(Array.from({ length: 10 }, () => store.lock(handle, 800)))
      const held = attempts.filter((l) => l !== undefined)
      assert.equal(held.length, 1)
      await store.unlock({ lockKey: held[0]!.lockKey, token: 'someone-else' })
      assert.equal(await store.lock(handle, 800), undefined, 'a foreign token released the lock')
      await sleep(900)
      const next = await store.lock(handle, 800)
      assert.ok(next, 'the lock did not lapse')
      await store.unlock(next)
      assert.ok(await store.lock(handle, 800), 'unlock did not release')
    })

    test('a fenced update writes only while its lock is held, and never brings back a deleted session', async (t) => {
      const { store } = await makeStore({ idleSeconds: 60 })
      t.after(() => store.close())
      const { handle, cookieValue } = await store.create(sampleRecord())
      const lock = (await store.lock(handle, 500))!
      assert.equal(await store.update(handle, sampleRecord({ refresh_token: 'one' }), lock), true)
      assert.equal((await store.reload(handle))?.record.refresh_token, 'one')
      await sleep(600)
      const thief = (await store.lock(handle, 5000))!
      assert.equal(
        await store.update(handle, sampleRecord({ refresh_token: 'stale' }), lock),
        false,
        'an expired lock still wrote',
      )
      assert.equal((await store.load(cookieValue, { slide: false }))?.record.refresh_token, 'one')
      await store.delete(handle)
      assert.equal(
        await store.update(handle, sampleRecord({ refresh_token: 'zombie' }), thief),
        false,
        'a deleted session came back',
      )
      assert.equal(await store.reload(handle), undefined)
    })

    test('sessions ended through one store are announced to every store sharing it', async (t) => {
      const prefix = `announce-${Math.random().toString(36).slice(2)}:`
      const here = await makeStore({ idleSeconds: 60, prefix })
      const there = await makeStore({ idleSeconds: 60, prefix })
      t.after(() => Promise.all([here.store.close(), there.store.close()]).then(() => {}))
      const heard: string[] = []
      here.store.onSessionsEnded((keys) => heard.push(...keys))
      await sleep(100) // let a subscription settle
      const { handle } = await there.store.create(sampleRecord())
      const other = await there.store.create(sampleRecord({ sub: 'user-2', sid: 'idp-session-9' }))
      await there.store.deleteByIdpSession('https://idp.example/', 'idp-session-1')
      const deadline = Date.now() + 2000
      while (!heard.includes(handle.storageKey) && Date.now() < deadline) await sleep(20)
      assert.ok(heard.includes(handle.storageKey), 'the ended session was not announced')
      assert.ok(!heard.includes(other.handle.storageKey))
    })

    test('issue 17 item 4: every store sharing it hears why a session ended (ended when nobody said)', async (t) => {
      const prefix = `reasons-${Math.random().toString(36).slice(2)}:`
      const here = await makeStore({ idleSeconds: 60, prefix })
      const there = await makeStore({ idleSeconds: 60, prefix })
      t.after(() => Promise.all([here.store.close(), there.store.close()]).then(() => {}))
      const heard = new Map<string, string>()
      here.store.onSessionsEnded((keys, reason) => {
        for (const key of keys) heard.set(key, reason)
      })
      await sleep(100) // let a subscription settle
      const a = await there.store.create(sampleRecord({ sub: 'user-a', sid: 'sid-a' }))
      const b = await there.store.create(sampleRecord({ sub: 'user-b', sid: 'sid-b' }))
      const c = await there.store.create(sampleRecord({ sub: 'user-c', sid: 'sid-c' }))
      const d = await there.store.create(sampleRecord({ sub: 'user-d', sid: 'sid-d' }))
      await there.store.delete(a.handle, 'logout')
      await there.store.deleteByIdpSession('https://idp.example/', 'sid-b', 'backchannel_logout')
      await there.store.deleteBySubject('https://idp.example/', 'user-c', 'revoked')
      await there.store.delete(d.handle)
      const deadline = Date.now() + 2000
      while (heard.size < 4 && Date.now() < deadline) await sleep(20)
      assert.deepEqual(
        [a, b, c, d].map(({ handle }) => heard.get(handle.storageKey)),
        ['logout', 'backchannel_logout', 'revoked', 'ended'],
      )
    })

    test('after secret rotation old sessions still load and new ones use the new secret', async (t) => {
      const prefix = `rotation-${Math.random().toString(36).slice(2)}:`
      const before = await makeStore({ idleSeconds: 60, secrets: [SECRET_A], prefix })
      t.after(() => before.store.close())
      const old = await before.store.create(sampleRecord())
      const after = await makeStore({ idleSeconds: 60, secrets: [SECRET_B, SECRET_A], prefix })
      t.after(() => after.store.close())
      assert.ok(await after.store.load(old.cookieValue, { slide: false }), 'an old session is readable after rotation')
      const fresh = await after.store.create(sampleRecord())
      const retired = await makeStore({ idleSeconds: 60, secrets: [SECRET_B], prefix })
      t.after(() => retired.store.close())
      assert.ok(await retired.store.load(fresh.cookieValue, { slide: false }), 'a new session uses the new secret')
      assert.equal(
        await retired.store.load(old.cookieValue, { slide: false }),
        undefined,
        'a retired secret is no longer accepted',
      )
    })
  })
}
