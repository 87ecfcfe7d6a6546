import assert from 'node:assert/strict'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer, request as httpRequest, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { decodeJwt, type JWK } from 'jose'
import { WebSocket, WebSocketServer } from 'ws'
import { generateSigningKeys, startDevIdp, type DevIdp } from '../../dev/idp/index.ts'
import { startDevTransmitter, type DevTransmitter } from '../../dev/ssf/transmitter.ts'
import { buildApp } from '../../src/app.ts'
import { loadConfig } from '../../src/config/load.ts'
import { loggerOptions } from '../../src/logger.ts'
import { createBrowser, loginAtDevIdp, type Browser } from '../helpers/browser.ts'
import { logoutTokenClaims, signLogoutToken } from '../helpers/logout-token.ts'
import { openEventStream } from '../helpers/event-stream.ts'
import { freePort, startRedisServer, type RedisServerProcess } from '../helpers/redis.ts'
import { SESSION_SECRET, USER } from '../helpers/stack.ts'

/*
 * Issue 19 part 1: two frontends on one gateway, over real HTTP with the development IdP (two
 * clients), real Redis and two real upstreams. `shop` is selected by host (localhost), `admin`
 * by path prefix (/admin on 127.0.0.1). Sessions, routes and logouts stay apart.
 */

const CSRF = { 'x-csrf': '1' }
const ACCESS_TOKEN_TTL_SECONDS = 4
const SHOP = { id: 'bffgate-shop', secret: 'shop-client-secret-0123456789-abcdef', cookie: '__Host-Http-bff-shop' }
const ADMIN = { id: 'bffgate-admin', secret: 'admin-client-secret-0123456789-abcdef', cookie: '__Secure-bff-admin' }

interface Upstream {
  readonly url: string
  readonly server: Server
  readonly seen: Array<{ path: string; authorization: boolean; cookie: boolean; clientId?: unknown; jti?: unknown }>
}

/** A real upstream that answers with its own name and records what reached it. */
async function startUpstream(name: string): Promise<Upstream> {
  const seen: Upstream['seen'] = []
  const server = createServer((request, response) => {
    const bearer = /^Bearer (.+)$/.exec(request.headers.authorization ?? '')?.[1]
    const claims = bearer === undefined ? {} : decodeJwt(bearer)
    seen.push({
      path: request.url ?? '',
      authorization: bearer !== undefined,
      cookie: request.headers.cookie !== undefined,
      clientId: claims.client_id,
      jti: claims.jti,
    })
    response.setHeader('content-type', 'application/json')
    response.end(JSON.stringify({ upstream: name, path: request.url }))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server, seen }
}

interface SocketUpstream {
  readonly url: string
  readonly server: Server
  readonly handshakes: Array<{ path: string; authorization: boolean; cookie: boolean; clientId?: unknown }>
}

/** A real WebSocket upstream: echoes each message with the path and the token's client it was opened with. */
async function startSocketUpstream(): Promise<SocketUpstream> {
  const handshakes: SocketUpstream['handshakes'] = []
  const server = createServer((_request, response) => {
    response.statusCode = 426
    response.end()
  })
  const sockets = new WebSocketServer({ noServer: true })
  server.on('upgrade', (request, socket, head) => {
    const bearer = /^Bearer (.+)$/.exec(request.headers.authorization ?? '')?.[1]
    const handshake = {
      path: request.url ?? '',
      authorization: bearer !== undefined,
      cookie: request.headers.cookie !== undefined,
      clientId: bearer === undefined ? undefined : decodeJwt(bearer).client_id,
    }
    handshakes.push(handshake)
    sockets.handleUpgrade(request, socket, head, (ws) => {
      ws.on('message', (data) => ws.send(JSON.stringify({ ...handshake, message: String(data) })))
    })
  })
  server.on('close', () => {
    for (const client of sockets.clients) client.terminate()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server, handshakes }
}

let socketApi: SocketUpstream
let redis: RedisServerProcess
let keys: JWK[]
let idp: DevIdp
let shopApi: Upstream
let adminApi: Upstream
/** An upstream both frontends have a route to (no token); counts the connections made to it. */
let sharedApi: Upstream & { connections: number }
let app: FastifyInstance
let dir: string
let transmitter: DevTransmitter
let shopUrl: string
let adminUrl: string
const logs: Array<Record<string, unknown>> = []

before(async () => {
  redis = await startRedisServer()
  keys = await generateSigningKeys()
  const port = await freePort()
  shopUrl = `http://localhost:${port}`
  adminUrl = `http://127.0.0.1:${port}/admin`
  idp = await startDevIdp({
    keys,
    // Short-lived access tokens: the refresh test waits one out.
    accessTokenTtlSeconds: ACCESS_TOKEN_TTL_SECONDS,
    log: () => {},
    clients: [
      {
        client_id: SHOP.id,
        client_secret: SHOP.secret,
        redirect_uris: [`${shopUrl}/bff/callback`],
        post_logout_redirect_uris: [`${shopUrl}/bff/logged-out`],
        backchannel_logout_uri: `${shopUrl}/bff/backchannel-logout`,
      },
      {
        client_id: ADMIN.id,
        client_secret: ADMIN.secret,
        redirect_uris: [`${adminUrl}/bff/callback`],
        post_logout_redirect_uris: [`${adminUrl}/bff/logged-out`],
        backchannel_logout_uri: `${adminUrl}/bff/backchannel-logout`,
      },
    ],
  })
  transmitter = await startDevTransmitter({ audience: 'https://bffgate.test/ssf' })
  transmitter.userIssuer = idp.issuer
  shopApi = await startUpstream('shop-api')
  adminApi = await startUpstream('admin-api')
  sharedApi = Object.assign(await startUpstream('shared-api'), { connections: 0 })
  sharedApi.server.on('connection', () => sharedApi.connections++)
  socketApi = await startSocketUpstream()
  dir = await mkdtemp(join(tmpdir(), 'bff-frontends-'))
  await writeFile(join(dir, 'shop-secret'), SHOP.secret)
  await writeFile(join(dir, 'admin-secret'), ADMIN.secret)
  for (const name of ['shop', 'admin']) {
    await mkdir(join(dir, `${name}-static`))
    await writeFile(
      join(dir, `${name}-static`, 'index.html'),
      `<!doctype html><title>${name}</title><h1>the ${name} SPA</h1>`,
    )
    await writeFile(join(dir, `${name}-static`, 'app.js'), `console.log('${name}')`)
  }
  await writeFile(
    join(dir, 'bff.json'),
    JSON.stringify({
      frontends: [
        {
          name: 'shop',
          publicUrl: shopUrl,
          clientId: SHOP.id,
          clientSecretFile: join(dir, 'shop-secret'),
          routes: [
            { path: '/api', upstream: shopApi.url },
            { path: '/shared', upstream: sharedApi.url, token: 'none' },
          ],
          staticDir: join(dir, 'shop-static'),
        },
        {
          name: 'admin',
          publicUrl: `http://127.0.0.1:${port}`,
          pathPrefix: '/admin',
          clientId: ADMIN.id,
          clientSecretFile: join(dir, 'admin-secret'),
          routes: [
            { path: '/api', upstream: adminApi.url },
            { path: '/live', upstream: socketApi.url, websocket: true },
            { path: '/shared', upstream: sharedApi.url, token: 'none' },
          ],
          staticDir: join(dir, 'admin-static'),
          contentSecurityPolicy:
            "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'",
        },
      ],
    }),
  )
  const config = loadConfig(
    {
      BFF_CONFIG: join(dir, 'bff.json'),
      BFF_OIDC_ISSUER: idp.issuer,
      BFF_OIDC_SCOPES: 'openid profile email online_access',
      BFF_ALLOW_INSECURE_HTTP: 'true',
      BFF_SESSION_SECRET: SESSION_SECRET,
      BFF_SESSION_STORE: 'redis',
      BFF_REDIS_URL: redis.url,
      BFF_REDIS_KEY_PREFIX: `frontends:${process.pid}:`,
      BFF_MAX_EVENT_LOOP_DELAY_MS: '0',
      BFF_LOG_LEVEL: 'info',
      BFF_GLOBAL_REVOCATION_ISSUER: transmitter.issuer,
      // Low, so the test of the process-wide bound can reach it; no other test here opens more.
      BFF_SESSION_EVENTS_MAX_STREAMS: '2',
    },
    { readFile: (path) => readFileSync(path, 'utf8') },
  )
  app = await buildApp(config, {
    logger: {
      ...(loggerOptions(config.logLevel) as object),
      stream: {
        write: (line: string) => {
          try {
            logs.push(JSON.parse(line) as Record<string, unknown>)
          } catch {}
        },
      },
    },
  })
  await app.listen({ port, host: '127.0.0.1' })
})

after(async () => {
  await app?.close()
  await idp?.close()
  await transmitter?.close()
  for (const upstream of [shopApi, adminApi, socketApi, sharedApi]) upstream?.server.close()
  await redis?.stop()
  if (dir !== undefined) await rm(dir, { recursive: true, force: true })
})

/** Logs a browser in at one frontend through the real flow; the same browser shares the IdP session. */
async function logIn(base: string, browser: Browser = createBrowser()): Promise<Browser> {
  const result = await loginAtDevIdp(browser, `${base}/bff/login`, USER, {
    until: (next) => next.href.startsWith(base) && !next.pathname.includes('/bff/'),
  })
  assert.ok(result.matched, `login at ${base} ended at ${result.url.href}`)
  return browser
}

/** The session cookie a browser holds for a frontend, as a `name=value` pair. */
function sessionCookie(browser: Browser, base: string, name: string): { name: string; value: string } {
  const cookie = browser.cookie(`${base}/bff/user`, name)
  assert.ok(
    cookie !== undefined,
    `${name} set for ${base}: ${browser
      .allCookies()
      .map((c) => c.name)
      .join(', ')}`,
  )
  return { name, value: cookie.value }
}

async function status(
  url: string,
  cookie: string,
  init: { method?: string; headers?: Record<string, string> } = {},
): Promise<number> {
  const res = await fetch(url, { method: init.method ?? 'GET', headers: { ...CSRF, cookie, ...init.headers } })
  await res.arrayBuffer()
  return res.status
}

const logoutToken = (clientId: string, claims: Record<string, unknown>) =>
  signLogoutToken(keys[0]!, logoutTokenClaims(idp.issuer, clientId, claims))

/** The `sid` of the last ID token the IdP issued to a client. */
function lastSidOf(clientId: string): string {
  const claims = idp
    .issuedTokens()
    .filter((t) => t.split('.').length === 3)
    .map((t) => JSON.parse(Buffer.from(t.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>)
  const sid = claims.findLast((c) => c.aud === clientId && typeof c.sid === 'string')?.sid
  assert.equal(typeof sid, 'string', `an ID token with a sid for ${clientId}`)
  return sid as string
}

describe('two frontends on one gateway (issue 19)', () => {
  test('each frontend logs in with its own client and cookie; its /bff/user answers for its own session', async () => {
    const browser = await logIn(shopUrl)
    await logIn(adminUrl, browser)
    const shop = sessionCookie(browser, shopUrl, SHOP.cookie)
    const admin = sessionCookie(browser, adminUrl, ADMIN.cookie)
    const adminCookie = browser.cookie(`${adminUrl}/`, ADMIN.cookie)!
    assert.equal(adminCookie.path, '/admin', "the prefixed frontend's cookie is scoped to its prefix")
    assert.equal(
      browser.cookie(`http://127.0.0.1:${new URL(shopUrl).port}/`, ADMIN.cookie),
      undefined,
      'and is not sent outside it',
    )
    const shopUser = (await (
      await fetch(`${shopUrl}/bff/user`, { headers: { cookie: `${shop.name}=${shop.value}` } })
    ).json()) as { claims: { sub: string }; logoutUrl: string }
    const adminUser = (await (
      await fetch(`${adminUrl}/bff/user`, { headers: { cookie: `${admin.name}=${admin.value}` } })
    ).json()) as { claims: { sub: string }; logoutUrl: string }
    assert.equal(shopUser.claims.sub, adminUser.claims.sub, 'the same user at both')
    assert.match(shopUser.logoutUrl, /^\/bff\/logout\?sid=/)
    assert.match(adminUser.logoutUrl, /^\/admin\/bff\/logout\?sid=/)
    // Each login used its own client: the IdP issued an ID token to each.
    lastSidOf(SHOP.id)
    lastSidOf(ADMIN.id)
  })

  test("a cookie of one frontend never works on the other, even renamed to the other's cookie name", async () => {
    const browser = await logIn(shopUrl)
    await logIn(adminUrl, browser)
    const shop = sessionCookie(browser, shopUrl, SHOP.cookie)
    const admin = sessionCookie(browser, adminUrl, ADMIN.cookie)
    // Under its own name, each works at home.
    assert.equal(await status(`${shopUrl}/bff/user`, `${SHOP.cookie}=${shop.value}`), 200)
    assert.equal(await status(`${adminUrl}/bff/user`, `${ADMIN.cookie}=${admin.value}`), 200)
    // Sent as is to the other frontend: that frontend reads only its own cookie name.
    assert.equal(await status(`${adminUrl}/bff/user`, `${SHOP.cookie}=${shop.value}`), 401)
    assert.equal(await status(`${shopUrl}/bff/user`, `${ADMIN.cookie}=${admin.value}`), 401)
    // Renamed to the other's cookie name: the session record names its frontend.
    assert.equal(await status(`${adminUrl}/bff/user`, `${ADMIN.cookie}=${shop.value}`), 401)
    assert.equal(await status(`${shopUrl}/bff/user`, `${SHOP.cookie}=${admin.value}`), 401)
    assert.equal(await status(`${adminUrl}/api/orders`, `${ADMIN.cookie}=${shop.value}`), 401)
    assert.equal(await status(`${shopUrl}/api/orders`, `${SHOP.cookie}=${admin.value}`), 401)
    // Refused, not ended: each session still works at home.
    assert.equal(await status(`${shopUrl}/bff/user`, `${SHOP.cookie}=${shop.value}`), 200)
    assert.equal(await status(`${adminUrl}/bff/user`, `${ADMIN.cookie}=${admin.value}`), 200)
  })

  test("each frontend's routes reach only its upstream, with its own token", async () => {
    const browser = await logIn(shopUrl)
    await logIn(adminUrl, browser)
    const shop = `${SHOP.cookie}=${sessionCookie(browser, shopUrl, SHOP.cookie).value}`
    const admin = `${ADMIN.cookie}=${sessionCookie(browser, adminUrl, ADMIN.cookie).value}`
    const shopAnswer = (await (
      await fetch(`${shopUrl}/api/orders`, { headers: { ...CSRF, cookie: shop } })
    ).json()) as { upstream: string; path: string }
    const adminAnswer = (await (
      await fetch(`${adminUrl}/api/orders`, { headers: { ...CSRF, cookie: admin } })
    ).json()) as { upstream: string; path: string }
    assert.deepEqual(shopAnswer, { upstream: 'shop-api', path: '/orders' })
    assert.deepEqual(adminAnswer, { upstream: 'admin-api', path: '/orders' })
    assert.ok(shopApi.seen.at(-1)!.authorization && !shopApi.seen.at(-1)!.cookie)
    assert.ok(adminApi.seen.at(-1)!.authorization && !adminApi.seen.at(-1)!.cookie)
    // The admin route is not on the shop's host, nor the shop's API under the admin prefix's host root.
    const calls = { shop: shopApi.seen.length, admin: adminApi.seen.length }
    assert.equal(await status(`${shopUrl}/admin/api/orders`, shop), 404)
    assert.equal(await status(`http://127.0.0.1:${new URL(shopUrl).port}/api/orders`, admin), 404)
    assert.deepEqual({ shop: shopApi.seen.length, admin: adminApi.seen.length }, calls, 'no upstream was called')
  })

  test("the frontends' routes to one upstream share the process's keep-alive pool: one connection for requests through either", async () => {
    const connectionsBefore = sharedApi.connections
    for (const base of [shopUrl, adminUrl, shopUrl, adminUrl, adminUrl, shopUrl]) {
      const response = await fetch(`${base}/shared/ping`, { headers: CSRF })
      assert.equal(response.status, 200)
      assert.deepEqual(await response.json(), { upstream: 'shared-api', path: '/ping' })
    }
    // A hop per frontend (the way before) opened a connection for each frontend.
    assert.equal(sharedApi.connections - connectionsBefore, 1)
  })

  test("each session is refreshed by its own frontend's client", async () => {
    const browser = await logIn(shopUrl)
    await logIn(adminUrl, browser)
    const shop = `${SHOP.cookie}=${sessionCookie(browser, shopUrl, SHOP.cookie).value}`
    const admin = `${ADMIN.cookie}=${sessionCookie(browser, adminUrl, ADMIN.cookie).value}`
    assert.equal(await status(`${adminUrl}/api/before`, admin), 200)
    assert.equal(await status(`${shopUrl}/api/before`, shop), 200)
    const first = { admin: adminApi.seen.at(-1)!, shop: shopApi.seen.at(-1)! }
    const refreshes = idp.stats().tokenRequests.refresh_token ?? 0
    await new Promise((resolve) => setTimeout(resolve, ACCESS_TOKEN_TTL_SECONDS * 1000 + 500))
    // The refresh token of each session is exchanged with the client it was issued to (the IdP
    // refuses it from another client: the session would end with 401 instead).
    assert.equal(await status(`${adminUrl}/api/after`, admin), 200)
    assert.equal(await status(`${shopUrl}/api/after`, shop), 200)
    assert.ok((idp.stats().tokenRequests.refresh_token ?? 0) >= refreshes + 2, JSON.stringify(idp.stats()))
    const later = { admin: adminApi.seen.at(-1)!, shop: shopApi.seen.at(-1)! }
    assert.notEqual(later.admin.jti, first.admin.jti, 'a new access token')
    assert.notEqual(later.shop.jti, first.shop.jti, 'a new access token')
    assert.deepEqual([later.admin.clientId, later.shop.clientId], [ADMIN.id, SHOP.id])
  })

  test("logging out of one frontend leaves the other's session of the same user and browser", async () => {
    const browser = await logIn(shopUrl)
    await logIn(adminUrl, browser)
    const shop = `${SHOP.cookie}=${sessionCookie(browser, shopUrl, SHOP.cookie).value}`
    const admin = `${ADMIN.cookie}=${sessionCookie(browser, adminUrl, ADMIN.cookie).value}`
    const res = await fetch(`${adminUrl}/bff/logout`, { method: 'POST', headers: { ...CSRF, cookie: admin } })
    assert.equal(res.status, 200)
    assert.match(res.headers.get('set-cookie') ?? '', /__Secure-bff-admin=;.*Path=\/admin/)
    assert.equal(await status(`${adminUrl}/bff/user`, admin), 401)
    assert.equal(await status(`${shopUrl}/bff/user`, shop), 200)
  })

  test("a back-channel logout token for one frontend's client ends that frontend's sessions only", async () => {
    const browser = await logIn(shopUrl)
    await logIn(adminUrl, browser)
    const shop = `${SHOP.cookie}=${sessionCookie(browser, shopUrl, SHOP.cookie).value}`
    const admin = `${ADMIN.cookie}=${sessionCookie(browser, adminUrl, ADMIN.cookie).value}`
    const shopSid = lastSidOf(SHOP.id)
    const adminSid = lastSidOf(ADMIN.id)
    const post = async (base: string, token: string) =>
      (
        await fetch(`${base}/bff/backchannel-logout`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ logout_token: token }).toString(),
        })
      ).status
    // Addressed to no frontend's client: refused, nothing ends.
    assert.equal(await post(shopUrl, await logoutToken('someone-else', { sid: shopSid })), 400)
    // An IdP that shares one sid across its clients (Auth0 does; oidc-provider gives each client
    // its own) would send the shop this sid for the same IdP session: only the shop's sessions end.
    assert.equal(await post(shopUrl, await logoutToken(SHOP.id, { sid: adminSid })), 200)
    assert.equal(await status(`${adminUrl}/bff/user`, admin), 200)
    // The audience decides, not the URL it is posted to (an IdP may call the gateway by any name).
    assert.equal(await post(adminUrl, await logoutToken(SHOP.id, { sid: shopSid })), 200)
    assert.equal(await status(`${shopUrl}/bff/user`, shop), 401)
    assert.equal(await status(`${adminUrl}/bff/user`, admin), 200)
    // By subject too: the admin client's token ends the admin's sessions of that user.
    const sub = (
      (await (await fetch(`${adminUrl}/bff/user`, { headers: { cookie: admin } })).json()) as {
        claims: { sub: string }
      }
    ).claims.sub
    const other = await logIn(shopUrl)
    const shopAgain = `${SHOP.cookie}=${sessionCookie(other, shopUrl, SHOP.cookie).value}`
    assert.equal(await post(`http://127.0.0.1:${new URL(shopUrl).port}`, await logoutToken(ADMIN.id, { sub })), 200)
    assert.equal(await status(`${adminUrl}/bff/user`, admin), 401)
    assert.equal(await status(`${shopUrl}/bff/user`, shopAgain), 200)
  })

  test("Global Token Revocation ends the user's sessions on every frontend of the issuer", async () => {
    const browser = await logIn(shopUrl)
    await logIn(adminUrl, browser)
    const shop = `${SHOP.cookie}=${sessionCookie(browser, shopUrl, SHOP.cookie).value}`
    const admin = `${ADMIN.cookie}=${sessionCookie(browser, adminUrl, ADMIN.cookie).value}`
    const sub = (
      (await (await fetch(`${adminUrl}/bff/user`, { headers: { cookie: admin } })).json()) as {
        claims: { sub: string }
      }
    ).claims.sub
    // The endpoint is deployment-wide; its default audience is its URL on the first frontend's origin.
    assert.equal(
      (
        await transmitter.revokeGlobally(`${shopUrl}/bff/global-token-revocation`, {
          format: 'iss_sub',
          iss: idp.issuer,
          sub,
        })
      ).status,
      204,
    )
    assert.equal(await status(`${shopUrl}/bff/user`, shop), 401)
    assert.equal(await status(`${adminUrl}/bff/user`, admin), 401)
  })

  test("a login started at one frontend is not finished by the other's callback", async () => {
    const browser = createBrowser()
    const started = await browser.get(`${shopUrl}/bff/login`)
    assert.equal(started.status, 302)
    const state = new URL(started.headers.get('location')!).searchParams.get('state')!
    const loginCookie = browser.cookies(`${shopUrl}/bff/callback`).find((c) => c.name.startsWith('__Host-bff-login-'))!
    // The same login cookie (as a browser would send it on one host) at the admin's callback.
    const res = await fetch(`${adminUrl}/bff/callback?state=${encodeURIComponent(state)}&code=some-code`, {
      headers: { cookie: `${loginCookie.name}=${loginCookie.value}` },
    })
    assert.equal(res.status, 400)
    assert.equal(((await res.json()) as { error: string }).error, 'login_state_invalid')
  })

  test('each frontend serves its own static folder, under its prefix, with its own CSP and deep links', async () => {
    const navigate = { 'sec-fetch-mode': 'navigate', accept: 'text/html' }
    // node:http, not fetch: fetch sends its own Sec-Fetch-Mode (cors), a browser's navigation does not.
    const page = (url: string, headers: Record<string, string> = {}) =>
      new Promise<{ status: number; text: string; csp: string }>((resolve, reject) => {
        httpRequest(url, { headers }, (res) => {
          let text = ''
          res.setEncoding('utf8')
          res.on('data', (chunk: string) => {
            text += chunk
          })
          res.on('end', () =>
            resolve({ status: res.statusCode!, text, csp: String(res.headers['content-security-policy'] ?? '') }),
          )
        })
          .on('error', reject)
          .end()
      })
    const shopHome = await page(`${shopUrl}/`)
    const adminHome = await page(`${adminUrl}/`)
    assert.equal(shopHome.status, 200)
    assert.match(shopHome.text, /the shop SPA/)
    assert.equal(adminHome.status, 200)
    assert.match(adminHome.text, /the admin SPA/)
    assert.equal(
      adminHome.csp,
      "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'",
    )
    assert.notEqual(shopHome.csp, adminHome.csp)
    assert.equal((await page(`${adminUrl}/app.js`)).text, "console.log('admin')")
    assert.equal((await page(`${shopUrl}/app.js`)).text, "console.log('shop')")
    // A deep link of the admin SPA is its index.html; its API and bffgate's endpoints are not.
    assert.match((await page(`${adminUrl}/orders/7`, navigate)).text, /the admin SPA/)
    assert.equal((await page(`${adminUrl}/bff/nothing`, navigate)).status, 404)
  })

  test('a request no frontend answers is a 404 JSON frontend_unknown; probes answer every host', async () => {
    const port = new URL(shopUrl).port
    for (const [url, host] of [
      [`http://127.0.0.1:${port}/bff/user`, 'unknown.example'],
      [`http://127.0.0.1:${port}/bff/login`, undefined],
      [`http://127.0.0.1:${port}/`, undefined],
      [`${shopUrl}/admin/..%2fbff/user`, undefined],
    ] as const) {
      const res = await fetch(url, { headers: host === undefined ? {} : { host } })
      assert.equal(res.status, 404, url)
      assert.match(res.headers.get('content-type') ?? '', /application\/json/)
      assert.deepEqual(await res.json(), {
        error: 'frontend_unknown',
        message: 'No frontend of this gateway answers this host and path',
      })
    }
    // HEAD twins of the frontends' routes are theirs too.
    assert.equal((await fetch(`http://127.0.0.1:${port}/bff/user`, { method: 'HEAD' })).status, 404)
    // A path a frontend does not have is a plain not_found.
    const missing = await fetch(`${shopUrl}/bff/nothing`)
    assert.equal(missing.status, 404)
    assert.equal(((await missing.json()) as { error: string }).error, 'not_found')
    assert.equal(
      (await fetch(`http://127.0.0.1:${port}/healthz`, { headers: { host: 'unknown.example' } })).status,
      200,
    )
  })

  test("request metrics and access lines carry the frontend's name", async () => {
    const browser = await logIn(shopUrl)
    await logIn(adminUrl, browser)
    await status(`${shopUrl}/api/x`, `${SHOP.cookie}=${sessionCookie(browser, shopUrl, SHOP.cookie).value}`)
    await status(`${adminUrl}/api/x`, `${ADMIN.cookie}=${sessionCookie(browser, adminUrl, ADMIN.cookie).value}`)
    await status(`${shopUrl}/bff/user`, '', { headers: { host: 'unknown.example' } })
    const text = await (await app.admin.inject({ url: '/metrics' })).body
    assert.match(text, /bff_http_requests_total\{frontend="shop",route="\/api",method="GET",status_class="2xx"\} [1-9]/)
    assert.match(
      text,
      /bff_http_requests_total\{frontend="admin",route="\/admin\/api",method="GET",status_class="2xx"\} [1-9]/,
    )
    assert.match(
      text,
      /bff_http_requests_total\{frontend="none",route="unmatched",method="GET",status_class="4xx"\} [1-9]/,
    )
    assert.match(
      text,
      /bff_http_request_duration_seconds_count\{frontend="admin",route="\/admin\/bff\/callback",status_class="3xx"\} [1-9]/,
    )
    const labels = new Set([...text.matchAll(/bff_http_requests_total\{frontend="([^"]*)"/g)].map((m) => m[1]))
    assert.deepEqual([...labels].sort(), ['admin', 'none', 'shop'], 'bounded by the configured frontends')
    const access = logs.filter((l) => l.msg === 'request completed')
    assert.ok(access.some((l) => l.frontend === 'admin' && l.route === '/admin/api'))
    assert.ok(access.some((l) => l.frontend === 'shop' && l.route === '/api'))
  })
})

describe('a frontend under a path prefix: its session-events stream and its WebSockets (issue 19)', () => {
  const sameOrigin = { 'sec-fetch-site': 'same-origin', 'sec-fetch-mode': 'cors' }
  const adminOrigin = () => new URL(adminUrl).origin

  /** Opens a WebSocket through the gateway; rejects with the handshake's status when refused. */
  function connect(url: string, headers: Record<string, string>): Promise<WebSocket> {
    const socket = new WebSocket(url.replace(/^http/, 'ws'), { headers })
    return new Promise((resolve, reject) => {
      socket.once('open', () => resolve(socket))
      socket.once('unexpected-response', (_req, res) =>
        reject(Object.assign(new Error(`handshake refused: ${res.statusCode}`), { status: res.statusCode })),
      )
      socket.once('error', reject)
    })
  }

  test("/admin/bff/session-events streams the admin session's end; the shop's cookie, as is or renamed, is refused there, and the shop's stream does not hear the admin logout", async (t) => {
    const browser = await logIn(shopUrl)
    await logIn(adminUrl, browser)
    const shop = sessionCookie(browser, shopUrl, SHOP.cookie).value
    const admin = sessionCookie(browser, adminUrl, ADMIN.cookie).value

    for (const cookie of [`${SHOP.cookie}=${shop}`, `${ADMIN.cookie}=${shop}`]) {
      const refused = await openEventStream(`${adminUrl}/bff/session-events`, { cookie, ...sameOrigin })
      assert.equal(refused.status, 401, `${cookie.split('=')[0]} with the shop's session at /admin`)
      assert.equal(refused.events.length, 0)
    }
    const renamedAdmin = await openEventStream(`${shopUrl}/bff/session-events`, {
      cookie: `${SHOP.cookie}=${admin}`,
      ...sameOrigin,
    })
    assert.equal(renamedAdmin.status, 401, "the admin session renamed to the shop's cookie at the shop")

    const adminStream = await openEventStream(`${adminUrl}/bff/session-events`, {
      cookie: `${ADMIN.cookie}=${admin}`,
      ...sameOrigin,
    })
    t.after(() => adminStream.close())
    assert.equal(adminStream.status, 200, adminStream.text)
    assert.match(adminStream.headers.get('content-type') ?? '', /^text\/event-stream/)
    const shopStream = await openEventStream(`${shopUrl}/bff/session-events`, {
      cookie: `${SHOP.cookie}=${shop}`,
      ...sameOrigin,
    })
    t.after(() => shopStream.close())
    assert.equal(shopStream.status, 200, shopStream.text)

    const res = await fetch(`${adminUrl}/bff/logout`, {
      method: 'POST',
      headers: { ...CSRF, cookie: `${ADMIN.cookie}=${admin}` },
    })
    assert.equal(res.status, 200)
    const ended = await adminStream.next('session-ended', 10_000)
    assert.equal((JSON.parse(ended.data) as { reason: string }).reason, 'logout')
    await new Promise((resolve) => setTimeout(resolve, 1000))
    assert.deepEqual(
      shopStream.events.filter((e) => e.event === 'session-ended'),
      [],
      'the shop session lives on: its stream is not told',
    )
    assert.equal(await status(`${shopUrl}/bff/user`, `${SHOP.cookie}=${shop}`), 200)
  })

  test('BFF_SESSION_EVENTS_MAX_STREAMS bounds the streams of all frontends together, not each frontend apart', async (t) => {
    const open = async (base: string, cookieName: string) => {
      const browser = await logIn(base)
      const stream = await openEventStream(`${base}/bff/session-events`, {
        cookie: `${cookieName}=${sessionCookie(browser, base, cookieName).value}`,
        ...sameOrigin,
      })
      t.after(() => stream.close())
      return stream
    }
    assert.equal((await open(shopUrl, SHOP.cookie)).status, 200)
    assert.equal((await open(adminUrl, ADMIN.cookie)).status, 200)
    // The admin frontend has one stream open, but the process has two: the bound.
    const third = await open(adminUrl, ADMIN.cookie)
    assert.equal(third.status, 429, third.text)
    assert.equal((JSON.parse(third.text) as { error: string }).error, 'too_many_streams')
  })

  test("a WebSocket route under /admin carries the admin session's token upstream; the shop's cookie, as is or renamed, is refused at the handshake", async () => {
    const browser = await logIn(shopUrl)
    await logIn(adminUrl, browser)
    const shop = sessionCookie(browser, shopUrl, SHOP.cookie).value
    const admin = sessionCookie(browser, adminUrl, ADMIN.cookie).value
    const origin = adminOrigin()

    const handshakesBefore = socketApi.handshakes.length
    for (const cookie of [`${SHOP.cookie}=${shop}`, `${ADMIN.cookie}=${shop}`]) {
      await assert.rejects(
        connect(`${adminUrl}/live/feed`, { cookie, origin }),
        { status: 401 },
        `${cookie.split('=')[0]} with the shop's session`,
      )
    }
    assert.equal(socketApi.handshakes.length, handshakesBefore, 'a refused handshake reached the upstream')
    // The route is the admin frontend's: the shop (another host) has no /live, nor /admin/live.
    await assert.rejects(
      connect(`${shopUrl}/live/feed`, { cookie: `${SHOP.cookie}=${shop}`, origin: new URL(shopUrl).origin }),
      { status: 404 },
    )

    const socket = await connect(`${adminUrl}/live/feed`, { cookie: `${ADMIN.cookie}=${admin}`, origin })
    const reply = once(socket, 'message')
    socket.send('hello')
    const echo = JSON.parse(String((await reply)[0])) as {
      path: string
      authorization: boolean
      cookie: boolean
      clientId?: unknown
      message: string
    }
    const closed = once(socket, 'close')
    socket.close()
    await closed
    assert.equal(echo.message, 'hello')
    assert.equal(echo.path, '/feed', 'the prefix and the route path are taken off, as for HTTP')
    assert.equal(echo.authorization, true)
    assert.equal(echo.clientId, ADMIN.id, "the admin client's token")
    assert.equal(echo.cookie, false, 'the cookie never reaches the upstream')
  })
})
