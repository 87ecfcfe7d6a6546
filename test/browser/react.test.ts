/**
 * issue 17 item 6: @bffgate/client/react in Chromium. A tiny React app (test/browser/react-app)
 * is bundled with esbuild (React from node_modules), served by bffgate as its SPA, and
 * driven through the real login, a back-channel logout pushed to it, and the login again.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, test } from 'node:test'
import { build } from 'esbuild'
import type { Browser } from 'playwright-core'
import { freePort, startTestRedis, type TestRedis } from '../helpers/redis.ts'
import { startStack, type Stack } from '../helpers/stack.ts'
import { launchChromium, pageErrors, screenshotter, signInAtIdp as signIn } from './chromium.ts'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
let redis: TestRedis
let stack: Stack
let browser: Browser
let siteDir: string
const shot = screenshotter()

before(async () => {
  browser = await launchChromium()
  siteDir = mkdtempSync(join(tmpdir(), 'bffgate-react-'))
  await build({
    entryPoints: [join(ROOT, 'test/browser/react-app/main.tsx')],
    bundle: true,
    format: 'esm',
    jsx: 'automatic',
    outfile: join(siteDir, 'app.js'),
    absWorkingDir: ROOT,
    define: { 'process.env.NODE_ENV': '"production"' },
    logLevel: 'silent',
  })
  writeFileSync(
    join(siteDir, 'index.html'),
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>React on bffgate</title></head><body><div id="root"></div><script type="module" src="/app.js"></script></body></html>',
  )
  redis = await startTestRedis()
  const idpPort = await freePort()
  stack = await startStack({
    redis,
    backchannel: true,
    idp: { port: idpPort, issuer: `http://localhost:${idpPort}` },
    env: { BFF_STATIC_DIR: siteDir, BFF_LOG_LEVEL: 'info' },
  })
})

after(async () => {
  await browser?.close()
  await stack?.close()
  await redis?.stop()
  if (siteDir !== undefined) rmSync(siteDir, { recursive: true, force: true })
})

test('issue 17 item 6: useUser shows the user after a real login; useSessionEnded hears a back-channel logout within a second and useUser turns anonymous', async () => {
  const context = await browser.newContext()
  context.setDefaultTimeout(10_000)
  const errors = pageErrors(context)
  try {
    const page = await context.newPage()
    await page.goto(`${stack.url}/`)
    await page.locator('#login').click()
    const streamOpen = page.waitForResponse(
      (res) => res.url() === `${stack.url}/bff/session-events` && res.status() === 200,
    )
    await signIn(page, stack.idp.issuer, (url) => url.origin === stack.url && url.pathname === '/')
    assert.equal(await page.locator('#name').textContent(), 'Alice Example')
    await streamOpen
    await shot(page, 'react-signed-in')

    const started = Date.now()
    await stack.idp.revokeSessions('user-alice')
    await page.locator('#ended').waitFor()
    const ended = await page.evaluate(
      () => (window as unknown as { sessionEnded: { reason: string; at: number } }).sessionEnded,
    )
    assert.equal(ended.reason, 'backchannel_logout')
    assert.ok(ended.at - started < 1000, `${ended.at - started} ms`)
    assert.equal(await page.locator('#name').count(), 0, 'useUser is anonymous now')
    await page.locator('#login').waitFor()
    await shot(page, 'react-session-ended')

    // And the way back: the banner's login goes through the IdP and lands signed in.
    await page.locator('#again').click()
    await signIn(page, stack.idp.issuer, (url) => url.origin === stack.url && url.pathname === '/')
    assert.equal(await page.locator('#name').textContent(), 'Alice Example')
  } finally {
    await context.close()
  }
  assert.deepEqual(errors, [])
})
