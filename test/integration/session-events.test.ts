/**
 * issue 17 item 4: the session's end pushed to the page. `GET /bff/session-events` over real
 * HTTP against real Redis, the development IdP and a second bffgate process.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { openEventStream } from '../helpers/event-stream.ts'
import { startTestRedis, type TestRedis } from '../helpers/redis.ts'
import { startReplica } from '../helpers/replica.ts'
import { sessionCookieHeader, startStack, type Stack } from '../helpers/stack.ts'

let redis: TestRedis
before(async () => {
  redis = await startTestRedis()
})
after(async () => {
  await redis?.stop()
})

const cookieOf = sessionCookieHeader
const sameOrigin = { 'sec-fetch-site': 'same-origin', 'sec-fetch-mode': 'cors' }
const reasonOf = (data: string) => (JSON.parse(data) as { reason: string }).reason

describe('issue 17 item 4: GET /bff/session-events', () => {
  let stack: Stack
  before(async () => {
    stack = await startStack({
      redis,
      backchannel: true,
      idp: { accessTokenTtlSeconds: 2 },
      env: {
        BFF_REFRESH_SKEW_SECONDS: '1',
        BFF_SESSION_EVENTS_MAX_PER_SESSION: '3',
        BFF_SESSION_EVENTS_HEARTBEAT_SECONDS: '1',
      },
    })
  })
  after(async () => {
    await stack?.close()
  })

  test('issue 17 item 4: a back-channel logout received by one replica ends the stream held by another within a second, with its reason', async (t) => {
    const replica = await startReplica({ ...stack.env, BFF_LOG_LEVEL: 'warn' })
    t.after(async () => {
      await replica.stop()
    })
    const cookie = cookieOf(stack, (await stack.login()).browser)
    const stream = await openEventStream(`${replica.url}/bff/session-events`, { cookie, ...sameOrigin })
    t.after(() => stream.close())
    assert.equal(stream.status, 200)
    assert.match(stream.headers.get('content-type') ?? '', /^text\/event-stream/)
    assert.equal(stream.headers.get('cache-control'), 'no-store')

    const started = performance.now()
    await stack.idp.revokeSessions('user-alice') // the IdP's logout token reaches the in-process replica
    const ended = await stream.next('session-ended')
    const elapsed = ended.at - started
    assert.equal(reasonOf(ended.data), 'backchannel_logout')
    assert.ok(elapsed < 1000, `heard after ${elapsed.toFixed(0)} ms`)
    await stream.closed
    assert.doesNotMatch(ended.data, /eyJ|ORT/, 'no token in any event')
    const metrics = await (await fetch(`${replica.adminUrl}/metrics`)).text()
    assert.match(metrics, /bff_session_events_total\{event="session-ended",reason="backchannel_logout"\} 1/)
    assert.match(metrics, /bff_session_event_streams 0/)
  })

  test('issue 17 item 4: a replica shutting down ends its streams without an event (the browser reconnects elsewhere) and does not wait for them', async () => {
    const replica = await startReplica({ ...stack.env, BFF_LOG_LEVEL: 'warn' })
    const cookie = cookieOf(stack, (await stack.login()).browser)
    const stream = await openEventStream(`${replica.url}/bff/session-events`, { cookie, ...sameOrigin })
    assert.equal(stream.status, 200)
    const started = performance.now()
    assert.equal(await replica.stop(), 0)
    await stream.closed
    assert.ok(performance.now() - started < 5000, `stopped after ${(performance.now() - started).toFixed(0)} ms`)
    assert.deepEqual(
      stream.events.filter((e) => e.event === 'session-ended'),
      [],
      'the session lives on: no session-ended',
    )
  })

  test("issue 17 item 4: a logout in another tab, posted to another replica, ends this tab's stream with reason logout", async (t) => {
    const replica = await startReplica({ ...stack.env, BFF_LOG_LEVEL: 'warn' })
    t.after(async () => {
      await replica.stop()
    })
    const { browser } = await stack.login()
    const stream = await openEventStream(`${stack.url}/bff/session-events`, {
      cookie: cookieOf(stack, browser),
      ...sameOrigin,
    })
    t.after(() => stream.close())
    const started = performance.now()
    const logout = await browser.post(`${replica.url}/bff/logout`, '', { 'x-csrf': '1' })
    assert.equal(logout.status, 200)
    const ended = await stream.next('session-ended')
    assert.equal(reasonOf(ended.data), 'logout')
    assert.ok(ended.at - started < 1000, `heard after ${(ended.at - started).toFixed(0)} ms`)
  })

  test('issue 17 item 4: heartbeats keep an idle stream alive, and the stream exchanges no token (the idle test below shows it slides nothing)', async (t) => {
    const { browser } = await stack.login()
    const cookie = cookieOf(stack, browser)
    stack.idp.resetStats()
    const stream = await openEventStream(`${stack.url}/bff/session-events`, { cookie, ...sameOrigin })
    t.after(() => stream.close())
    await sleep(3500) // beyond the 2 s access-token lifetime
    assert.ok(stream.comments.filter((c) => c === 'heartbeat').length >= 2, `comments: ${stream.comments.join()}`)
    assert.deepEqual(stack.idp.stats().tokenRequests, {}, 'no token exchange while only the stream is open')
  })

  test('issue 17 item 4: cross-site, foreign-origin and session-less requests are refused with JSON; more streams than allowed per session get 429', async (t) => {
    const { browser } = await stack.login()
    const cookie = cookieOf(stack, browser)
    const refused = async (headers: Record<string, string>) => {
      const s = await openEventStream(`${stack.url}/bff/session-events`, headers)
      return { status: s.status, error: s.text === '' ? undefined : (JSON.parse(s.text) as { error: string }).error }
    }
    assert.deepEqual(await refused({ cookie, 'sec-fetch-site': 'cross-site' }), { status: 403, error: 'csrf_failed' })
    assert.deepEqual(await refused({ cookie, 'sec-fetch-site': 'same-site' }), { status: 403, error: 'csrf_failed' })
    assert.deepEqual(await refused({ cookie, origin: 'https://evil.example' }), { status: 403, error: 'csrf_failed' })
    assert.deepEqual(await refused({ ...sameOrigin }), { status: 401, error: 'login_required' })
    const head = await fetch(`${stack.url}/bff/session-events`, { method: 'HEAD', headers: { cookie, ...sameOrigin } })
    assert.equal(head.status, 404, 'no HEAD twin holding a stream open')
    const post = await fetch(`${stack.url}/bff/session-events`, { method: 'POST', headers: { cookie, ...sameOrigin } })
    assert.equal(post.status, 404)
    assert.equal(((await post.json()) as { error: string }).error, 'not_found')
    assert.deepEqual(await refused({ ...sameOrigin, cookie: '__Host-Http-bff=garbage' }), {
      status: 401,
      error: 'session_ended',
    })

    const open = await Promise.all(
      [1, 2, 3].map(() => openEventStream(`${stack.url}/bff/session-events`, { cookie, ...sameOrigin })),
    )
    t.after(() => {
      for (const s of open) s.close()
    })
    assert.deepEqual(
      open.map((s) => s.status),
      [200, 200, 200],
    )
    assert.deepEqual(await refused({ cookie, ...sameOrigin }), { status: 429, error: 'too_many_streams' })
    open[0]!.close()
    await sleep(200)
    const again = await openEventStream(`${stack.url}/bff/session-events`, { cookie, ...sameOrigin })
    t.after(() => again.close())
    assert.equal(again.status, 200, 'a closed stream frees its place')
  })
})

describe('issue 17 item 4: ends that no replica announces at once', () => {
  test('issue 17 item 4: an invalid_grant teardown (the IdP session revoked, no back-channel logout) ends every stream of the session with reason revoked', async (t) => {
    const stack = await startStack({ redis, env: { BFF_SESSION_CHECK_SECONDS: '1' } })
    t.after(() => stack.close())
    const { browser } = await stack.login()
    const cookie = cookieOf(stack, browser)
    const streams = await Promise.all(
      [1, 2].map(() => openEventStream(`${stack.url}/bff/session-events`, { cookie, ...sameOrigin })),
    )
    t.after(() => {
      for (const s of streams) s.close()
    })
    assert.equal(await stack.idp.revokeSessions('user-alice'), 1) // bffgate is not told
    await sleep(1100)
    const started = performance.now()
    const call = await browser.get(`${stack.url}/api/hello`, { 'x-csrf': '1' }) // the session check exchanges: invalid_grant
    assert.equal(call.status, 401)
    const ended = await Promise.all(streams.map((s) => s.next('session-ended')))
    assert.deepEqual(
      ended.map((e) => reasonOf(e.data)),
      ['revoked', 'revoked'],
    )
    for (const e of ended) assert.ok(e.at - started < 1000)
  })

  test('issue 17 item 4: session-expiring comes BFF_SESSION_WARNING_SECONDS before the absolute end, then session-ended absolute_timeout at it', async (t) => {
    const stack = await startStack({
      redis,
      env: { BFF_SESSION_ABSOLUTE_SECONDS: '5', BFF_SESSION_IDLE_SECONDS: '5', BFF_SESSION_WARNING_SECONDS: '3' },
    })
    t.after(() => stack.close())
    const { browser } = await stack.login()
    const cookie = cookieOf(stack, browser)
    const user = (await (await fetch(`${stack.url}/bff/user`, { headers: { cookie } })).json()) as {
      session: { absoluteExpiresAt: number }
    }
    const stream = await openEventStream(`${stack.url}/bff/session-events`, { cookie, ...sameOrigin })
    t.after(() => stream.close())
    const expiring = await stream.next('session-expiring', 8000)
    const warning = JSON.parse(expiring.data) as { absoluteExpiresAt: number; secondsLeft: number }
    assert.equal(warning.absoluteExpiresAt, user.session.absoluteExpiresAt)
    assert.ok(warning.secondsLeft <= 3 && warning.secondsLeft >= 1, expiring.data)
    const ended = await stream.next('session-ended', 8000)
    const lateMs = Date.now() - (performance.now() - ended.at) - user.session.absoluteExpiresAt * 1000
    assert.equal(reasonOf(ended.data), 'absolute_timeout')
    assert.ok(lateMs < 1000 && lateMs > -1000, `ended ${lateMs.toFixed(0)} ms after the absolute deadline`)
  })

  test('issue 17 item 4: an idle session ends with idle_timeout although its stream stays open (the stream slides nothing)', async (t) => {
    // Idle 3 s: any read that slid the session would push its end by a second at least.
    const stack = await startStack({ redis, env: { BFF_SESSION_IDLE_SECONDS: '3' } })
    t.after(() => stack.close())
    const { browser } = await stack.login()
    const cookie = cookieOf(stack, browser)
    const user = (await (await fetch(`${stack.url}/bff/user`, { headers: { cookie } })).json()) as {
      session: { expiresAt: number }
    }
    const stream = await openEventStream(`${stack.url}/bff/session-events`, { cookie, ...sameOrigin })
    t.after(() => stream.close())
    const ended = await stream.next('session-ended', 8000)
    assert.equal(reasonOf(ended.data), 'idle_timeout')
    // expiresAt is in whole seconds (rounded down): the end is heard within a second of it.
    const lateMs = Date.now() - (performance.now() - ended.at) - user.session.expiresAt * 1000
    assert.ok(lateMs > -1000 && lateMs < 2000, `heard ${lateMs.toFixed(0)} ms after the idle deadline`)
    assert.equal((await fetch(`${stack.url}/bff/user`, { headers: { cookie } })).status, 401)
  })
})
