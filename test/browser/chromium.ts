/**
 * Debian's Chromium driven by playwright-core, for the browser tests. Never downloads a
 * browser: it uses /usr/bin/chromium (or CHROMIUM_PATH) and fails, saying how to install it,
 * when there is none. Browser tests are never skipped.
 */
import { accessSync, constants, mkdirSync, rmSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { DEFAULT_USER } from '../../dev/idp/index.ts'
import type { Browser, BrowserContext, BrowserType, Page } from 'playwright-core'

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

/** Where screenshots go (git-ignored; CI keeps it as an artifact). */
export const SCREENSHOT_DIR = fileURLToPath(new URL('../../test-results/browser/', import.meta.url))

const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
]

/** Launches headless Chromium with a fresh, temporary profile (playwright's default for launch()). */
export async function launchChromium(extraArgs: readonly string[] = []): Promise<Browser> {
  try {
    accessSync(CHROMIUM_PATH, constants.X_OK)
  } catch {
    throw new Error(
      `No Chromium at ${CHROMIUM_PATH}: the browser tests need it. Install it (Debian/Ubuntu: ` +
        '`apt-get install -y chromium`), or point CHROMIUM_PATH at a Chromium or Chrome binary. ' +
        '(`npx playwright install` is not used: playwright-core drives the system browser.)',
    )
  }
  let chromium: BrowserType
  try {
    ;({ chromium } = await import('playwright-core'))
  } catch (err) {
    throw new Error(`playwright-core is not installed (npm install): ${(err as Error).message}`, { cause: err })
  }
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: [...ARGS, ...extraArgs],
    headless: true,
    timeout: 30_000,
  })
}

/** Screenshots numbered in the order they are taken: `test-results/browser/NN-<name>.png`. */
export function screenshotter() {
  rmSync(SCREENSHOT_DIR, { recursive: true, force: true })
  mkdirSync(SCREENSHOT_DIR, { recursive: true })
  let count = 0
  return async (page: Page, name: string): Promise<string> => {
    const path = `${SCREENSHOT_DIR}${String(++count).padStart(2, '0')}-${name.replace(/[^a-z0-9-]+/gi, '-')}.png`
    await page.screenshot({ path, fullPage: true })
    return path
  }
}

/** Uncaught errors thrown by the pages of a context, collected for a test to assert on. */
export function pageErrors(context: BrowserContext): string[] {
  const errors: string[] = []
  const watch = (page: Page) => page.on('pageerror', (err) => errors.push(`${page.url()}: ${err.message}`))
  context.pages().forEach(watch)
  context.on('page', watch)
  return errors
}

/**
 * Fills in the development IdP's login page (as `user`, default alice) once the page has
 * reached `issuer`, and waits until the browser is back at `landing`; a login that lands
 * elsewhere fails saying where the browser is and what it shows.
 */
export async function signInAtIdp(
  page: Page,
  issuer: string,
  landing: (url: URL) => boolean,
  user: { username: string; password: string } = DEFAULT_USER,
): Promise<void> {
  await page.waitForURL((url) => url.origin === issuer)
  await page.locator('#username').fill(user.username)
  await page.locator('#password').fill(user.password)
  await Promise.all([page.waitForURL(landing), page.locator('#login').click()]).catch(async (err: unknown) => {
    const body = await page
      .locator('body')
      .innerText()
      .catch(() => '')
    throw new Error(
      `the login did not land where expected: the browser is at ${page.url()}, showing ${JSON.stringify(body.slice(0, 400))}`,
      { cause: err },
    )
  })
}
