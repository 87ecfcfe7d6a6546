import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, test } from 'node:test'
import {
  BffRequestError,
  BffUnauthenticatedError,
  DEFAULT_CHANNEL_NAME,
  createBffClient,
  type BffClient,
  type BffClientOptions,
  type OtherTabLogoutEvent,
  type UnauthenticatedEvent,
} from '../index.js'

const ORIGIN = 'https://app.example.com'

/** A page location that records navigations instead of performing them. */
function fakeLocation(path = '/orders/7?tab=items#notes') {
  const url = new URL(path, ORIGIN)
  const assigned: string[] = []
  return {
    assigned,
    href: url.href,
    pathname: url.pathname,
    search: url.search,
    hash: url.hash,
    assign(target: string) {
      assigned.push(target)
    },
  }
}

interface Call {
  url: string
  init: RequestInit
  headers: Headers
}

/** A fetch answering from a script, recording what it was asked. */
function fakeFetch(answer: (url: string, init: RequestInit) => Response = () => json(200, { ok: true })) {
  const calls: Call[] = []
  const fetch = async (input: RequestInfo | URL, init: RequestInit = {}) => {
    const url = input instanceof URL ? input.href : typeof input === 'string' ? input : input.url
    calls.push({ url, init, headers: new Headers(init.headers) })
    return answer(url, init)
  }
  return { calls, fetch }
}

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json; charset=utf-8' } })
}

/** A client over fakes, on its own BroadcastChannel name so tests never hear each other. */
function setup(options: BffClientOptions & { answer?: (url: string, init: RequestInit) => Response } = {}) {
  const location = fakeLocation()
  const network = fakeFetch(options.answer)
  const channelName = options.channelName ?? `test-${randomUUID()}`
  const client = createBffClient({ location, fetch: network.fetch, ...options, channelName })
  return { client, location, calls: network.calls, channelName }
}

/** Another tab of the same app: a client on the same channel. */
function otherTab(channelName: string | false, options: BffClientOptions = {}) {
  const location = fakeLocation('/')
  const client = createBffClient({ location, fetch: fakeFetch().fetch, channelName, ...options })
  return { client, location }
}

/** Waits until `condition()` holds: BroadcastChannel messages arrive asynchronously. */
async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 2000
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(5)
  }
}

/** Answers 200 `{ logoutUrl: '/x' }` to /bff/logout and `otherwise` to everything else. */
const logoutOk = (otherwise: () => Response) => (url: string) =>
  url === '/bff/logout' ? json(200, { logoutUrl: '/x' }) : otherwise()

function closeAll(...clients: BffClient[]) {
  for (const client of clients) client.close()
}

describe('client.fetch', () => {
  test('adds x-csrf: 1 and same-origin credentials to a same-origin call, keeping the method, body and headers', async () => {
    const { client, calls } = setup()
    const res = await client.fetch('/api/orders', {
      method: 'POST',
      body: '{"id":7}',
      headers: { 'content-type': 'application/json' },
    })
    client.close()
    assert.equal(res.status, 200)
    assert.equal(calls.length, 1)
    const [call] = calls
    assert.equal(call!.url, '/api/orders')
    assert.equal(call!.init.method, 'POST')
    assert.equal(call!.init.body, '{"id":7}')
    assert.equal(call!.init.credentials, 'same-origin')
    assert.equal(call!.headers.get('x-csrf'), '1')
    assert.equal(call!.headers.get('content-type'), 'application/json')
  })

  test('keeps the headers of a Request given as input and adds x-csrf to them', async () => {
    const { client, calls } = setup()
    await client.fetch(new Request(`${ORIGIN}/api/x`, { headers: { 'x-trace': 'abc' } }))
    client.close()
    assert.equal(calls[0]!.headers.get('x-trace'), 'abc')
    assert.equal(calls[0]!.headers.get('x-csrf'), '1')
  })

  test('adds no x-csrf header to a call to another origin, so a third-party API needs no CORS preflight for it', async () => {
    const { client, calls } = setup()
    await client.fetch('https://cdn.example.net/data.json')
    client.close()
    assert.equal(calls[0]!.headers.has('x-csrf'), false)
  })

  test('returns other error answers as fetch does: a 403 csrf_failed, a 502 upstream_unavailable, an upstream 401 of its own', async () => {
    const answers: Record<string, Response> = {
      '/api/a': json(403, { error: 'csrf_failed', message: 'x' }),
      '/api/b': json(502, { error: 'upstream_unavailable', message: 'x' }),
      '/api/c': json(401, { error: 'invalid_token' }),
      '/api/d': new Response('no', { status: 401, headers: { 'content-type': 'text/plain' } }),
    }
    const { client, location } = setup({ answer: (url) => answers[url]! })
    for (const [url, expected] of Object.entries(answers)) {
      const res = await client.fetch(url)
      assert.equal(res.status, expected.status, url)
      assert.ok((await res.text()).length > 0, `${url}: the body is still readable`)
    }
    client.close()
    assert.deepEqual(location.assigned, [], 'no navigation')
  })

  for (const code of ['session_ended', 'login_required'] as const) {
    test(`a 401 ${code} sends the page to /bff/login with the current path, query and fragment as returnTo, and rejects`, async () => {
      const { client, location } = setup({ answer: () => json(401, { error: code, message: 'log in again' }) })
      const error = await client.fetch('/api/orders').then(
        () => undefined,
        (err: unknown) => err,
      )
      client.close()
      assert.ok(error instanceof BffUnauthenticatedError)
      assert.ok(error instanceof BffRequestError)
      assert.equal(error.code, code)
      assert.equal(error.status, 401)
      assert.equal(error.message, 'log in again')
      assert.deepEqual(location.assigned, [`/bff/login?returnTo=${encodeURIComponent('/orders/7?tab=items#notes')}`])
    })
  }

  test('several calls failing with 401 together navigate to the login once', async () => {
    const { client, location } = setup({ answer: () => json(401, { error: 'session_ended', message: 'x' }) })
    const results = await Promise.allSettled([client.fetch('/api/a'), client.fetch('/api/b'), client.fetch('/api/c')])
    client.close()
    assert.deepEqual(
      results.map((r) => r.status),
      ['rejected', 'rejected', 'rejected'],
    )
    assert.equal(location.assigned.length, 1)
  })

  test('a 401 more than 5 s after the last login redirect (a page back from the back-forward cache) navigates again', async (t) => {
    t.mock.timers.enable({ apis: ['Date'], now: 1_000_000 })
    const { client, location } = setup({ answer: () => json(401, { error: 'session_ended', message: 'x' }) })
    await assert.rejects(client.fetch('/api/a'), BffUnauthenticatedError)
    t.mock.timers.tick(4_000)
    await assert.rejects(client.fetch('/api/b'), BffUnauthenticatedError)
    assert.equal(location.assigned.length, 1)
    t.mock.timers.tick(2_000)
    await assert.rejects(client.fetch('/api/c'), BffUnauthenticatedError)
    client.close()
    assert.equal(location.assigned.length, 2)
  })

  test('onUnauthenticated replaces the redirect and receives the code, the returnTo and login()', async () => {
    const events: UnauthenticatedEvent[] = []
    const { client, location } = setup({
      answer: () => json(401, { error: 'login_required', message: 'x' }),
      onUnauthenticated: (event) => events.push(event),
    })
    await assert.rejects(client.fetch('/api/x'), BffUnauthenticatedError)
    await assert.rejects(client.fetch('/api/x'), BffUnauthenticatedError)
    assert.deepEqual(location.assigned, [])
    assert.equal(events.length, 2, 'called for every failed call')
    assert.equal(events[0]!.code, 'login_required')
    assert.equal(events[0]!.returnTo, '/orders/7?tab=items#notes')
    events[0]!.login('/somewhere')
    client.close()
    assert.deepEqual(location.assigned, ['/bff/login?returnTo=%2Fsomewhere'])
  })

  test('a 401 session_ended tells the other tabs, which leave for / by default', async () => {
    const { client, channelName } = setup({ answer: () => json(401, { error: 'session_ended', message: 'x' }) })
    const other = otherTab(channelName)
    await assert.rejects(client.fetch('/api/x'), BffUnauthenticatedError)
    await until(() => other.location.assigned.length > 0, 'the other tab to navigate')
    closeAll(client, other.client)
    assert.deepEqual(other.location.assigned, ['/'])
  })

  test('a 401 login_required (no cookie at all) tells no other tab', async () => {
    const { client, channelName } = setup({
      answer: logoutOk(() => json(401, { error: 'login_required', message: 'x' })),
    })
    const heard: OtherTabLogoutEvent[] = []
    const other = otherTab(channelName, { onOtherTabLogout: (event) => heard.push(event) })
    await assert.rejects(client.fetch('/api/x'), BffUnauthenticatedError)
    // A logout afterwards, as a marker: messages from one tab arrive in order.
    await client.logout({ navigate: false })
    await until(() => heard.length > 0, 'the marker')
    closeAll(client, other.client)
    assert.deepEqual(heard, [{ reason: 'logout' }])
  })
})

describe('client.getUser', () => {
  const user = {
    claims: { sub: 'user-alice', name: 'Alice' },
    session: { expiresAt: 2, absoluteExpiresAt: 3 },
    logoutUrl: '/bff/logout',
  }

  test('returns GET /bff/user, asked with the cookie and without the cache', async () => {
    const { client, calls } = setup({ answer: () => json(200, user) })
    assert.deepEqual(await client.getUser(), user)
    client.close()
    assert.equal(calls[0]!.url, '/bff/user')
    assert.equal(calls[0]!.init.method ?? 'GET', 'GET')
    assert.equal(calls[0]!.init.credentials, 'same-origin')
    assert.equal(calls[0]!.init.cache, 'no-store')
  })

  test('returns null on 401, without navigating and without telling other tabs', async () => {
    const { client, location, channelName } = setup({
      answer: logoutOk(() => json(401, { error: 'session_ended', message: 'x' })),
    })
    const heard: OtherTabLogoutEvent[] = []
    const other = otherTab(channelName, { onOtherTabLogout: (event) => heard.push(event) })
    assert.equal(await client.getUser(), null)
    assert.deepEqual(location.assigned, [])
    await client.logout({ navigate: false })
    await until(() => heard.length > 0, 'the marker')
    closeAll(client, other.client)
    assert.deepEqual(heard, [{ reason: 'logout' }])
  })

  test('rejects with the error code and status of any other failure', async () => {
    const { client } = setup({ answer: () => json(503, { error: 'session_store_unavailable', message: 'try again' }) })
    const error = await client.getUser().then(
      () => undefined,
      (err: unknown) => err,
    )
    client.close()
    assert.ok(error instanceof BffRequestError)
    assert.equal(error.status, 503)
    assert.equal(error.code, 'session_store_unavailable')
    assert.equal(error.message, 'try again')
  })

  test('names a failure without a JSON body by its status', async () => {
    const { client } = setup({
      answer: () => new Response('<h1>Bad gateway</h1>', { status: 502, headers: { 'content-type': 'text/html' } }),
    })
    await assert.rejects(client.getUser(), { name: 'BffRequestError', code: 'http_502', status: 502 })
    client.close()
  })
})

describe('client.login', () => {
  test('navigates to /bff/login with returnTo encoded', () => {
    const { client, location } = setup()
    client.login('/reports?year=2025&q=a b#top')
    client.close()
    assert.deepEqual(location.assigned, [`/bff/login?returnTo=${encodeURIComponent('/reports?year=2025&q=a b#top')}`])
  })

  test('returns to the current page by default', () => {
    const { client, location } = setup()
    client.login()
    client.close()
    assert.deepEqual(location.assigned, ['/bff/login?returnTo=%2Forders%2F7%3Ftab%3Ditems%23notes'])
  })
})

describe('client.logout', () => {
  const LOGOUT_URL = '/bff/logout?sid=Kyeu9N9_b6xrw83047VHjw'
  const user = { claims: { sub: 'user-alice' }, session: { expiresAt: 2, absoluteExpiresAt: 3 }, logoutUrl: LOGOUT_URL }
  const answer = (url: string) =>
    url === '/bff/user' ? json(200, user) : json(200, { logoutUrl: 'https://idp.example.com/logout?client_id=app' })

  test('issue 13 item 11: navigates to the session-bound logout URL of /bff/user; no token passes through the page', async () => {
    const { client, location, calls } = setup({ answer })
    assert.equal(await client.logout(), LOGOUT_URL)
    client.close()
    assert.deepEqual(
      calls.map((c) => [c.init.method ?? 'GET', c.url]),
      [['GET', '/bff/user']],
      'no POST: bffgate ends the session on the navigation',
    )
    assert.equal(calls[0]!.init.credentials, 'same-origin')
    assert.deepEqual(location.assigned, [LOGOUT_URL])
  })

  test('without a session it navigates to /', async () => {
    const { client, location } = setup({ answer: () => json(401, { error: 'login_required', message: 'x' }) })
    assert.equal(await client.logout(), '/')
    client.close()
    assert.deepEqual(location.assigned, ['/'])
  })

  test('with navigate: false it posts /bff/logout with x-csrf: 1 and only returns the logoutUrl it answers', async () => {
    const { client, location, calls } = setup({ answer })
    assert.equal(await client.logout({ navigate: false }), 'https://idp.example.com/logout?client_id=app')
    client.close()
    assert.equal(calls[0]!.url, '/bff/logout')
    assert.equal(calls[0]!.init.method, 'POST')
    assert.equal(calls[0]!.init.credentials, 'same-origin')
    assert.equal(calls[0]!.headers.get('x-csrf'), '1')
    assert.deepEqual(location.assigned, [])
  })

  test('tells every other tab, which leave for / by default', async () => {
    const { client, channelName } = setup({ answer })
    const tabs = [otherTab(channelName), otherTab(channelName)]
    await client.logout()
    await until(() => tabs.every((t) => t.location.assigned.length > 0), 'both tabs to navigate')
    closeAll(client, ...tabs.map((t) => t.client))
    assert.deepEqual(
      tabs.map((t) => t.location.assigned),
      [['/'], ['/']],
    )
  })

  test('onOtherTabLogout replaces the navigation in the other tab and learns the reason', async () => {
    const { client, channelName } = setup({ answer })
    const heard: OtherTabLogoutEvent[] = []
    const other = otherTab(channelName, { onOtherTabLogout: (event) => heard.push(event) })
    await client.logout()
    await until(() => heard.length > 0, 'the other tab to hear it')
    closeAll(client, other.client)
    assert.deepEqual(heard, [{ reason: 'logout' }])
    assert.deepEqual(other.location.assigned, [])
  })

  test('rejects, telling no tab and not navigating, when bffgate cannot give the logout URL', async () => {
    const { client, location, channelName } = setup({
      answer: () => json(503, { error: 'session_store_unavailable', message: 'x' }),
    })
    const heard: OtherTabLogoutEvent[] = []
    const other = otherTab(channelName, { onOtherTabLogout: (event) => heard.push(event) })
    await assert.rejects(client.logout(), { name: 'BffRequestError', code: 'session_store_unavailable', status: 503 })
    await sleep(50)
    closeAll(client, other.client)
    assert.deepEqual(location.assigned, [])
    assert.deepEqual(heard, [])
  })

  test('rejects, telling no tab, when bffgate refuses the logout', async () => {
    let refuse = true
    const { client, location, channelName } = setup({
      answer: () =>
        refuse
          ? json(403, { error: 'csrf_failed', message: 'Cross-site request refused' })
          : json(200, { logoutUrl: '/x' }),
    })
    const heard: OtherTabLogoutEvent[] = []
    const other = otherTab(channelName, { onOtherTabLogout: (event) => heard.push(event) })
    await assert.rejects(client.logout({ navigate: false }), {
      name: 'BffRequestError',
      code: 'csrf_failed',
      status: 403,
    })
    assert.deepEqual(location.assigned, [])
    refuse = false
    await client.logout({ navigate: false })
    await until(() => heard.length > 0, 'the marker')
    closeAll(client, other.client)
    assert.deepEqual(heard, [{ reason: 'logout' }], 'only the second logout was announced')
  })
})

describe('the cross-tab channel', () => {
  test('is a BroadcastChannel named bffgate by default', async () => {
    const location = fakeLocation()
    const client = createBffClient({ location, fetch: fakeFetch(() => json(200, { logoutUrl: '/' })).fetch })
    const listener = new BroadcastChannel(DEFAULT_CHANNEL_NAME)
    const message = once(listener, 'message')
    await client.logout({ navigate: false })
    const [event] = (await message) as [MessageEvent]
    client.close()
    listener.close()
    assert.equal(DEFAULT_CHANNEL_NAME, 'bffgate')
    assert.deepEqual(event.data, { type: 'logout', reason: 'logout' })
  })

  test('ignores messages that are not a logout', async () => {
    const name = `test-${randomUUID()}`
    const tab = otherTab(name)
    const stranger = new BroadcastChannel(name)
    for (const message of [{ type: 'hello' }, 'logout', null, { reason: 'logout' }, { type: 'logout' }]) {
      // oxlint-disable-next-line unicorn/require-post-message-target-origin -- a BroadcastChannel has no target origin
      stranger.postMessage(message)
    }
    await until(() => tab.location.assigned.length > 0, 'the last message, a logout')
    await sleep(10)
    stranger.close()
    tab.client.close()
    assert.deepEqual(tab.location.assigned, ['/'], 'only the last message counted')
  })

  test('channelName: false opens no channel', async () => {
    let opened = 0
    const Spy = class extends BroadcastChannel {
      constructor(name: string) {
        super(name)
        opened += 1
      }
    }
    const { client } = setup({
      channelName: false,
      BroadcastChannel: Spy,
      answer: () => json(200, { logoutUrl: '/x' }),
    })
    await client.logout()
    client.close()
    assert.equal(opened, 0)
    const other = createBffClient({
      location: fakeLocation(),
      fetch: fakeFetch().fetch,
      BroadcastChannel: Spy,
      channelName: 'spy',
    })
    other.close()
    assert.equal(opened, 1, 'the spy counts')
  })

  test('works without BroadcastChannel (BroadcastChannel: null)', async () => {
    const { client, location } = setup({ BroadcastChannel: null, answer: () => json(200, { logoutUrl: '/x' }) })
    await client.logout()
    client.close()
    assert.deepEqual(location.assigned, ['/x'])
  })

  test('close() stops listening to other tabs', async () => {
    const { client, channelName } = setup({ answer: () => json(200, { logoutUrl: '/x' }) })
    const other = otherTab(channelName)
    other.client.close()
    const third = otherTab(channelName)
    await client.logout()
    await until(() => third.location.assigned.length > 0, 'a tab still listening to hear it')
    closeAll(client, third.client)
    assert.deepEqual(other.location.assigned, [])
  })
})

/** A scripted EventSource: the test plays the server's side. */
class FakeEventSource {
  static instances: FakeEventSource[] = []
  readonly url: string
  readyState = 0
  closed = false
  readonly #listeners = new Map<string, Array<(event: Event) => void>>()
  constructor(url: string) {
    this.url = url
    FakeEventSource.instances.push(this)
  }

  addEventListener(type: string, listener: (event: Event) => void) {
    this.#listeners.set(type, [...(this.#listeners.get(type) ?? []), listener])
  }

  close() {
    this.closed = true
    this.readyState = 2
  }

  emit(type: string, data?: string) {
    const event = data === undefined ? new Event(type) : new MessageEvent(type, { data })
    for (const listener of this.#listeners.get(type) ?? []) listener(event)
  }

  open() {
    this.readyState = 1
    this.emit('open')
  }

  /** What the browser does when bffgate refuses a (re)connection: CLOSED, then error. */
  refuse() {
    this.readyState = 2
    this.emit('error')
  }
}

describe("issue 17 item 4: the session's end, pushed (onSessionEnded, onSessionExpiring)", () => {
  const streamSetup = (answer?: (url: string, init: RequestInit) => Response) => {
    FakeEventSource.instances = []
    return setup({ EventSource: FakeEventSource, channelName: false, ...(answer !== undefined && { answer }) })
  }

  test('issue 17 item 4: the first listener opens one stream at /bff/session-events; every listener hears session-ended once with its reason, and the stream is closed', () => {
    const { client } = streamSetup()
    assert.equal(FakeEventSource.instances.length, 0, 'no stream before anyone listens')
    const heard: string[] = []
    client.onSessionEnded(({ reason }) => heard.push(`a:${reason}`))
    client.onSessionEnded(({ reason }) => heard.push(`b:${reason}`))
    assert.equal(FakeEventSource.instances.length, 1)
    const [source] = FakeEventSource.instances
    assert.equal(source!.url, '/bff/session-events')
    source!.open()
    source!.emit('session-ended', '{"reason":"backchannel_logout"}')
    source!.emit('session-ended', '{"reason":"logout"}')
    assert.deepEqual(heard, ['a:backchannel_logout', 'b:backchannel_logout'])
    assert.equal(source!.closed, true, 'closed, so EventSource does not reconnect to a dead session')
    client.close()
  })

  test('issue 17 item 4: an unknown or malformed reason reads as ended', () => {
    const { client } = streamSetup()
    const heard: string[] = []
    client.onSessionEnded(({ reason }) => heard.push(reason))
    FakeEventSource.instances[0]!.emit('session-ended', '{"reason":"<script>"}')
    client.close()
    const second = streamSetup()
    second.client.onSessionEnded(({ reason }) => heard.push(reason))
    FakeEventSource.instances[0]!.emit('session-ended', 'not json')
    second.client.close()
    assert.deepEqual(heard, ['ended', 'ended'])
  })

  test('issue 17 item 4: session-expiring reaches onSessionExpiring listeners; the last unsubscribe closes the stream', () => {
    const { client } = streamSetup()
    const warnings: unknown[] = []
    const off = client.onSessionExpiring((event) => warnings.push(event))
    const source = FakeEventSource.instances[0]!
    source.emit('session-expiring', '{"absoluteExpiresAt":1767225600,"secondsLeft":300}')
    source.emit('session-expiring', '{"absoluteExpiresAt":"soon"}')
    assert.deepEqual(warnings, [{ absoluteExpiresAt: 1767225600, secondsLeft: 300 }])
    off()
    assert.equal(source.closed, true)
    client.close()
  })

  test('issue 17 item 4: a stream refused after it had been open asks /bff/user and reports ended when the session is gone', async () => {
    const { client, calls } = streamSetup((url) =>
      url === '/bff/user' ? json(401, { error: 'session_ended' }) : json(200, {}),
    )
    const heard: string[] = []
    client.onSessionEnded(({ reason }) => heard.push(reason))
    const source = FakeEventSource.instances[0]!
    source.open()
    source.readyState = 0
    source.emit('error') // a network blip: the browser reconnects by itself
    assert.equal(calls.length, 0)
    source.refuse()
    await until(() => heard.length === 1, 'the listener')
    assert.deepEqual(heard, ['ended'])
    assert.deepEqual(
      calls.map((c) => c.url),
      ['/bff/user'],
    )
    client.close()
  })

  test('issue 17 item 4: a stream refused at once (no session) is given up silently: no /bff/user call, no event', async () => {
    const { client, calls } = streamSetup()
    const heard: string[] = []
    client.onSessionEnded(({ reason }) => heard.push(reason))
    FakeEventSource.instances[0]!.refuse()
    await sleep(20)
    assert.deepEqual(heard, [])
    assert.deepEqual(calls, [])
    client.close()
  })

  test("issue 17 item 4: logout() closes this tab's stream before posting, so the tab that logs out is not told its own logout", async () => {
    const { client } = streamSetup(logoutOk(() => json(200, {})))
    const heard: string[] = []
    client.onSessionEnded(({ reason }) => heard.push(reason))
    const source = FakeEventSource.instances[0]!
    source.open()
    await client.logout({ navigate: false })
    assert.equal(source.closed, true)
    source.emit('session-ended', '{"reason":"logout"}')
    assert.deepEqual(heard, [])
    client.close()
  })

  test('issue 17 item 4: a logout that gets no answer (network error) or an error answer leaves the tab listening again', async () => {
    for (const answer of [
      (): Response => {
        throw new TypeError('fetch failed')
      },
      () => json(503, { error: 'unavailable', message: 'x' }),
    ]) {
      const { client } = streamSetup(answer)
      const heard: string[] = []
      client.onSessionEnded(({ reason }) => heard.push(reason))
      FakeEventSource.instances[0]!.open()
      await assert.rejects(client.logout({ navigate: false }))
      assert.equal(FakeEventSource.instances.length, 2, 'a new stream after the failed logout')
      const again = FakeEventSource.instances[1]!
      again.open()
      again.emit('session-ended', '{"reason":"backchannel_logout"}')
      assert.deepEqual(heard, ['backchannel_logout'])
      client.close()
    }
  })

  test('issue 17 item 4: without EventSource (null) listening is harmless and nothing fires', () => {
    const { client } = setup({ EventSource: null, channelName: false })
    const off = client.onSessionEnded(() => assert.fail('never'))
    off()
    client.close()
  })
})

describe("basePath: bffgate mounted under a path prefix (a frontend's pathPrefix)", () => {
  const LOGOUT_URL = '/admin/bff/logout?sid=Kyeu9N9_b6xrw83047VHjw'
  const user = { claims: { sub: 'user-alice' }, session: { expiresAt: 2, absoluteExpiresAt: 3 }, logoutUrl: LOGOUT_URL }

  /** A client of the app under /admin, its page at /admin/orders/7. */
  function adminSetup(answer: (url: string, init: RequestInit) => Response, options: BffClientOptions = {}) {
    FakeEventSource.instances = []
    const location = fakeLocation('/admin/orders/7?tab=items#notes')
    const network = fakeFetch(answer)
    const client = createBffClient({
      basePath: '/admin',
      location,
      fetch: network.fetch,
      EventSource: FakeEventSource,
      channelName: `test-${randomUUID()}`,
      ...options,
    })
    return { client, location, calls: network.calls }
  }

  test('every /bff/* URL the client builds is under the base path: user, login (also on a 401), logout both ways, session events', async () => {
    const answers: Record<string, Response> = {
      '/admin/bff/user': json(200, user),
      '/admin/bff/logout': json(200, { logoutUrl: 'https://idp.example.com/logout?client_id=admin' }),
      '/admin/api/orders': json(401, { error: 'login_required', message: 'x' }),
    }
    const { client, location, calls } = adminSetup((url) => answers[url]?.clone() ?? json(404, { error: 'not_found' }))

    assert.deepEqual(await client.getUser(), user)
    client.onSessionEnded(() => {})
    client.login('/admin/reports')
    await assert.rejects(client.fetch('/admin/api/orders'), BffUnauthenticatedError)
    assert.equal(await client.logout(), LOGOUT_URL)
    assert.equal(await client.logout({ navigate: false }), 'https://idp.example.com/logout?client_id=admin')
    client.close()

    assert.deepEqual(
      calls.map((c) => [c.init.method ?? 'GET', c.url]),
      [
        ['GET', '/admin/bff/user'],
        ['GET', '/admin/api/orders'],
        ['GET', '/admin/bff/user'],
        ['POST', '/admin/bff/logout'],
      ],
    )
    assert.deepEqual(location.assigned, [
      `/admin/bff/login?returnTo=${encodeURIComponent('/admin/reports')}`,
      `/admin/bff/login?returnTo=${encodeURIComponent('/admin/orders/7?tab=items#notes')}`,
      LOGOUT_URL,
    ])
    assert.deepEqual(
      FakeEventSource.instances.map((s) => s.url),
      ['/admin/bff/session-events'],
    )
  })

  test("without a session, logout lands on the app's own root; a stream refused after it was open asks the prefixed /bff/user", async () => {
    const { client, location, calls } = adminSetup(() => json(401, { error: 'session_ended', message: 'x' }))
    const heard: string[] = []
    client.onSessionEnded(({ reason }) => heard.push(reason))
    const source = FakeEventSource.instances[0]!
    source.open()
    source.refuse()
    await until(() => heard.length === 1, 'the listener')
    assert.equal(await client.logout(), '/admin/')
    client.close()
    assert.deepEqual(location.assigned, ['/admin/'])
    assert.deepEqual(
      calls.map((c) => c.url),
      ['/admin/bff/user', '/admin/bff/user'],
    )
  })

  test('an explicit sessionEventsUrl still wins over the base path', () => {
    const { client } = adminSetup(() => json(200, {}), { sessionEventsUrl: '/events/admin' })
    client.onSessionEnded(() => {})
    client.close()
    assert.deepEqual(
      FakeEventSource.instances.map((s) => s.url),
      ['/events/admin'],
    )
  })

  test("basePath '' (the default) keeps every path at the root", async () => {
    const { client, location, calls } = setup({
      basePath: '',
      answer: () => json(401, { error: 'login_required', message: 'x' }),
    })
    assert.equal(await client.getUser(), null)
    client.login('/x')
    client.close()
    assert.deepEqual(
      calls.map((c) => c.url),
      ['/bff/user'],
    )
    assert.deepEqual(location.assigned, ['/bff/login?returnTo=%2Fx'])
  })

  test('the default channel is per base path: a logout under /admin reaches the other /admin tabs (which land on /admin/), not the app at the root of the same origin', async () => {
    const tab = (basePath: string) => {
      const location = fakeLocation(`${basePath}/`)
      return {
        location,
        client: createBffClient({ basePath, location, fetch: fakeFetch(() => json(200, { logoutUrl: '/x' })).fetch }),
      }
    }
    const { client: admin } = tab('/admin')
    const adminTab = tab('/admin')
    const rootTab = tab('')
    await admin.logout({ navigate: false })
    await until(() => adminTab.location.assigned.length > 0, 'the other /admin tab to hear it')
    await sleep(100)
    closeAll(admin, adminTab.client, rootTab.client)
    assert.deepEqual(adminTab.location.assigned, ['/admin/'])
    assert.deepEqual(rootTab.location.assigned, [], 'another app, another session: not told')
  })

  test('a base path that is not a path prefix bffgate accepts is refused at once with a TypeError naming the option', () => {
    const invalid: unknown[] = [
      '/',
      'admin',
      '/admin/',
      '//evil.example',
      '//evil.example/x',
      '/admin//x',
      '/./admin',
      '/admin/..',
      '/admin/.',
      '/..',
      '/admin?x=1',
      '/admin#x',
      '/ad min',
      '/admin\\x',
      '\\\\evil.example',
      '/admin\n',
      '/%2e%2e',
      '/adm%69n',
      'https://evil.example',
      'javascript:alert(1)',
      '/ädmin',
      42,
      null,
      false,
      ['/admin'],
    ]
    for (const basePath of invalid) {
      assert.throws(
        () =>
          createBffClient({
            basePath: basePath as string,
            location: fakeLocation(),
            fetch: fakeFetch().fetch,
            channelName: false,
          }),
        (err: unknown) => err instanceof TypeError && err.message.includes('options.basePath'),
        JSON.stringify(basePath),
      )
    }
    for (const basePath of ['', '/admin', '/apps/admin-v2', '/a.b_c~d', '/...']) {
      createBffClient({ basePath, location: fakeLocation(), fetch: fakeFetch().fetch, channelName: false }).close()
    }
  })
})
