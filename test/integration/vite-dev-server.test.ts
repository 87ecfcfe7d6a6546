/**
 * issue 17 item 6: the Vite recipe of docs/spa.md, tried for real. dev/vite/vite.config.js
 * runs a Vite dev server in front of a bffgate process whose public URL is Vite's origin;
 * the login, an API call, the session-events stream and a logout all go through Vite.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, test } from 'node:test'
import { createServer, type ViteDevServer } from 'vite'
import { createBrowser, loginAtDevIdp } from '../helpers/browser.ts'
import { openEventStream } from '../helpers/event-stream.ts'
import { freePort } from '../helpers/redis.ts'
import { startReplica, type Replica } from '../helpers/replica.ts'
import { CLIENT_SECRET, USER, startStack, type Stack } from '../helpers/stack.ts'

const CONFIG_FILE = fileURLToPath(new URL('../../dev/vite/vite.config.js', import.meta.url))
let stack: Stack
let bffgate: Replica
let vite: ViteDevServer
let viteUrl: string
let root: string

before(async () => {
  stack = await startStack() // the IdP and the demo API (its own gateway is not used here)
  const vitePort = await freePort()
  viteUrl = `http://127.0.0.1:${vitePort}`
  await stack.idp.registerClient({
    client_id: 'vite-dev',
    client_secret: CLIENT_SECRET,
    redirect_uris: [`${viteUrl}/bff/callback`],
    post_logout_redirect_uris: [`${viteUrl}/bff/logged-out`],
  })
  bffgate = await startReplica({
    ...stack.env,
    BFF_PUBLIC_URL: viteUrl,
    BFF_OIDC_CLIENT_ID: 'vite-dev',
    BFF_LOG_LEVEL: 'warn',
  })
  root = mkdtempSync(join(tmpdir(), 'bffgate-vite-'))
  writeFileSync(
    join(root, 'index.html'),
    '<!doctype html><html><body><div id="app"></div><script type="module" src="/main.js"></script></body></html>',
  )
  writeFileSync(join(root, 'main.js'), 'document.querySelector("#app").textContent = "vite"\n')
  process.env.BFFGATE_URL = bffgate.url
  vite = await createServer({
    configFile: CONFIG_FILE,
    root,
    logLevel: 'silent',
    server: { host: '127.0.0.1', port: vitePort },
  })
  await vite.listen()
})

after(async () => {
  await vite?.close()
  await bffgate?.stop()
  await stack?.close()
  if (root !== undefined) rmSync(root, { recursive: true, force: true })
})

test('issue 17 item 6: docs/spa.md shows dev/vite/vite.config.js as it is', () => {
  const doc = readFileSync(new URL('../../docs/spa.md', import.meta.url), 'utf8')
  const block = /```js\n([\s\S]*?)```/.exec(doc.slice(doc.indexOf('### With the Vite dev server')))?.[1]
  assert.ok(block !== undefined)
  assert.ok(
    readFileSync(CONFIG_FILE, 'utf8').endsWith(block),
    'the documented config is the tested file (after its header comment)',
  )
})

test('issue 17 item 6: through the Vite dev server of dev/vite/vite.config.js: the SPA from Vite, the login, an API call, the session-events stream and a logout from bffgate', async () => {
  const page = await fetch(`${viteUrl}/`)
  assert.equal(page.status, 200)
  assert.match(await page.text(), /@vite\/client/, 'Vite serves the SPA')

  const browser = createBrowser()
  const login = await loginAtDevIdp(browser, `${viteUrl}/bff/login?returnTo=/orders/42`, USER, {
    until: (url) => url.origin === viteUrl && !url.pathname.startsWith('/bff/'),
  })
  assert.equal(login.url.href, `${viteUrl}/orders/42`)
  assert.ok(
    login.redirects.some((url) => url.href.startsWith(`${viteUrl}/bff/callback`)),
    'the IdP came back through Vite',
  )
  assert.ok(browser.cookie(viteUrl, '__Host-Http-bff') !== undefined)

  const api = await browser.get(`${viteUrl}/api/hello`, {
    'x-csrf': '1',
    origin: viteUrl,
    'sec-fetch-site': 'same-origin',
  })
  assert.equal(api.status, 200)
  assert.equal(api.json<{ claims: { sub: string } }>().claims.sub, 'user-alice')

  const cookie = browser
    .cookies(viteUrl)
    .map((c) => `${c.name}=${c.value}`)
    .join('; ')
  const stream = await openEventStream(`${viteUrl}/bff/session-events`, { cookie, 'sec-fetch-site': 'same-origin' })
  assert.equal(stream.status, 200)
  const started = performance.now()
  const logout = await browser.post(`${viteUrl}/bff/logout`, '', { 'x-csrf': '1', origin: viteUrl })
  assert.equal(logout.status, 200)
  const ended = await stream.next('session-ended')
  assert.equal(JSON.parse(ended.data).reason, 'logout')
  assert.ok(ended.at - started < 1000, `through Vite's proxy after ${(ended.at - started).toFixed(0)} ms: not buffered`)
  stream.close()
})
