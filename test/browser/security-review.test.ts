/**
 * Issue 13 item 5 in a real browser (Debian's Chromium through playwright-core): the planted
 * cookie is a real attack on Chromium, and through bffgate it no longer lands.
 *
 * Cookies ignore ports, so the upstream (another port on 127.0.0.1) planting straight into the
 * browser would reach bffgate's cookie too: each part uses a browser context of its own.
 */
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, test } from 'node:test'
import type { Browser } from 'playwright-core'
import { startStack, USER, type Stack } from '../helpers/stack.ts'
import { launchChromium } from './chromium.ts'

const SESSION_COOKIE = '__Host-Http-bff'
/** Lines Chromium reads as bffgate's cookies: the name is trimmed of spaces and tabs. */
const PLANTS = [
  `${SESSION_COOKIE} =planted; Path=/; Secure; HttpOnly`,
  `${SESSION_COOKIE}\t=planted; Path=/; Secure; HttpOnly`,
  '__Host-bff-login-AAAAAAAAAAAA =planted; Path=/; Secure; HttpOnly',
]

let browser: Browser
let upstream: Server
let upstreamUrl: string
let stack: Stack

before(async () => {
  browser = await launchChromium()
  upstream = createServer((_req, res) => {
    res.writeHead(200, { 'set-cookie': PLANTS, 'content-type': 'application/json', 'content-length': 2 }).end('{}')
  })
  upstream.listen(0, '127.0.0.1')
  await once(upstream, 'listening')
  upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`
  stack = await startStack({
    routes: (api) => [
      { path: '/api', upstream: api },
      { path: '/raw', upstream: upstreamUrl },
    ],
  })
})

after(async () => {
  await browser?.close()
  await stack?.close()
  upstream?.closeAllConnections()
  upstream?.close()
})

test('issue 13 item 5 (Chromium): a name with a space or tab before "=" is bffgate\'s cookie to Chromium', async () => {
  const context = await browser.newContext()
  try {
    const page = await context.newPage()
    await page.goto(`${upstreamUrl}/plant`)
    const names = (await context.cookies(upstreamUrl)).map((c) => `${c.name}=${c.value}`).sort()
    assert.deepEqual(names, [`${SESSION_COOKIE}=planted`, '__Host-bff-login-AAAAAAAAAAAA=planted'])
  } finally {
    await context.close()
  }
})

test('issue 13 item 5 (Chromium): through bffgate the same answer leaves the session cookie bffgate set', async () => {
  const context = await browser.newContext()
  try {
    const page = await context.newPage()
    // A real login in Chromium, landing on /bff/user.
    await page.goto(`${stack.url}/bff/login?returnTo=/bff/user`)
    await page.locator('#username').fill(USER.username)
    await page.locator('#password').fill(USER.password)
    await Promise.all([page.waitForURL(`${stack.url}/bff/user`, { timeout: 10_000 }), page.locator('#login').click()])
    const session = (await context.cookies(stack.url)).find((c) => c.name === SESSION_COOKIE)!.value
    const status = await page.evaluate(async () => (await fetch('/raw/plant', { headers: { 'x-csrf': '1' } })).status)
    assert.equal(status, 200)
    // The IdP (another port on the same host) has cookies in this jar too: only ours count.
    const ours = (await context.cookies(stack.url)).filter((c) => c.name.startsWith('__Host-'))
    assert.deepEqual(
      ours.map((c) => `${c.name}=${c.value}`),
      [`${SESSION_COOKIE}=${session}`],
    )
    assert.equal(await page.evaluate(async () => (await fetch('/bff/user')).status), 200)
  } finally {
    await context.close()
  }
})
