import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../src/app.ts'
import { loadConfig } from '../../src/config/load.ts'
import { loggerOptions } from '../../src/logger.ts'
import type { Config } from '../../src/config/types.ts'
import { startDemoApi, type DemoApi } from '../../dev/api/index.ts'
import { DEFAULT_USER, startDevIdp, type DevIdp, type DevIdpOptions } from '../../dev/idp/index.ts'
import { createBrowser, loginAtDevIdp, type Browser, type FollowResult } from './browser.ts'
import { freePort, type TestRedis } from './redis.ts'

export const CLIENT_ID = 'bffgate-test'
export const CLIENT_SECRET = 'bffgate-test-client-secret-0123456789'
export const SESSION_SECRET = 'test-session-secret-0123456789-abcdefghijklmnopqrstuvwxyz'
export const USER = { username: DEFAULT_USER.username, password: DEFAULT_USER.password }
/** A second user of the development IdP, for tests that need two people (`idp: { users: [DEFAULT_USER, BOB] }`). */
export const BOB = {
  username: 'bob',
  password: 'bob-password',
  sub: 'user-bob',
  name: 'Bob Example',
  email: 'bob@example.com',
}

/** Captured log lines of the gateway, parsed. */
export interface LogSink {
  readonly lines: Array<Record<string, unknown>>
  readonly raw: string[]
}

export interface Stack {
  readonly idp: DevIdp
  readonly api: DemoApi
  readonly app: FastifyInstance
  readonly config: Config
  /** The environment the gateway was configured from (start replicas with it). */
  readonly env: Readonly<Record<string, string>>
  /** `http://127.0.0.1:<port>` of the gateway. */
  readonly url: string
  /** `http://127.0.0.1:<port>` of the gateway's admin listener (`/metrics`, probes). */
  readonly adminUrl: string
  readonly redis: TestRedis | undefined
  readonly keyPrefix: string
  readonly logs: LogSink
  /** A browser logged in through the real login flow, with the final redirect it got. */
  login(options?: {
    returnTo?: string
    browser?: Browser
    user?: { username: string; password: string }
  }): Promise<{ browser: Browser; result: FollowResult }>
  close(): Promise<void>
}

export interface StackOptions {
  /** Real Redis; omitted means the memory store. */
  readonly redis?: TestRedis
  readonly env?: Record<string, string>
  readonly idp?: Partial<DevIdpOptions>
  /** Options of the demo API besides issuer and audience. */
  readonly api?: { requireDpopNonce?: boolean }
  /** Register the gateway's back-channel logout URI at the IdP. */
  readonly backchannel?: boolean
  /** Routes to configure, given the demo API's URL; default one route `/api`. */
  readonly routes?: (apiUrl: string) => object[]
  /** The gateway's clock (buildApp's `now`); the real one by default. */
  readonly now?: () => number
}

/**
 * The whole system over real HTTP on loopback: the development IdP, the demo API, and
 * bffgate configured through `loadConfig` exactly as from the environment.
 */
export async function startStack(options: StackOptions = {}): Promise<Stack> {
  // The gateway's port must be known before it listens (its public URL and the IdP's redirect
  // URIs name it), so another process may take it in between: then start again on another.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startStackOnce(options)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt === 5) throw err
    }
  }
}

async function startStackOnce(options: StackOptions): Promise<Stack> {
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const idp = await startDevIdp({
    clients: [
      {
        client_id: CLIENT_ID,
        client_secret: CLIENT_SECRET,
        redirect_uris: [`${url}/bff/callback`],
        post_logout_redirect_uris: [`${url}/`, `${url}/bff/logged-out`],
        ...(options.backchannel === true && { backchannel_logout_uri: `${url}/bff/backchannel-logout` }),
      },
    ],
    log: () => {},
    ...options.idp,
  })
  const audiences = ['https://api.bffgate.test', ...(options.idp?.extraApis ?? []).map((a) => a.audience)]
  const api = await startDemoApi({ issuer: idp.issuer, audience: audiences, ...options.api })
  const keyPrefix = options.redis?.prefix() ?? 'bff:'
  const env: Record<string, string> = {
    BFF_PORT: String(port),
    BFF_HOST: '127.0.0.1',
    BFF_PUBLIC_URL: url,
    BFF_OIDC_ISSUER: idp.issuer,
    BFF_OIDC_CLIENT_ID: CLIENT_ID,
    BFF_OIDC_CLIENT_SECRET: CLIENT_SECRET,
    BFF_OIDC_AUDIENCE: 'https://api.bffgate.test',
    BFF_ALLOW_INSECURE_HTTP: 'true',
    BFF_SESSION_SECRET: SESSION_SECRET,
    BFF_SESSION_STORE: options.redis ? 'redis' : 'memory',
    ...(options.redis && { BFF_REDIS_URL: options.redis.url, BFF_REDIS_KEY_PREFIX: keyPrefix }),
    BFF_ROUTES: JSON.stringify(options.routes?.(api.url) ?? [{ path: '/api', upstream: api.url }]),
    BFF_LOG_LEVEL: 'debug',
    // The gateway shares this process with the test (key generation, parsing): load shedding on
    // the event-loop delay would measure the test, not the gateway. Tests of shedding turn it on.
    BFF_MAX_EVENT_LOOP_DELAY_MS: '0',
    // Tests log in far more often from one address than a person does; the rate-limit tests set their own.
    BFF_RATE_LIMIT_LOGIN: '100000',
    BFF_RATE_LIMIT_CALLBACK: '100000',
    BFF_RATE_LIMIT_BACKCHANNEL_LOGOUT: '100000',
    ...options.env,
  }
  const config = loadConfig(env)
  const logs: LogSink = { lines: [], raw: [] }
  const app = await buildApp(config, {
    ...(options.now !== undefined && { now: options.now }),
    // The production logger's redaction and serializers, so tests see what production logs.
    logger: {
      ...(loggerOptions(config.logLevel) as object),
      stream: {
        write(line: string) {
          logs.raw.push(line)
          try {
            logs.lines.push(JSON.parse(line) as Record<string, unknown>)
          } catch {}
        },
      },
    },
  })
  let adminUrl: string
  try {
    await app.listen({ port, host: '127.0.0.1' })
    adminUrl = await app.admin.listen({ port: 0, host: '127.0.0.1' })
  } catch (err) {
    // Nothing may outlive a failed start: open servers would keep the test process alive.
    await app.close()
    await api.close()
    await idp.close()
    throw err
  }

  return {
    idp,
    api,
    app,
    config,
    env,
    url,
    adminUrl,
    redis: options.redis,
    keyPrefix: config.redis.keyPrefix,
    logs,
    async login({ returnTo, browser = createBrowser(), user = USER } = {}) {
      const start = `${url}/bff/login${returnTo !== undefined ? `?returnTo=${encodeURIComponent(returnTo)}` : ''}`
      // Stop at the first redirect back into the SPA (after the callback).
      const result = await loginAtDevIdp(browser, start, user, {
        until: (next) => next.origin === url && !next.pathname.startsWith('/bff/'),
      })
      return { browser, result }
    },
    async close() {
      await app.close()
      await api.close()
      await idp.close()
    },
  }
}

/** The `Cookie` header the browser sends to the stack: every cookie it holds for the gateway's origin. */
export function cookieHeader(stack: Pick<Stack, 'url'>, browser: Browser): string {
  return browser
    .cookies(stack.url)
    .map((c) => `${c.name}=${c.value}`)
    .join('; ')
}

/** The `Cookie` header with bffgate's own cookies only (the `__Host-` ones: session and login state). */
export function sessionCookieHeader(stack: Pick<Stack, 'url'>, browser: Browser): string {
  return browser
    .cookies(stack.url)
    .filter((c) => c.name.startsWith('__Host-'))
    .map((c) => `${c.name}=${c.value}`)
    .join('; ')
}
