/**
 * Issue 17 item 1 over real HTTP: a route with `"csrf": "same-origin"` takes the GETs that
 * `EventSource`, `<img>` and `<a download>` send (no custom header, the browser's own Fetch
 * Metadata), streams server-sent events as the upstream writes them, and cuts the stream when
 * the session ends, on any replica. (test/browser/spa-streams.test.ts proves the same in Chromium.)
 */
import assert from 'node:assert/strict'
import { request as httpRequest, type IncomingMessage } from 'node:http'
import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import { after, before, describe, test } from 'node:test'
import type { Browser } from '../helpers/browser.ts'
import { startTestRedis, type TestRedis } from '../helpers/redis.ts'
import { startReplica } from '../helpers/replica.ts'
import { startStack, type Stack, sessionCookieHeader } from '../helpers/stack.ts'

let redis: TestRedis
let stack: Stack
before(async () => {
  redis = await startTestRedis()
  stack = await startStack({
    redis,
    backchannel: true,
    routes: (api) => [
      { path: '/api', upstream: api },
      { path: '/live', upstream: api, csrf: 'same-origin' },
      { path: '/public', upstream: api, token: 'none', csrf: 'same-origin' },
    ],
  })
})
after(async () => {
  await stack?.close()
  await redis?.stop()
})

const cookieOf = (browser: Browser) => sessionCookieHeader(stack, browser)

/** What a same-origin `EventSource` or `<img>` sends: no custom header, only Fetch Metadata. */
const sameOrigin = { 'sec-fetch-site': 'same-origin', 'sec-fetch-mode': 'cors', accept: 'text/event-stream' }

interface Received {
  at: number
  data: { n: number; sub: string; writtenAt: number }
}

/** Opens a GET and resolves with the response as soon as its head arrives (the body is still streaming). */
async function open(base: string, path: string, headers: Record<string, string>): Promise<IncomingMessage> {
  const req = httpRequest(`${base}${path}`, { headers })
  req.end()
  const [res] = (await once(req, 'response')) as [IncomingMessage]
  return res
}

/** Reads `tick` events from a server-sent event stream as they arrive, with the arrival time. */
function readEvents(res: IncomingMessage): { events: Received[]; ended: Promise<void> } {
  const events: Received[] = []
  let buffer = ''
  res.setEncoding('utf8')
  res.on('data', (chunk: string) => {
    buffer += chunk
    let end: number
    while ((end = buffer.indexOf('\n\n')) !== -1) {
      const block = buffer.slice(0, end)
      buffer = buffer.slice(end + 2)
      const data = block.split('\n').find((line) => line.startsWith('data: '))
      if (data !== undefined) events.push({ at: Date.now(), data: JSON.parse(data.slice(6)) as Received['data'] })
    }
  })
  const ended = new Promise<void>((resolve) => {
    res.once('close', () => resolve())
  })
  return { events, ended }
}

/** Waits for `promise`, failing after `ms` with `what` (a stream that is never cut fails quickly). */
async function within(promise: Promise<void>, ms: number, what: string): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)
  })
  try {
    await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}

async function bodyOf(res: IncomingMessage): Promise<string> {
  let text = ''
  for await (const chunk of res) text += String(chunk)
  return text
}

describe('issue 17 item 1: streams, images and downloads on a same-origin route', () => {
  test('server-sent events arrive one by one as the upstream writes them, with the token attached, compression asked or not', async (t) => {
    const cookie = cookieOf((await stack.login()).browser)
    for (const encoding of [undefined, 'gzip, deflate, br']) {
      const res = await open(stack.url, '/live/events?count=3&every=400', {
        ...sameOrigin,
        cookie,
        ...(encoding !== undefined && { 'accept-encoding': encoding }),
      })
      assert.equal(res.statusCode, 200)
      assert.match(String(res.headers['content-type']), /^text\/event-stream/)
      assert.equal(
        res.headers['content-encoding'],
        undefined,
        'an event stream must not be compressed (zlib buffers it)',
      )
      const { events, ended } = readEvents(res)
      await ended
      assert.deepEqual(
        events.map((e) => e.data.n),
        [1, 2, 3],
      )
      t.diagnostic(
        `event lag (arrival - written upstream), ms: ${events.map((e) => e.at - e.data.writtenAt).join(', ')}`,
      )
      assert.ok(
        events.every((e) => e.data.sub === 'user-alice'),
        "the upstream saw the user's token",
      )
      // Each event is here before the upstream wrote the next one: nothing waited for the end.
      for (let i = 0; i + 1 < events.length; i++) {
        assert.ok(
          events[i]!.at < events[i + 1]!.data.writtenAt,
          `event ${i + 1} arrived ${events[i]!.at - events[i + 1]!.data.writtenAt} ms after event ${i + 2} was written`,
        )
      }
    }
    const upstream = stack.api
      .requests()
      .filter((r) => r.url.startsWith('/events'))
      .at(-1)!
    assert.match(String(upstream.headers.authorization), /^Bearer eyJ/)
    assert.equal(upstream.headers.cookie, undefined)
  })

  test("an image and a download (GET without x-csrf) go through on the browser's same-origin signal", async () => {
    const cookie = cookieOf((await stack.login()).browser)
    const image = await open(stack.url, '/live/avatar.svg', {
      cookie,
      'sec-fetch-site': 'same-origin',
      'sec-fetch-mode': 'no-cors',
      'sec-fetch-dest': 'image',
    })
    assert.equal(image.statusCode, 200)
    assert.equal(image.headers['content-type'], 'image/svg+xml')
    assert.match(await bodyOf(image), /^<svg /)
    const download = await open(stack.url, '/live/report.csv', {
      cookie,
      'sec-fetch-site': 'same-origin',
      'sec-fetch-mode': 'navigate',
      'sec-fetch-dest': 'empty',
    })
    assert.equal(download.statusCode, 200)
    assert.equal(download.headers['content-disposition'], 'attachment; filename="report.csv"')
    assert.match(await bodyOf(download), /^order,total\n42,/)
    // A browser without Fetch Metadata that says our Origin; a token-less route likewise.
    assert.equal((await open(stack.url, '/live/avatar.svg', { cookie, origin: stack.url })).statusCode, 200)
    // A "token": "none" route is checked by its own policy too: it reaches the upstream, which
    // (the demo API wants a token) answers its own 401, not bffgate's 403.
    const calls = stack.api.requests().length
    const tokenless = await open(stack.url, '/public/events?count=1', sameOrigin)
    assert.equal((JSON.parse(await bodyOf(tokenless)) as { error: string }).error, 'unauthorized')
    assert.equal(stack.api.requests().length, calls + 1)
  })

  test('a cross-site request never reaches the upstream, on any route, with or without a session', async () => {
    const cookie = cookieOf((await stack.login()).browser)
    const calls = stack.api.requests().length
    const refusals: Array<[string, string, Record<string, string>]> = [
      ['GET', '/live/events', { cookie, 'sec-fetch-site': 'cross-site', accept: 'text/event-stream' }],
      ['GET', '/live/avatar.svg', { cookie, 'sec-fetch-site': 'same-site', 'sec-fetch-dest': 'image' }],
      ['GET', '/live/report.csv', { cookie, origin: 'http://localhost:1' }],
      ['GET', '/live/report.csv', { cookie, origin: 'null', 'sec-fetch-site': 'same-origin' }],
      // No signal at all (an old browser, or not a browser): fails closed.
      ['GET', '/live/avatar.svg', { cookie }],
      ['GET', '/public/events', { 'sec-fetch-site': 'cross-site' }],
      // Unsafe methods always need the header, same-origin or not.
      ['POST', '/live/orders', { cookie, ...sameOrigin, origin: stack.url, 'content-type': 'application/json' }],
      ['DELETE', '/live/orders/1', { cookie, ...sameOrigin }],
      // The default policy is unchanged: a same-origin GET without the header is refused.
      ['GET', '/api/events', { cookie, ...sameOrigin }],
    ]
    for (const [method, path, headers] of refusals) {
      const req = httpRequest(`${stack.url}${path}`, { method, headers })
      req.end(method === 'POST' ? '{}' : undefined)
      const [res] = (await once(req, 'response')) as [IncomingMessage]
      const body = JSON.parse(await bodyOf(res)) as { error: string }
      assert.equal(res.statusCode, 403, `${method} ${path} ${JSON.stringify(headers)}`)
      assert.equal(body.error, 'csrf_failed')
    }
    assert.equal(stack.api.requests().length, calls, 'a refused request reached the upstream')
  })

  test('when the session ends on another replica, its event stream here is cut within a second and the upstream stream closed', async (t) => {
    const replica = await startReplica({ ...stack.env, BFF_LOG_LEVEL: 'warn' })
    t.after(async () => {
      await replica.stop()
    })
    const cookie = cookieOf((await stack.login()).browser)
    const res = await open(replica.url, '/live/events?every=200', { ...sameOrigin, cookie })
    assert.equal(res.statusCode, 200)
    const { events, ended } = readEvents(res)
    while (events.length < 2) await sleep(20)
    assert.equal(stack.api.openStreams(), 1)
    const started = performance.now()
    await stack.idp.revokeSessions('user-alice') // back-channel logout, received by the other process
    await within(ended, 5000, 'the stream was not cut')
    const elapsed = performance.now() - started
    t.diagnostic(`stream cut ${elapsed.toFixed(0)} ms after the IdP's back-channel logout began`)
    assert.ok(elapsed < 1000, `cut after ${elapsed.toFixed(0)} ms`)
    for (let i = 0; i < 50 && stack.api.openStreams() > 0; i++) await sleep(20)
    assert.equal(stack.api.openStreams(), 0, 'the upstream stream is still open')
    res.destroy()
    // The browser's reconnect gets a 401, which ends an EventSource for good.
    const again = await open(replica.url, '/live/events', { ...sameOrigin, cookie })
    assert.equal(again.statusCode, 401)
    again.resume()
  })

  test('a logout in the same replica cuts the stream too', async () => {
    const { browser } = await stack.login()
    const res = await open(stack.url, '/live/events?every=200', { ...sameOrigin, cookie: cookieOf(browser) })
    const { events, ended } = readEvents(res)
    while (events.length < 1) await sleep(20)
    const logout = await fetch(`${stack.url}/bff/logout`, {
      method: 'POST',
      headers: { cookie: cookieOf(browser), 'x-csrf': '1' },
    })
    assert.equal(logout.status, 200)
    const started = performance.now()
    await within(ended, 5000, 'the stream was not cut')
    assert.ok(performance.now() - started < 1000)
    res.destroy()
  })
})
