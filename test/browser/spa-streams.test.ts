/**
 * Issue 17 items 1, 2 and 3 in Chromium (playwright-core driving /usr/bin/chromium) against
 * bffgate serving the demo SPA, with real Redis, the development IdP and the demo API over
 * HTTP on loopback: the SPA's EventSource, image and download through a `"csrf":
 * "same-origin"` route; a cross-site page that can use none of them; a deep link that renders
 * the SPA under its strict CSP; a cancelled login that lands on the SPA, not on JSON.
 *
 * Sites: bffgate is http://127.0.0.1:<port>; the IdP and the attacker are http://localhost:<port>.
 */
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { after, afterEach, before, describe, test } from 'node:test'
import type { Browser, BrowserContext, ConsoleMessage, Page } from 'playwright-core'
import { freePort, startTestRedis, type TestRedis } from '../helpers/redis.ts'
import { startStack, type Stack } from '../helpers/stack.ts'
import { startAttackerSite, type AttackerSite } from './attacker.ts'
import { launchChromium, pageErrors, screenshotter, signInAtIdp as signIn } from './chromium.ts'

const DEMO_DIR = fileURLToPath(new URL('../../dev/demo/public/', import.meta.url))
const WAIT_MS = 10_000

let redis: TestRedis
let stack: Stack
let attacker: AttackerSite
let browser: Browser
const shot = screenshotter()
let contexts: Array<{ context: BrowserContext; errors: string[] }> = []

/** The attacker's attempts on the /live route: an image, an EventSource, a no-cors fetch, a video and a download link. */
const attempts = (target: string) => `
  <img id="img" src="${target}/live/avatar.svg">
  <video id="video" src="${target}/live/events"></video>
  <a id="download" href="${target}/live/report.csv" download>Your prize</a>
  <script>
    window.stolen = { events: 0, errors: 0, fetched: 'pending' }
    const source = new EventSource('${target}/live/events', { withCredentials: true })
    source.onmessage = source.addEventListener('tick', () => { window.stolen.events++ })
    source.onerror = () => { window.stolen.errors++ }
    window.source = source
    fetch('${target}/live/report.csv', { mode: 'no-cors', credentials: 'include' })
      .then((res) => { window.stolen.fetched = res.type }, () => { window.stolen.fetched = 'failed' })
  </script>`

before(async () => {
  browser = await launchChromium()
  redis = await startTestRedis()
  const idpPort = await freePort()
  stack = await startStack({
    redis,
    backchannel: true,
    idp: { port: idpPort, issuer: `http://localhost:${idpPort}` },
    env: { BFF_STATIC_DIR: DEMO_DIR, BFF_LOG_LEVEL: 'info' },
    routes: (api) => [
      { path: '/api', upstream: api },
      { path: '/live', upstream: api, csrf: 'same-origin' },
    ],
  })
  attacker = await startAttackerSite(stack.url, attempts(stack.url))
})

after(async () => {
  await browser?.close()
  await attacker?.close()
  await stack?.close()
  await redis?.stop()
})

afterEach(async (t) => {
  const opened = contexts
  contexts = []
  const passed = (t as { passed?: boolean }).passed !== false
  if (!passed) {
    for (const { context } of opened)
      for (const page of context.pages()) await shot(page, `FAILED-${t.name.slice(0, 40)}`).catch(() => {})
  }
  await Promise.all(opened.map(({ context }) => context.close()))
})

async function newContext(): Promise<{ context: BrowserContext; errors: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1000, height: 900 }, acceptDownloads: true })
  context.setDefaultTimeout(WAIT_MS)
  const entry = { context, errors: pageErrors(context) }
  contexts.push(entry)
  return entry
}

const at = (path: string) => (url: URL) => url.origin === stack.url && `${url.pathname}${url.search}` === path

const signInAtIdp = (page: Page, landing: (url: URL) => boolean): Promise<void> =>
  signIn(page, stack.idp.issuer, landing)

/** The demo SPA opened at `path` and logged in from its own button, back at `path`. */
async function loggedInTab(context: BrowserContext, path = '/'): Promise<Page> {
  const page = await context.newPage()
  await page.goto(`${stack.url}${path}`)
  await page.locator('#anonymous #login').click()
  await signInAtIdp(page, at(path))
  await page.locator('#signed-in').waitFor()
  return page
}

/** Upstream requests to the /live content since `from`. */
const liveCalls = (from: number) =>
  stack.api
    .requests()
    .slice(from)
    .filter((r) => /^\/(events|avatar\.svg|report\.csv)/.test(r.url))

describe('issue 17 in Chromium', () => {
  test("issue 17 item 1: the SPA's EventSource, <img> and <a download> work through a same-origin route, and the stream closes when the session ends", async () => {
    const { context, errors } = await newContext()
    const page = await loggedInTab(context)
    // Events arrive one by one (one a second from the API), not all at the end of the stream.
    await page.waitForFunction(() => Number(document.querySelector('#live')?.getAttribute('data-ticks')) >= 1)
    const firstAt = Date.now()
    await page.waitForFunction(() => Number(document.querySelector('#live')?.getAttribute('data-ticks')) >= 3)
    assert.ok(Date.now() - firstAt >= 1500, 'ticks 2 and 3 arrived together with tick 1')
    assert.equal(await page.locator('#avatar').evaluate((img: HTMLImageElement) => img.naturalWidth), 64)
    const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#report').click()])
    assert.equal(download.suggestedFilename(), 'report.csv')
    assert.match(await readFile(await download.path(), 'utf8'), /^order,total\n42,19\.99\n/)
    await shot(page, 'item1-live-image-download')

    const calls = liveCalls(0)
    for (const path of ['/events', '/avatar.svg', '/report.csv']) {
      const call = calls.find((r) => r.url.startsWith(path))
      assert.ok(call, `${path} reached the API`)
      assert.match(String(call.headers.authorization), /^Bearer eyJ/, `${path} carried the token`)
      assert.equal(call.headers.cookie, undefined)
      assert.equal(call.headers['x-csrf'], undefined, 'no custom header was sent: the browser cannot')
    }

    // The IdP ends the session (back-channel logout): bffgate cuts the stream; the EventSource's
    // reconnect gets a 401 and it closes for good.
    assert.equal(stack.api.openStreams(), 1)
    await stack.idp.revokeSessions('user-alice')
    await page.locator('#live', { hasText: 'closed (the session ended)' }).waitFor()
    assert.equal(stack.api.openStreams(), 0)
    await shot(page, 'item1-stream-closed')
    assert.deepEqual(errors, [])
  })

  test('issue 17 item 1: a page on another site can use none of them: nothing reaches it, and the API is never called', async () => {
    const { context } = await newContext()
    const spa = await loggedInTab(context)
    await spa.waitForFunction(() => Number(document.querySelector('#live')?.getAttribute('data-ticks')) >= 1)
    await spa.close() // the SPA's own stream ends; only the attacker's requests can follow
    const from = stack.api.requests().length

    const page = await context.newPage()
    const rejectedBefore = stack.logs.lines.filter((line) => line.event === 'csrf.rejected').length
    await page.goto(attacker.url)
    await page.waitForFunction(
      () =>
        (window as unknown as { stolen: { errors: number; fetched: string } }).stolen.errors > 0 &&
        (window as unknown as { stolen: { fetched: string } }).stolen.fetched !== 'pending',
    )
    await page.waitForTimeout(1500) // an EventSource retry, should one happen
    const stolen = await page.evaluate(() => {
      const w = window as unknown as { stolen: { events: number; fetched: string }; source: EventSource }
      return { events: w.stolen.events, state: w.source.readyState }
    })
    assert.deepEqual(stolen, { events: 0, state: 2 }, 'the EventSource got events, or is still trying')
    assert.equal(
      await page.locator('#img').evaluate((img: HTMLImageElement) => img.naturalWidth),
      0,
      'the image was shown',
    )
    await shot(page, 'item1-attacker-page')
    // The download attribute does not apply across origins: the link navigates, and bffgate refuses.
    const [navigation] = await Promise.all([
      page.waitForResponse(`${stack.url}/live/report.csv`),
      page.locator('#download').click(),
    ])
    assert.equal(navigation.status(), 403)
    // The browser did send them (image, video, EventSource, fetch, link): bffgate refused each.
    const rejected = stack.logs.lines.filter((line) => line.event === 'csrf.rejected').length - rejectedBefore
    assert.ok(rejected >= 5, `${rejected} cross-site requests refused`)
    assert.deepEqual(liveCalls(from), [], 'the API was called for a cross-site request')
    // The user's session is untouched.
    const check = await context.newPage()
    await check.goto(stack.url)
    await check.locator('#signed-in').waitFor()
  })

  test('issue 17 item 2: a deep-link navigation renders the SPA under the strict CSP, and logging in returns to it', async () => {
    const { context, errors } = await newContext()
    const page = await context.newPage()
    const violations: string[] = []
    page.on('console', (message: ConsoleMessage) => {
      if (/Content Security Policy/i.test(message.text())) violations.push(message.text())
    })
    const response = await page.goto(`${stack.url}/orders/42?tab=items`)
    assert.equal(response?.status(), 200)
    assert.equal(response?.headers()['cache-control'], 'no-cache')
    assert.match(response?.headers()['content-security-policy'] ?? '', /^default-src 'self'; script-src 'self';/)
    await page.locator('#anonymous #login').waitFor()
    await page.locator('#anonymous #login').click()
    await signInAtIdp(page, at('/orders/42?tab=items'))
    await page.locator('#signed-in').waitFor()
    await page.locator('#live[data-ticks]').waitFor()
    await shot(page, 'item2-deep-link-signed-in')
    assert.deepEqual(violations, [], 'the demo itself runs under the strict policy')
    // The policy is enforced: an injected inline script does not run.
    const injected = await page.evaluate(() => {
      const script = document.createElement('script')
      script.textContent = 'window.injected = true'
      document.body.append(script)
      return (window as unknown as { injected?: boolean }).injected === true
    })
    assert.equal(injected, false)
    assert.ok(
      violations.some((v) => /inline script/i.test(v)),
      `Chromium reported no blocked inline script: ${violations.join(' | ')}`,
    )
    assert.deepEqual(errors, [])
  })

  test("issue 17 item 3: a login the user cancels at the IdP lands on the SPA with bffgate's error code, not on JSON", async () => {
    const { context, errors } = await newContext()
    const page = await context.newPage()
    await page.goto(
      `${stack.url}/bff/login?returnTo=/orders&prompt=login&login_hint=${encodeURIComponent('alice@example.com')}`,
    )
    await page.waitForURL((url) => url.origin === stack.idp.issuer)
    assert.equal(await page.locator('#username').inputValue(), 'alice@example.com', 'the IdP received login_hint')
    await Promise.all([
      page.waitForURL((url) => url.origin === stack.url && url.pathname === '/'),
      page.locator('#cancel').click(),
    ])
    const landed = new URL(page.url())
    assert.equal(landed.searchParams.get('login_error'), 'login_failed')
    assert.equal(landed.searchParams.get('login_error_reason'), 'access_denied')
    await page.locator('#anonymous #login').waitFor() // the SPA rendered, not a JSON body
    await shot(page, 'item3-cancelled-login')
    assert.deepEqual(errors, [])
  })
})
