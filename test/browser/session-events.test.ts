/**
 * issue 17 item 4 in Chromium: the session's end pushed to an open page, across replicas.
 * Two bffgate processes share one Redis: this test process (where the IdP's back-channel
 * logout arrives) and a replica started with the same environment, which serves the page and
 * holds its `EventSource`. Both are on 127.0.0.1, so the page on the replica's port carries
 * the session cookie set through the first (cookies ignore ports).
 */
import assert from 'node:assert/strict'
import { fileURLToPath } from 'node:url'
import { after, before, test } from 'node:test'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import type * as BffClientModule from '../../packages/bffgate-client/index.js'
import { freePort, startTestRedis, type TestRedis } from '../helpers/redis.ts'
import { startReplica, type Replica } from '../helpers/replica.ts'
import { startStack, type Stack } from '../helpers/stack.ts'
import { launchChromium, pageErrors, screenshotter, signInAtIdp as signIn } from './chromium.ts'

const DEMO_DIR = fileURLToPath(new URL('../../dev/demo/public/', import.meta.url))
const WAIT_MS = 10_000

let redis: TestRedis
let stack: Stack
let replica: Replica
let browser: Browser
const shot = screenshotter()

before(async () => {
  browser = await launchChromium()
  redis = await startTestRedis()
  const idpPort = await freePort()
  stack = await startStack({
    redis,
    backchannel: true,
    idp: { port: idpPort, issuer: `http://localhost:${idpPort}` },
    env: { BFF_STATIC_DIR: DEMO_DIR, BFF_LOG_LEVEL: 'info' },
  })
  replica = await startReplica({ ...stack.env, BFF_LOG_LEVEL: 'warn' })
})

after(async () => {
  await browser?.close()
  await replica?.stop()
  await stack?.close()
  await redis?.stop()
})

async function signedIn(context: BrowserContext): Promise<void> {
  const page = await context.newPage()
  await page.goto(`${stack.url}/`)
  await page.locator('#anonymous #login').click()
  await signIn(page, stack.idp.issuer, (url) => url.origin === stack.url && url.pathname === '/')
  await page.locator('#signed-in').waitFor()
  await page.close()
}

/** Opens the demo at `origin`, waits for its session stream, and adds a listener of its own that records the event. */
async function pageListening(context: BrowserContext, origin: string): Promise<Page> {
  const page = await context.newPage()
  const streamOpen = page.waitForResponse((res) => res.url() === `${origin}/bff/session-events` && res.status() === 200)
  await page.goto(`${origin}/`)
  await page.locator('#signed-in').waitFor()
  await streamOpen
  const ownStreamOpen = page.waitForResponse(
    (res) => res.url() === `${origin}/bff/session-events` && res.status() === 200,
  )
  await page.evaluate(async () => {
    const url = '/bffgate-client.js'
    const { createBffClient } = (await import(url)) as typeof BffClientModule
    const bff = createBffClient({ channelName: false })
    bff.onSessionEnded(({ reason }) => {
      ;(window as unknown as { ended: unknown }).ended = { reason, at: Date.now() }
    })
  })
  await ownStreamOpen
  return page
}

test("issue 17 item 4: a back-channel logout arriving at another replica reaches the open page's onSessionEnded within a second, and the demo says so", async () => {
  const context = await browser.newContext()
  context.setDefaultTimeout(WAIT_MS)
  const errors = pageErrors(context)
  try {
    await signedIn(context)
    const page = await pageListening(context, replica.url)
    // Both the demo's and the test's own client have their stream on the replica.
    await shot(page, 'session-events-before')

    const started = Date.now()
    const notified = await stack.idp.revokeSessions('user-alice') // the logout token goes to this process, not the replica
    assert.equal(notified, 1)
    await page.waitForFunction(() => (window as unknown as { ended?: unknown }).ended !== undefined)
    const ended = await page.evaluate(() => (window as unknown as { ended: { reason: string; at: number } }).ended)
    const latency = ended.at - started
    assert.equal(ended.reason, 'backchannel_logout')
    assert.ok(latency < 1000, `the page heard it ${latency} ms after the IdP ended the session`)
    const backchannel = stack.logs.lines.find((line) => line.event === 'session.ended' && line.cause === 'backchannel')
    assert.ok(backchannel !== undefined, 'the back-channel logout arrived at the in-process replica')
    assert.doesNotMatch(
      replica.output(),
      /backchannel_logout\.(accepted|rejected)/,
      'and not at the replica holding the stream',
    )

    await page.locator('#session-ended').waitFor()
    assert.equal(await page.locator('#session-ended').getAttribute('data-reason'), 'backchannel_logout')
    assert.match((await page.locator('#session-ended-text').textContent()) ?? '', /signed out by the identity provider/)
    await shot(page, 'session-events-ended')
    console.log(`# back-channel logout to page callback across replicas: ${latency} ms`)
  } finally {
    await context.close()
  }
  assert.deepEqual(errors, [])
})

test('issue 17 item 4: a logout in one tab (served by one replica) pushes reason logout to a tab served by the other, without any call from it', async () => {
  const context = await browser.newContext()
  context.setDefaultTimeout(WAIT_MS)
  const errors = pageErrors(context)
  try {
    await signedIn(context)
    const other = await pageListening(context, replica.url)
    const first = await context.newPage()
    await first.goto(`${stack.url}/?tab=first`)
    await first.locator('#signed-in').waitFor()
    const requests: string[] = []
    other.on('request', (request) => requests.push(request.url()))
    const started = Date.now()
    await Promise.all([
      first.waitForURL((url) => url.origin === stack.url && url.pathname === '/'),
      first.locator('#logout').click(),
    ])
    await other.waitForFunction(() => (window as unknown as { ended?: unknown }).ended !== undefined)
    const ended = await other.evaluate(() => (window as unknown as { ended: { reason: string; at: number } }).ended)
    assert.equal(ended.reason, 'logout')
    assert.ok(ended.at - started < 3000, `${ended.at - started} ms, the IdP's end-session round trip included`)
    assert.deepEqual(
      requests.filter((url) => !url.endsWith('/bff/session-events')),
      [],
      'the tab learnt it without asking',
    )
    await other.locator('#anonymous').waitFor()
  } finally {
    await context.close()
  }
  assert.deepEqual(errors, [])
})

test("issue 17 item 4: a page on another site cannot open the session's stream, even with credentials", async () => {
  const { startAttackerSite } = await import('./attacker.ts')
  const attacker = await startAttackerSite(stack.url)
  const context = await browser.newContext()
  context.setDefaultTimeout(WAIT_MS)
  try {
    await signedIn(context)
    const evil = await context.newPage()
    const refusedBefore = stack.logs.lines.filter((line) => line.reason === 'session_events_origin').length
    await evil.goto(attacker.url)
    const outcome = await evil.evaluate(
      async (target) =>
        new Promise<string>((resolve) => {
          const source = new EventSource(`${target}/bff/session-events`, { withCredentials: true })
          source.addEventListener('open', () => resolve('open'))
          source.addEventListener('error', () => resolve(`error, readyState ${source.readyState}`))
        }),
      stack.url,
    )
    assert.equal(outcome, 'error, readyState 2')
    // bffgate refused it (403 csrf_failed) before looking at the session; the page learnt nothing.
    const refused = stack.logs.lines.filter((line) => line.reason === 'session_events_origin')
    assert.equal(refused.length, refusedBefore + 1)
    assert.equal(refused.at(-1)!.event, 'csrf.rejected')
  } finally {
    await context.close()
    await attacker.close()
  }
})

test('issue 17 item 4: the demo warns BFF_SESSION_WARNING_SECONDS before the absolute end and says the session ended at it, with no call from the page', async (t) => {
  const idpPort = await freePort()
  const short = await startStack({
    redis,
    idp: { port: idpPort, issuer: `http://localhost:${idpPort}` },
    env: {
      BFF_STATIC_DIR: DEMO_DIR,
      BFF_SESSION_ABSOLUTE_SECONDS: '8',
      BFF_SESSION_IDLE_SECONDS: '8',
      BFF_SESSION_WARNING_SECONDS: '5',
    },
  })
  t.after(() => short.close())
  const context = await browser.newContext()
  context.setDefaultTimeout(WAIT_MS)
  const errors = pageErrors(context)
  try {
    const page = await context.newPage()
    await page.goto(`${short.url}/`)
    await page.locator('#anonymous #login').click()
    await signIn(page, short.idp.issuer, (url) => url.origin === short.url && url.pathname === '/')
    await page.locator('#signed-in').waitFor()
    const calls: string[] = []
    page.on('request', (request) => calls.push(new URL(request.url()).pathname))

    await page.locator('#notice', { hasText: 'whatever you do: save your work' }).waitFor()
    await shot(page, 'session-expiring-warning')
    await page.locator('#session-ended').waitFor()
    assert.equal(await page.locator('#session-ended').getAttribute('data-reason'), 'absolute_timeout')
    assert.match((await page.locator('#session-ended-text').textContent()) ?? '', /maximum lifetime/)
    await shot(page, 'session-absolute-end')
    assert.deepEqual(
      calls.filter((path) => path !== '/bff/session-events'),
      [],
      'learnt without polling',
    )
  } finally {
    await context.close()
  }
  assert.deepEqual(errors, [])
})
