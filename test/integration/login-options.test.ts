/**
 * Issue 17 item 3 over real HTTP with the development IdP: `/bff/login` forwards an allowlisted
 * set of authorization parameters (checked, others dropped and logged by name), and a login
 * that fails sends a navigating browser to a page of the SPA with bffgate's error code, while
 * programmatic callers keep their JSON.
 */
import assert from 'node:assert/strict'
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http'
import { after, before, describe, test } from 'node:test'
import { createBrowser, findForm, type Browser } from '../helpers/browser.ts'
import { startStack, type Stack } from '../helpers/stack.ts'

let stack: Stack
before(async () => {
  stack = await startStack({ env: { BFF_LOGIN_ERROR_PATH: '/welcome?from=login' } })
})
after(async () => {
  await stack?.close()
})

/** What Chromium sends for a top-level navigation. */
const NAVIGATION = {
  'sec-fetch-mode': 'navigate',
  'sec-fetch-dest': 'document',
  'sec-fetch-site': 'same-origin',
  accept: 'text/html,application/xhtml+xml,*/*;q=0.8',
}

/** A raw GET (fetch would replace Sec-Fetch-Mode), with the browser's cookies for `url`. */
async function get(
  url: string,
  headers: Record<string, string>,
  browser?: Browser,
): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  const cookie = browser
    ?.cookies(url)
    .map((c) => `${c.name}=${c.value}`)
    .join('; ')
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { headers: { ...headers, ...(cookie ? { cookie } : {}) } }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        body += chunk
      })
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }))
    })
    req.on('error', reject)
    req.end()
  })
}

const atCallback = (url: URL) => url.origin === stack.url && url.pathname === '/bff/callback'

/** Starts a login with `query` in a fresh cookie-jar browser, up to the IdP's redirect back to the callback (not requested). */
async function untilCallback(query: string, browser = createBrowser()): Promise<{ browser: Browser; callback: URL }> {
  const result = await browser.follow(`${stack.url}/bff/login?${query}`, { until: atCallback })
  assert.ok(
    result.matched,
    `the IdP did not send the browser back: ${result.response.status} ${result.response.text.slice(0, 200)}`,
  )
  return { browser, callback: result.url }
}

describe('issue 17 item 3: login options', () => {
  test("allowlisted parameters reach the IdP's authorization request; others are dropped and logged by name, never by value", async () => {
    const seen = stack.idp.authorizationRequests().length
    const query = new URLSearchParams({
      prompt: 'login',
      login_hint: 'bob@example.com',
      screen_hint: 'signup',
      organization: 'org_W8nQe1dY3s',
      invitation: 'Xa4Uv9kP2q',
      ui_locales: 'de-CH en',
      acr_values: 'http://schemas.openid.net/pape/policies/2007/06/multi-factor',
      returnTo: '/orders/42',
      secret_thing: 's3cr3t-value-7731',
      scope: 'openid admin',
      redirect_uri: 'https://evil.example/cb',
    })
    const res = await get(`${stack.url}/bff/login?${query}`, NAVIGATION)
    assert.equal(res.status, 302)
    const location = new URL(String(res.headers.location))
    assert.equal(location.origin, stack.idp.issuer)
    await get(location.href, {})
    const received = stack.idp.authorizationRequests().slice(seen)
    assert.equal(received.length, 1)
    const at = received[0]!
    for (const name of [
      'prompt',
      'login_hint',
      'screen_hint',
      'organization',
      'invitation',
      'ui_locales',
      'acr_values',
    ] as const) {
      assert.equal(at.get(name), query.get(name), name)
    }
    assert.equal(at.get('secret_thing'), null)
    assert.equal(at.get('scope'), 'openid profile email online_access', 'the browser cannot choose the scopes')
    assert.equal(at.get('redirect_uri'), `${stack.url}/bff/callback`)
    assert.equal(at.get('returnTo'), null)
    const dropped = stack.logs.lines.find(
      (line) => line.event === 'login.parameters_dropped' && (line.names as string[]).includes('secret_thing'),
    )
    assert.deepEqual(dropped?.names, ['secret_thing', 'scope', 'redirect_uri'])
    assert.ok(!stack.logs.raw.some((line) => line.includes('s3cr3t-value-7731')), 'a dropped value was logged')
  })

  test('the development IdP honours login_hint (the form is pre-filled) and prompt=login (no silent SSO)', async () => {
    const hinted = await createBrowser().follow(
      `${stack.url}/bff/login?login_hint=${encodeURIComponent('alice@example.com')}`,
    )
    assert.ok(findForm(hinted.response, 'username'), "the IdP's login form")
    assert.match(
      hinted.response.text,
      /<input\b[^>]*name="username"[^>]*value="alice@example\.com"|<input\b[^>]*value="alice@example\.com"[^>]*name="username"/,
    )
    // With an IdP session, a plain login is silent (SSO); prompt=login shows the form again.
    const { browser } = await stack.login()
    assert.ok((await browser.follow(`${stack.url}/bff/login`, { until: atCallback })).matched, 'SSO without prompt')
    const forced = await browser.follow(`${stack.url}/bff/login?prompt=login`, { until: atCallback })
    assert.equal(forced.matched, false)
    assert.ok(findForm(forced.response, 'username'), 'prompt=login shows the login form')
  })

  test('a malformed, empty or repeated allowed value is a 400 JSON naming the parameter (the error page for a navigation); the IdP is not asked', async () => {
    const seen = stack.idp.authorizationRequests().length
    const bad = [
      'prompt=none%20login',
      'prompt=bogus',
      'prompt=login%20login',
      'prompt=',
      'prompt=login&prompt=none',
      `login_hint=${'a'.repeat(257)}`,
      'login_hint=bob%0a%0dx',
      'login_hint=%E2%80%AEevil',
      'organization=%3Cscript%3E',
      'ui_locales=en_US',
      'screen_hint=sign%20up',
      'invitation=a%2Fb',
      'acr_values=%22x%22%20y%0a',
      // Ten values of 60 characters: each well-formed, together more than the login state can carry.
      `acr_values=${Array.from({ length: 10 }, (_, i) => `urn:acr:${i}:${'x'.repeat(50)}`).join('%20')}`,
    ]
    for (const query of bad) {
      const name = query.split('=')[0]!
      const json = await get(`${stack.url}/bff/login?${query}`, {
        accept: 'application/json',
        'sec-fetch-mode': 'cors',
      })
      assert.equal(json.status, 400, query)
      const body = JSON.parse(json.body) as { error: string; message: string }
      assert.equal(body.error, 'invalid_login_parameter', query)
      assert.match(body.message, new RegExp(`"${name}"`))
      assert.ok(!body.message.includes('script') && !body.message.includes('aaaa'), 'the value is not echoed')
      const page = await get(`${stack.url}/bff/login?${query}`, NAVIGATION)
      assert.equal(page.status, 303, query)
      assert.equal(page.headers.location, '/welcome?from=login&login_error=invalid_login_parameter')
    }
    assert.equal(stack.idp.authorizationRequests().length, seen)
    assert.equal(
      (await get(`${stack.url}/bff/login?prompt=login%20consent&ui_locales=fr-CA`, NAVIGATION)).status,
      302,
      'valid values pass',
    )
  })

  test('login options and returnTo are sized together, for the largest form the login state takes (the re-authentication retry): refused at /bff/login, never after the IdP', async () => {
    // Each part is acceptable alone; together they do not fit the login cookie.
    const hint = encodeURIComponent('é'.repeat(250))
    const returnTo = encodeURIComponent(`/${'r'.repeat(1100)}`)
    assert.equal(
      (await get(`${stack.url}/bff/login?login_hint=${hint}`, { accept: 'application/json', 'sec-fetch-mode': 'cors' }))
        .status,
      302,
    )
    assert.equal(
      (
        await get(`${stack.url}/bff/login?returnTo=${returnTo}`, {
          accept: 'application/json',
          'sec-fetch-mode': 'cors',
        })
      ).status,
      302,
    )
    const both = await get(`${stack.url}/bff/login?login_hint=${hint}&returnTo=${returnTo}`, {
      accept: 'application/json',
      'sec-fetch-mode': 'cors',
    })
    assert.equal(both.status, 400)
    const body = JSON.parse(both.body) as { error: string; message: string }
    assert.equal(body.error, 'return_to_too_long')
    assert.match(body.message, /login options/)
    assert.equal(both.headers.location, undefined, 'not sent to the IdP')
    assert.equal(both.headers['set-cookie'], undefined, 'no login state')
  })

  test("a login failing at the callback lands a navigating browser on BFF_LOGIN_ERROR_PATH with bffgate's code; fetch callers keep the JSON", async () => {
    // prompt=none without an IdP session: the IdP answers login_required, with free text of its own.
    const silent = await untilCallback('prompt=none')
    assert.equal(silent.callback.searchParams.get('error'), 'login_required')
    const page = await get(silent.callback.href, NAVIGATION, silent.browser)
    assert.equal(page.status, 303)
    assert.equal(
      page.headers.location,
      '/welcome?from=login&login_error=login_failed&login_error_reason=login_required',
    )
    assert.equal(page.headers['cache-control'], 'no-store')
    assert.ok(
      !(page.headers['set-cookie'] ?? []).some((c) => c.startsWith('__Host-Http-bff=')),
      'no session was created',
    )

    const again = await untilCallback('prompt=none')
    const json = await get(again.callback.href, { accept: 'application/json', 'sec-fetch-mode': 'cors' }, again.browser)
    assert.equal(json.status, 400)
    assert.equal((JSON.parse(json.body) as { error: string }).error, 'login_failed')

    // An IdP error whose text an attacker chose: only bffgate's code, and a registered OAuth code, get through.
    for (const [error, reason] of [
      ['access_denied', 'access_denied'],
      ['<script>alert(1)</script>', undefined],
      ['login_required"><img src=x>', undefined],
    ] as const) {
      const browser = createBrowser()
      const started = await browser.follow(`${stack.url}/bff/login?returnTo=/orders`, {
        until: (url) => url.origin === stack.idp.issuer,
      })
      const forged = new URL(`${stack.url}/bff/callback`)
      forged.search = new URLSearchParams({
        error,
        error_description: '<img src=x onerror=alert(1)> call +1-555',
        state: started.url.searchParams.get('state')!,
        iss: stack.idp.issuer,
      }).toString()
      const landed = await get(forged.href, NAVIGATION, browser)
      assert.equal(landed.status, 303, error)
      assert.equal(
        landed.headers.location,
        `/welcome?from=login&login_error=login_failed${reason !== undefined ? `&login_error_reason=${reason}` : ''}`,
      )
    }

    // A state this browser never started (a stale tab, a replayed link).
    const stale = await get(`${stack.url}/bff/callback?code=x&state=never-issued`, NAVIGATION)
    assert.equal(stale.status, 303)
    assert.equal(stale.headers.location, '/welcome?from=login&login_error=login_state_invalid')
    const staleJson = await get(`${stack.url}/bff/callback?code=x&state=never-issued`, {})
    assert.equal(staleJson.status, 400)
    assert.equal((JSON.parse(staleJson.body) as { error: string }).error, 'login_state_invalid')
  })
})
