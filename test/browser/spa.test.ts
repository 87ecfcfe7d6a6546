/**
 * The SPA experience in a real browser: Debian's Chromium (playwright-core) against bffgate
 * with real Redis, the development IdP and the demo API, all over HTTP on loopback. bffgate
 * serves the demo SPA (dev/demo/public), which uses @bffgate/client.
 *
 * Sites: bffgate is http://127.0.0.1:<port>; the IdP is http://localhost:<port>, another site,
 * as an IdP is in production (so the SameSite=Strict cookie meets a cross-site login
 * redirect); the attacker page is http://localhost:<other port>, another site than bffgate.
 * Screenshots of every step go to test-results/browser/.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { after, afterEach, before, describe, test } from 'node:test'
import type { Browser, BrowserContext, Page, Request } from 'playwright-core'
import type * as BffClientModule from '../../packages/bffgate-client/index.js'
import { inlineScriptHashes, policyWithScriptHashes } from '../../dev/demo/csp.ts'
import { freePort, startTestRedis, type TestRedis } from '../helpers/redis.ts'
import { startStack, type Stack } from '../helpers/stack.ts'
import { startAttackerSite, type AttackerSite } from './attacker.ts'
import { launchChromium, pageErrors, screenshotter, signInAtIdp as signIn } from './chromium.ts'

const DEMO_DIR = fileURLToPath(new URL('../../dev/demo/public/', import.meta.url))
const SESSION_COOKIE = '__Host-Http-bff'
const ACCESS_TOKEN_TTL_SECONDS = 2
/** Playwright waits this long at most for anything, so a failure is quick and says what it waited for. */
const WAIT_MS = 10_000

let redis: TestRedis
let stack: Stack
let attacker: AttackerSite
let browser: Browser
const shot = screenshotter()
/** Contexts opened by the current test, and the uncaught page errors they saw. */
let contexts: Array<{ context: BrowserContext; errors: string[] }> = []

before(async () => {
  // The browser first: without Chromium every test fails at once, saying how to install it.
  browser = await launchChromium()
  redis = await startTestRedis()
  const idpPort = await freePort()
  stack = await startStack({
    redis,
    backchannel: true,
    idp: { port: idpPort, issuer: `http://localhost:${idpPort}`, accessTokenTtlSeconds: ACCESS_TOKEN_TTL_SECONDS },
    env: {
      BFF_STATIC_DIR: DEMO_DIR,
      BFF_REFRESH_SKEW_SECONDS: '1',
      BFF_LOG_LEVEL: 'info',
      // The strict default CSP, plus the hashes of minimal.html's inline scripts (as `npm run demo` does).
      BFF_CONTENT_SECURITY_POLICY: policyWithScriptHashes(
        inlineScriptHashes(readFileSync(`${DEMO_DIR}minimal.html`, 'utf8')),
      ),
    },
    routes: (api) => [
      { path: '/api', upstream: api },
      { path: '/live', upstream: api, csrf: 'same-origin' },
    ],
  })
  attacker = await startAttackerSite(stack.url)
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
  if (passed) for (const { errors } of opened) assert.deepEqual(errors, [], 'uncaught errors in the pages')
})

/** A fresh browser profile: its own cookie jar and BroadcastChannel scope. */
async function newContext(): Promise<BrowserContext> {
  const context = await browser.newContext({ viewport: { width: 1000, height: 800 } })
  context.setDefaultTimeout(WAIT_MS)
  contexts.push({ context, errors: pageErrors(context) })
  return context
}

const at = (path: string) => (url: URL) => url.origin === stack.url && `${url.pathname}${url.search}` === path
const atIdp = (url: URL) => url.origin === stack.idp.issuer

/** Fills in the IdP's login page and waits until the browser is back at `landing`. */
const signInAtIdp = (page: Page, landing: (url: URL) => boolean): Promise<void> =>
  signIn(page, stack.idp.issuer, landing)

/** A tab of the demo SPA at `path`, logged in through the IdP's login page from the page's own button. */
async function loggedInTab(context: BrowserContext, path = '/'): Promise<Page> {
  const page = await context.newPage()
  await page.goto(`${stack.url}${path}`)
  await page.locator('#anonymous #login').click()
  await signInAtIdp(page, at(path))
  await page.locator('#signed-in').waitFor()
  return page
}

/** `fetch` run inside the page, answering the status and the `error` code. */
async function fetchInPage(
  page: Page,
  path: string,
  headers: Record<string, string> = { 'x-csrf': '1' },
): Promise<{ status: number; error?: string }> {
  return page.evaluate(
    async (request) => {
      const res = await fetch(request.path, { headers: request.headers })
      const body = (await res.json().catch(() => ({}))) as { error?: string }
      return { status: res.status, ...(body.error !== undefined && { error: body.error }) }
    },
    { path, headers },
  )
}

describe('the demo SPA in Chromium', () => {
  test('a full login through the IdP login page lands on returnTo; the landing page load carries no session cookie and /bff/user does', async () => {
    const context = await newContext()
    const page = await context.newPage()
    // Every request to bffgate, with the Cookie header the browser sent.
    const sent: Array<Promise<{ path: string; cookie: string }>> = []
    page.on('request', (request: Request) => {
      if (!request.url().startsWith(stack.url)) return
      sent.push(
        request
          .allHeaders()
          .then((headers) => ({ path: request.url().slice(stack.url.length), cookie: headers.cookie ?? '' })),
      )
    })

    const returnTo = '/?view=tokens#calls'
    await page.goto(`${stack.url}${returnTo}`)
    await page.locator('#anonymous').waitFor()
    await shot(page, 'anonymous')
    await page.locator('#anonymous #login').click()
    await page.waitForURL(atIdp)
    await page.locator('#username').waitFor()
    await shot(page, 'idp-login-page')
    await signInAtIdp(page, (url) => url.origin === stack.url && !url.pathname.startsWith('/bff/'))

    assert.equal(page.url(), `${stack.url}${returnTo}`)
    await page.locator('#signed-in').waitFor()
    assert.equal(await page.locator('#user-name').textContent(), 'Alice Example')
    assert.equal(await page.locator('#user-sub').textContent(), 'user-alice')
    await shot(page, 'signed-in')

    // The IdP is another site: the redirect chain back from it does not carry the SameSite=Strict
    // cookie to the landing page, but the SPA's own calls do. That is why the SPA asks /bff/user.
    const requests = await Promise.all(sent)
    const landing = requests.filter((r) => r.path === '/?view=tokens')
    const user = requests.filter((r) => r.path === '/bff/user')
    assert.deepEqual(
      landing.map((r) => r.cookie.includes(SESSION_COOKIE)),
      [false, false],
      'the page loads, before and after login, carry no session cookie',
    )
    assert.deepEqual(
      user.map((r) => r.cookie.includes(`${SESSION_COOKIE}=`)),
      [false, true],
      '/bff/user, before and after login',
    )
  })

  test('the session cookie is invisible to document.cookie and sits in the jar as __Host-Http-bff: HttpOnly, Secure, SameSite=Strict, Path=/, host-only', async () => {
    const context = await newContext()
    const page = await loggedInTab(context)

    assert.equal(
      await page.evaluate(() => isSecureContext),
      true,
      'http://127.0.0.1 is a secure context, so Secure cookies work over plain http here',
    )
    assert.equal(await page.evaluate(() => document.cookie), '')
    // A script cannot overwrite it either.
    await page.evaluate((name) => {
      document.cookie = `${name}=forged; Path=/; Secure; SameSite=Strict`
    }, SESSION_COOKIE)

    const cookies = await context.cookies(stack.url)
    assert.deepEqual(
      cookies.map((c) => c.name),
      [SESSION_COOKIE],
      'the login-state cookie is gone; nothing else is set',
    )
    const cookie = cookies[0]!
    assert.equal(cookie.httpOnly, true)
    assert.equal(cookie.secure, true)
    assert.equal(cookie.sameSite, 'Strict')
    assert.equal(cookie.path, '/')
    assert.equal(cookie.domain, '127.0.0.1', 'host-only (no Domain attribute)')
    assert.ok(cookie.expires > Date.now() / 1000 + 86_400, 'persistent, until the absolute deadline')
    assert.notEqual(cookie.value, 'forged')
    assert.doesNotMatch(cookie.value, /^eyJ|\..+\./, 'an opaque ticket, not a token')

    // Show what the page can see next to what the jar holds, for the screenshot.
    await page.evaluate(
      ({ jar }) => {
        const pre = document.createElement('pre')
        pre.id = 'cookie-report'
        pre.textContent = `document.cookie = ${JSON.stringify(document.cookie)}\nbrowser cookie jar for this origin:\n${jar}`
        document.body.prepend(pre)
      },
      { jar: cookies.map(({ value: _value, ...attributes }) => JSON.stringify(attributes, null, 2)).join('\n') },
    )
    await shot(page, 'cookie-not-readable')
  })

  test('API calls keep succeeding across several access-token lifetimes: bffgate refreshes the token behind the page', async () => {
    const context = await newContext()
    const page = await loggedInTab(context, '/?view=refresh')
    stack.idp.resetStats()
    const firstRequest = stack.api.requests().length

    // The page calls the API once a second: for three token lifetimes and a half, and until it
    // has seen four tokens.
    const started = Date.now()
    await page.locator('#auto').check()
    await page.waitForFunction(
      () => Number(document.querySelector<HTMLElement>('#token-summary')?.dataset.tokens ?? 0) >= 4,
      undefined,
      { timeout: 20_000 },
    )
    const remaining = (3 * ACCESS_TOKEN_TTL_SECONDS + 0.5) * 1000 - (Date.now() - started)
    if (remaining > 0) await page.waitForTimeout(remaining)
    await page.locator('#auto').uncheck()
    await page.waitForTimeout(300) // a call still on its way

    const calls = await page
      .locator('#calls li')
      .evaluateAll((items) =>
        items.map((item) => ({ status: (item as HTMLElement).dataset.status, jti: (item as HTMLElement).dataset.jti })),
      )
    assert.deepEqual(
      calls.filter((c) => c.status !== '200'),
      [],
      'every call succeeded',
    )
    const tokens = new Set(calls.map((c) => c.jti))
    assert.ok(tokens.size >= 4, `${tokens.size} tokens for ${calls.length} calls`)
    assert.match(
      (await page.locator('#token-summary').textContent()) ?? '',
      /^\d+ access tokens seen, \d+ refreshes done by bffgate; the current one expires in \d+ s\.$/,
    )
    // The API saw tokens issued after the first one had expired, all valid when they arrived.
    const received = stack.api.requests().slice(firstRequest)
    assert.ok(
      received.every((r) => r.authorized),
      'the API accepted every token',
    )
    const expiries = received.map((r) => Number(r.claims!.exp))
    const issued = received.map((r) => Number(r.claims!.iat))
    assert.ok(
      Math.max(...issued) - Math.min(...expiries) >= ACCESS_TOKEN_TTL_SECONDS,
      `issued ${issued.join()}, expiring ${expiries.join()}`,
    )
    // By refresh-token exchanges, not by new logins; the page never left.
    assert.ok(
      (stack.idp.stats().tokenRequests.refresh_token ?? 0) >= tokens.size - 1,
      JSON.stringify(stack.idp.stats()),
    )
    assert.equal(stack.idp.stats().tokenRequests.authorization_code ?? 0, 0)
    assert.equal(page.url(), `${stack.url}/?view=refresh`)
    await shot(page, 'transparent-refresh')
  })

  test('after the IdP revokes the session server-side, the next API call sends the page to the IdP login, and signing in returns to it', async () => {
    const context = await newContext()
    const path = '/?after=revocation'
    const page = await loggedInTab(context, path)
    await page.locator('#call').click()
    await page.locator('#calls li[data-status="200"]').waitFor()

    assert.ok((await stack.idp.revokeSessions('user-alice')) >= 1)
    await shot(page, 'revoked-at-idp')
    await Promise.all([page.waitForURL(atIdp), page.locator('#call').click()])
    await page.locator('#username').waitFor()
    await shot(page, 'sent-to-login-after-revocation')

    await signInAtIdp(page, at(path))
    await page.locator('#signed-in').waitFor()
    await page.locator('#call').click()
    await page.locator('#calls li[data-status="200"]').waitFor()
    await shot(page, 'signed-in-again')
  })

  test('logging out in one tab logs the other tab out at once; the first ends the IdP session and lands on the home page, and no token reaches page JavaScript (issue 13 item 11)', async () => {
    const context = await newContext()
    const first = await loggedInTab(context, '/?tab=first')
    const second = await context.newPage()
    await second.goto(`${stack.url}/?tab=second`)
    await second.locator('#signed-in').waitFor()
    await shot(second, 'second-tab-signed-in')
    const hops: string[] = []
    const scriptReads: string[] = []
    first.on('request', (request) => {
      if (request.isNavigationRequest() && request.frame() === first.mainFrame())
        hops.push(request.url().split('?')[0]!)
    })
    // Everything page JavaScript could read during the logout: the answers to its fetch calls,
    // as the page's own fetch sees them (reported through a binding that outlives navigations).
    await first.exposeFunction('reportScriptRead', (text: string) => {
      scriptReads.push(text)
    })
    const recordFetches = () => {
      const original = window.fetch
      window.fetch = async (...args: Parameters<typeof fetch>) => {
        const response = await original(...args)
        void response
          .clone()
          .text()
          .then(
            (text) => (window as unknown as { reportScriptRead(t: string): void }).reportScriptRead(text),
            () => {},
          )
        return response
      }
    }
    await first.addInitScript(recordFetches)
    await first.evaluate(recordFetches)

    await Promise.all([first.waitForURL(at('/')), first.locator('#logout').click()])
    await first.locator('#anonymous').waitFor()
    // Through bffgate's session-bound logout URL, then the IdP's end-session endpoint (which,
    // like Auth0, asks for no confirmation).
    assert.deepEqual(
      hops.filter((url) => !url.includes('/auto-confirm')),
      [`${stack.url}/bff/logout`, `${stack.idp.issuer}/session/end`, `${stack.url}/bff/logged-out`, `${stack.url}/`],
    )
    // Issue 13 item 11: no token of any kind reached page JavaScript on the way.
    assert.ok(
      scriptReads.some((body) => body.includes('/bff/logout?sid=')),
      `the page read its logout URL: ${JSON.stringify(scriptReads)}`,
    )
    for (const body of scriptReads)
      assert.doesNotMatch(body, /eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+/, 'a JWT in an answer the page read')
    await shot(first, 'first-tab-logged-out')

    await second.locator('#anonymous').waitFor()
    assert.equal(await second.locator('#notice').textContent(), 'You logged out in another tab.')
    assert.equal(second.url(), `${stack.url}/?tab=second`, 'the other tab updated in place')
    assert.deepEqual(
      await fetchInPage(second, '/api/hello'),
      { status: 401, error: 'login_required' },
      'the cookie is gone for every tab',
    )
    await shot(second, 'second-tab-logged-out')

    // The IdP session ended too: a new login asks for the password.
    await first.locator('#anonymous #login').click()
    await first.waitForURL(atIdp)
    await first.locator('#username').waitFor()
  })

  test('a page on another site cannot use the session: its API calls are refused, its cross-site form POSTs get 403 csrf_failed, and the session survives', async () => {
    const context = await newContext()
    const victim = await loggedInTab(context)
    // Once signed in, the demo opens its live stream and loads its avatar (two API requests):
    // counted before the attack, not during it.
    await victim.waitForFunction(
      () =>
        Number(document.querySelector('#live')?.getAttribute('data-ticks')) >= 1 &&
        (document.querySelector('#avatar') as HTMLImageElement | null)?.complete === true,
    )
    const upstreamCalls = stack.api.requests().length
    const evil = await context.newPage()
    // What reached bffgate from the attacker's page: status and whether the cookie went along.
    const reached: Array<Promise<{ what: string; status: number; cookie: boolean }>> = []
    evil.on('response', (response) => {
      const request = response.request()
      if (!request.url().startsWith(stack.url)) return
      reached.push(
        request.allHeaders().then((headers) => ({
          what: `${request.method()} ${request.url().slice(stack.url.length)}`,
          status: response.status(),
          cookie: (headers.cookie ?? '').includes(SESSION_COOKIE),
        })),
      )
    })
    await evil.goto(attacker.url)
    await shot(evil, 'attacker-page')

    // With the CSRF header the call needs a CORS preflight, which bffgate never grants.
    const withHeader = await evil.evaluate(async (target) => {
      try {
        const res = await fetch(`${target}/api/hello`, { credentials: 'include', headers: { 'x-csrf': '1' } })
        return `answered ${res.status}`
      } catch (err) {
        return `${(err as Error).name}: ${(err as Error).message}`
      }
    }, stack.url)
    assert.equal(withHeader, 'TypeError: Failed to fetch')
    // Without it the request goes out (no-cors), without the SameSite=Strict cookie, and is refused.
    const types = await evil.evaluate(
      async (target) =>
        Promise.all(
          [
            fetch(`${target}/api/hello`, { credentials: 'include', mode: 'no-cors' }),
            fetch(`${target}/api/transfer`, {
              method: 'POST',
              credentials: 'include',
              mode: 'no-cors',
              body: new URLSearchParams({ amount: '1000' }),
            }),
            fetch(`${target}/bff/user`, { credentials: 'include', mode: 'no-cors' }),
          ].map((p) => p.then((res) => res.type)),
        ),
      stack.url,
    )
    assert.deepEqual(types, ['opaque', 'opaque', 'opaque'], 'the page cannot read any answer')

    // Cross-site form POSTs: top-level navigations, which no custom header can accompany.
    const forms: Array<{ status: number; error: string }> = []
    for (const form of ['transfer', 'logout']) {
      await evil.goto(attacker.url)
      const [response] = await Promise.all([
        evil.waitForResponse((res) => res.url().startsWith(stack.url) && res.request().isNavigationRequest()),
        evil.locator(`#submit-${form}`).click(),
      ])
      await evil.waitForURL((url) => url.origin === stack.url)
      forms.push({ status: response.status(), error: ((await response.json()) as { error: string }).error })
      await shot(evil, `cross-site-form-post-${form}`)
    }
    assert.deepEqual(forms, [
      { status: 403, error: 'csrf_failed' },
      { status: 403, error: 'csrf_failed' },
    ])

    const seen = (await Promise.all(reached)).sort((a, b) => a.what.localeCompare(b.what))
    assert.deepEqual(seen, [
      { what: 'GET /api/hello', status: 403, cookie: false },
      { what: 'GET /bff/user', status: 401, cookie: false },
      { what: 'POST /api/transfer', status: 403, cookie: false },
      { what: 'POST /api/transfer', status: 403, cookie: false },
      { what: 'POST /bff/logout', status: 403, cookie: false },
    ])
    assert.equal(stack.api.requests().length, upstreamCalls, 'the API was never called')

    // The victim's session is intact: the forged logout did nothing.
    await victim.locator('#call').click()
    await victim.locator('#calls li[data-status="200"]').waitFor()
    assert.equal((await fetchInPage(victim, '/bff/user', {})).status, 200)
    // And the same POST from the app itself, through @bffgate/client, goes through.
    const own = await victim.evaluate(async () => {
      const url = '/bffgate-client.js'
      const { createBffClient } = (await import(url)) as typeof BffClientModule
      const bff = createBffClient({ channelName: false })
      const res = await bff.fetch('/api/transfer', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"amount":10}',
      })
      return {
        status: res.status,
        echo: (await res.json()) as { method: string; path: string; body: { bytes: number } },
      }
    })
    assert.deepEqual(
      { status: own.status, method: own.echo.method, path: own.echo.path, bytes: own.echo.body.bytes },
      { status: 200, method: 'POST', path: '/transfer', bytes: 13 },
    )
    await shot(victim, 'victim-still-signed-in')
  })

  test('the whole integration of docs/spa.md, served verbatim as /minimal.html, logs in, calls the API and logs out', async () => {
    const doc = readFileSync(new URL('../../docs/spa.md', import.meta.url), 'utf8')
    const section = doc.slice(doc.indexOf('## The whole integration'))
    const snippet = /```js\n([\s\S]*?)```/.exec(section)?.[1]
    assert.ok(snippet !== undefined, 'docs/spa.md has a js block under "## The whole integration"')
    const html = readFileSync(new URL('minimal.html', `file://${DEMO_DIR}`), 'utf8')
    const script = /<script type="module">\n([\s\S]*?)\n\s*<\/script>/.exec(html)?.[1]
    assert.equal(`${script}\n`, snippet, 'dev/demo/public/minimal.html runs exactly the code docs/spa.md shows')
    const lines = snippet.trimEnd().split('\n').length
    assert.ok(lines < 30, `${lines} lines`)

    const context = await newContext()
    const page = await context.newPage()
    await page.goto(`${stack.url}/minimal.html`)
    await page.locator('#login').click()
    await signInAtIdp(page, at('/minimal.html'))
    assert.equal(await page.locator('#name').textContent(), 'Alice Example')
    await page.locator('#call').click()
    await page.locator('#out', { hasText: '"sub": "user-alice"' }).waitFor()
    await shot(page, 'minimal-integration')
    await Promise.all([page.waitForURL(at('/')), page.locator('#logout').click()])
    assert.equal((await fetchInPage(page, '/bff/user', {})).status, 401)
  })
})
