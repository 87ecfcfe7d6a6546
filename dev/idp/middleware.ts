/**
 * Koa middleware that runs around oidc-provider's own router and makes it behave like Auth0
 * where oidc-provider has no option for it. Each function is installed with `provider.use()`,
 * so it sees the request before oidc-provider and, after `await next()`, the response and
 * `ctx.oidc` (route name, parsed parameters, entities) that oidc-provider produced.
 */
import { request as httpRequest } from 'node:http'
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http'
import { isIPv6 } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import type { KoaContextWithOIDC, Middleware, Provider, RefreshToken } from 'oidc-provider'
import { sessionTtlSeconds } from './lifetimes.ts'
import type { SessionLifetimes } from './lifetimes.ts'

/** oidc-provider's default route paths, which the provider configuration keeps. */
export const ROUTES = {
  authorization: '/auth',
  /** Pushed authorization requests (RFC 9126). */
  pushedAuthorization: '/request',
  token: '/token',
  introspection: '/token/introspection',
  revocation: '/token/revocation',
  endSession: '/session/end',
  endSessionConfirm: '/session/end/confirm',
  /** Our own GET step that confirms RP-initiated logout without a human clicking "Yes". */
  endSessionAutoConfirm: '/session/end/auto-confirm',
} as const

/** True for a refresh token minted for `online_access`: bound to the session, never rotated. */
export function isOnlineRefreshToken(token: RefreshToken | undefined): token is RefreshToken {
  return token !== undefined && token.scopes.has('online_access') && token.expiresWithSession === true
}

/** Counts of token endpoint requests by grant type. */
export class TokenStats {
  #counts: Record<string, number> = {}
  #pushed = 0

  count(grantType: string): void {
    this.#counts[grantType] = (this.#counts[grantType] ?? 0) + 1
  }

  /** One more POST to the pushed authorization request endpoint (RFC 9126), failures included. */
  countPushed(): void {
    this.#pushed++
  }

  pushedAuthorizationRequests(): number {
    return this.#pushed
  }

  snapshot(): { tokenRequests: Record<string, number> } {
    return { tokenRequests: { ...this.#counts } }
  }

  reset(): void {
    this.#counts = {}
    this.#pushed = 0
  }
}

/** Largest token request body that is looked at before oidc-provider (its own limit is 56 KiB). */
const PEEK_LIMIT_BYTES = 56 * 1024

/**
 * Reads a request body that declares its Content-Length and pushes it back into the stream
 * (`readable.unshift`), so oidc-provider's own body parser still reads all of it. Resolves
 * undefined, reading nothing, for bodies without a Content-Length or above the limit.
 * The last chunk is unshifted synchronously after the read that returned it, before the
 * stream can emit 'end' (unshift is not allowed after 'end').
 * With `replace`, its result is pushed back instead and Content-Length is set to its size, so
 * oidc-provider parses the rewritten body; the original is what the promise resolves.
 */
export function peekBody(req: IncomingMessage, replace?: (body: Buffer) => Buffer): Promise<Buffer | undefined> {
  const header = req.headers['content-length']
  const length = header === undefined ? Number.NaN : Number(header)
  if (!Number.isSafeInteger(length) || length < 0 || length > PEEK_LIMIT_BYTES) return Promise.resolve(undefined)
  if (length === 0) return Promise.resolve(Buffer.alloc(0))
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let received = 0
    const cleanup = () => {
      req.off('readable', onReadable)
      req.off('end', onEnd)
      req.off('error', onError)
    }
    const onReadable = () => {
      while (received < length) {
        const chunk = req.read() as Buffer | null
        if (chunk === null) return
        chunks.push(chunk)
        received += chunk.length
      }
      cleanup()
      const body = Buffer.concat(chunks, received)
      let pushedBack: Buffer = body
      try {
        pushedBack = replace ? replace(body) : body
      } catch (error) {
        req.unshift(body)
        reject(error as Error)
        return
      }
      if (pushedBack !== body) req.headers['content-length'] = String(pushedBack.length)
      req.unshift(pushedBack)
      resolve(body)
    }
    const onEnd = () => {
      cleanup()
      reject(new Error(`request body ended after ${received} of ${length} bytes`))
    }
    const onError = (error: Error) => {
      cleanup()
      reject(error)
    }
    req.on('readable', onReadable)
    req.on('end', onEnd)
    req.on('error', onError)
  })
}

/**
 * Drops the named parameters from front-channel authorization requests, as an IdP that does
 * not implement them would (e.g. one that ignores `max_age`); a test-only misbehaviour.
 */
export function ignoreAuthorizationParameters(names: readonly string[]): Middleware {
  return async (ctx, next) => {
    if (names.length > 0 && ctx.method === 'GET' && ctx.path === ROUTES.authorization) {
      const query = new URLSearchParams(ctx.querystring)
      for (const name of names) query.delete(name)
      ctx.querystring = query.toString()
    }
    return next()
  }
}

/** `grant_type` of a form body, or 'unknown'. */
function grantTypeOf(body: Buffer, contentType: string | undefined): string {
  if (!isForm(contentType)) return 'unknown'
  return new URLSearchParams(body.toString('utf8')).get('grant_type') ?? 'unknown'
}

/**
 * Counts every POST to the token endpoint by `grant_type` (and to the PAR endpoint), failures included. A request is
 * counted when it arrives, before any injected delay, so a test can see that an exchange
 * started; only a body without Content-Length (chunked) is counted after oidc-provider
 * parsed it.
 */
export function countTokenRequests(stats: TokenStats): Middleware {
  return async (ctx, next) => {
    if (ctx.method === 'POST' && ctx.path === ROUTES.pushedAuthorization) stats.countPushed()
    if (ctx.method !== 'POST' || ctx.path !== ROUTES.token) return next()
    const body = await peekBody(ctx.req)
    if (body !== undefined) {
      stats.count(grantTypeOf(body, ctx.req.headers['content-type']))
      return next()
    }
    try {
      await next()
    } finally {
      // params exist once oidc-provider parsed the body; the raw body covers requests it
      // rejected before assembling them (e.g. unsupported grant types).
      const grantType = ctx.oidc?.params?.grant_type ?? ctx.oidc?.body?.grant_type
      stats.count(typeof grantType === 'string' ? grantType : 'unknown')
    }
  }
}

/** What {@link TokenFaults.fail} makes the token endpoint answer. */
export interface TokenFailure {
  /** HTTP status, 400-599 (e.g. 503 or 429). */
  status: number
  /** How many of the next token requests get it; 0 cancels failures still pending. */
  count: number
  /** Seconds for a `Retry-After` header; none when undefined. */
  retryAfter?: number
}

function nonNegativeInteger(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new TypeError(`${name} must be a non-negative integer, got ${String(value)}`)
  }
  return value
}

/**
 * Faults injected at the token endpoint by tests of a client's refresh logic: a delay before
 * every token request is handled, and a number of requests answered with an error status
 * without being processed.
 */
export class TokenFaults {
  #delayMs = 0
  #failure: { status: number; retryAfter: number | undefined; remaining: number } | undefined

  get delayMs(): number {
    return this.#delayMs
  }

  /** Every token request waits `ms` before being handled; 0 turns the delay off. */
  setDelay(ms: number): void {
    this.#delayMs = nonNegativeInteger('ms', ms)
  }

  /** The next `count` token requests get `status` (replacing failures still pending). */
  fail({ status, count, retryAfter }: TokenFailure): void {
    if (!Number.isInteger(status) || status < 400 || status > 599)
      throw new TypeError(`status must be an HTTP error status (400-599), got ${status}`)
    nonNegativeInteger('count', count)
    if (retryAfter !== undefined) nonNegativeInteger('retryAfter', retryAfter)
    this.#failure = count === 0 ? undefined : { status, retryAfter, remaining: count }
  }

  /** Claims the next injected failure for a request that just arrived, if any is left. */
  take(): { status: number; retryAfter: number | undefined } | undefined {
    const failure = this.#failure
    if (!failure) return undefined
    failure.remaining -= 1
    if (failure.remaining === 0) this.#failure = undefined
    return { status: failure.status, retryAfter: failure.retryAfter }
  }
}

/** Waits `ms`, or less when the client goes away; resolves whether the client is still there. */
async function waitForClient(ctx: KoaContextWithOIDC, ms: number): Promise<boolean> {
  const gone = new AbortController()
  // Before any answer was written, 'close' of the response means the connection closed
  // (the client gave up, or stop()/close() dropped the connection).
  const onClose = () => gone.abort()
  ctx.res.once('close', onClose)
  try {
    // Unreferenced: a pending delay never keeps a test process alive.
    await sleep(ms, undefined, { ref: false, signal: gone.signal })
    return true
  } catch {
    return false
  } finally {
    ctx.res.off('close', onClose)
  }
}

/**
 * Applies {@link TokenFaults} to POSTs to the token endpoint; install after
 * {@link countTokenRequests}, so requests are counted before they wait. A failing request
 * claims its failure on arrival, waits the delay too, and is answered here with a JSON OAuth
 * error, never reaching oidc-provider. A request whose client disconnects during the delay
 * is dropped unprocessed, so it cannot rotate or consume tokens behind a test's back later.
 */
export function injectTokenFaults(faults: TokenFaults): Middleware {
  return async (ctx, next) => {
    if (ctx.method !== 'POST' || ctx.path !== ROUTES.token) return next()
    const failure = faults.take()
    if (faults.delayMs > 0 && !(await waitForClient(ctx, faults.delayMs))) return
    if (!failure) return next()

    // Not processed: drain the body instead of leaving it unread.
    ctx.req.resume()
    ctx.status = failure.status
    ctx.set('cache-control', 'no-store')
    if (failure.retryAfter !== undefined) ctx.set('retry-after', String(failure.retryAfter))
    ctx.body = { error: 'temporarily_unavailable' }
  }
}

/** Adds `consent` to the prompts of a request for offline_access; undefined when it needs no change. */
function withConsentForOfflineAccess(params: URLSearchParams): URLSearchParams | undefined {
  const scopes = (params.get('scope') ?? '').split(' ')
  const prompts = new Set((params.get('prompt') ?? '').split(' ').filter(Boolean))
  if (!scopes.includes('offline_access') || prompts.has('none') || prompts.has('consent')) return undefined
  prompts.add('consent')
  const rewritten = new URLSearchParams(params)
  rewritten.set('prompt', [...prompts].join(' '))
  return rewritten
}

function isForm(contentType: string | undefined): boolean {
  return (contentType ?? '').toLowerCase().startsWith('application/x-www-form-urlencoded')
}

/**
 * oidc-provider drops `offline_access` unless `prompt=consent` is sent (an OIDC Core rule);
 * Auth0 does not require it. Adding `consent` to the prompt of such an authorization request
 * keeps the scope; the extra consent step is granted automatically by our interactions.
 * `prompt=none` cannot be combined with `consent`, so those requests stay as they are.
 * Rewritten are GET authorization requests (what openid-client and the BFF send) and form
 * bodies pushed to the PAR endpoint, before oidc-provider parses them: it checks the scope
 * when the request is pushed and stores the result, so the later GET with only a
 * `request_uri` has nothing left to rewrite. A pushed request object (`request`) is signed
 * and left alone.
 */
export function offlineAccessWithoutConsent(): Middleware {
  return async (ctx, next) => {
    if (ctx.method === 'GET' && ctx.path === ROUTES.authorization) {
      const rewritten = withConsentForOfflineAccess(new URLSearchParams(ctx.querystring))
      if (rewritten) ctx.querystring = rewritten.toString()
    } else if (
      ctx.method === 'POST' &&
      ctx.path === ROUTES.pushedAuthorization &&
      isForm(ctx.req.headers['content-type'])
    ) {
      await peekBody(ctx.req, (body) => {
        const params = new URLSearchParams(body.toString('utf8'))
        if (params.has('request')) return body
        const rewritten = withConsentForOfflineAccess(params)
        return rewritten ? Buffer.from(rewritten.toString(), 'utf8') : body
      })
    }
    return next()
  }
}

/** Every token value the token endpoint has issued, in order. */
export class IssuedTokens {
  readonly #values: string[] = []

  add(value: unknown): void {
    if (typeof value === 'string' && value !== '') this.#values.push(value)
  }

  list(): string[] {
    return [...this.#values]
  }
}

/**
 * Records the access, refresh and ID token of every successful token endpoint response, as
 * the client receives them (install it outside the middleware that changes responses).
 */
export function recordIssuedTokens(tokens: IssuedTokens): Middleware {
  return async (ctx, next) => {
    await next()
    if (ctx.oidc?.route !== 'token' || ctx.status !== 200) return
    const body = ctx.body
    if (!body || typeof body !== 'object' || Buffer.isBuffer(body)) return
    const {
      access_token: accessToken,
      refresh_token: refreshToken,
      id_token: idToken,
    } = body as Record<string, unknown>
    for (const value of [accessToken, refreshToken, idToken]) tokens.add(value)
  }
}

/** Endpoints where clients authenticate. */
const CLIENT_AUTH_PATHS = new Set<string>([
  ROUTES.token,
  ROUTES.pushedAuthorization,
  ROUTES.revocation,
  ROUTES.introspection,
])

/** The client secret method a request uses and the client it names; undefined for other methods. */
function secretAuthOf(
  body: URLSearchParams,
  authorization: string | undefined,
): { method: string; clientId: string } | undefined {
  const bodySecret = body.get('client_secret')
  if (bodySecret !== null && bodySecret !== '')
    return { method: 'client_secret_post', clientId: body.get('client_id') ?? '' }
  const [scheme, credentials] = (authorization ?? '').split(' ')
  if (scheme?.toLowerCase() !== 'basic' || credentials === undefined) return undefined
  const decoded = Buffer.from(credentials, 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  if (colon === -1) return undefined
  try {
    // RFC 6749 2.3.1: the client id is form-urlencoded inside the Basic credentials.
    return { method: 'client_secret_basic', clientId: decodeURIComponent(decoded.slice(0, colon).replaceAll('+', ' ')) }
  } catch {
    return undefined
  }
}

/**
 * oidc-provider accepts a client secret in the body or in Basic credentials whichever of
 * `client_secret_basic` and `client_secret_post` was registered; Auth0 insists on the
 * configured one. For a client whose method was given explicitly at registration
 * (`explicitMethods`: client id to method), a secret sent the other way is answered 401
 * `invalid_client` before oidc-provider sees the request; clients registered without a
 * method keep oidc-provider's leniency. Other mismatches (a secret from a `private_key_jwt`
 * client, an assertion from a secret client) oidc-provider refuses itself.
 */
export function enforceSecretAuthMethod(explicitMethods: ReadonlyMap<string, string>): Middleware {
  return async (ctx, next) => {
    if (ctx.method !== 'POST' || !CLIENT_AUTH_PATHS.has(ctx.path) || !isForm(ctx.req.headers['content-type']))
      return next()
    const body = await peekBody(ctx.req)
    if (body === undefined) return next()
    const used = secretAuthOf(new URLSearchParams(body.toString('utf8')), ctx.req.headers.authorization)
    if (used === undefined) return next()
    const registered = explicitMethods.get(used.clientId)
    if ((registered !== 'client_secret_basic' && registered !== 'client_secret_post') || registered === used.method)
      return next()

    ctx.req.resume()
    ctx.status = 401
    ctx.set('cache-control', 'no-store')
    ctx.body = {
      error: 'invalid_client',
      error_description: `client authentication failed: ${used.clientId} is registered for ${registered}, not ${used.method}`,
    }
  }
}

/**
 * Online refresh tokens, after a successful refresh grant:
 * - the response carries no `refresh_token` (Auth0 omits it; the client keeps its ORT),
 * - the IdP session's idle timeout starts over, capped at its absolute end (oidc-provider has
 *   no built-in sliding session on token use).
 */
export function onlineRefreshTokenExchange(provider: Provider, lifetimes: SessionLifetimes): Middleware {
  return async (ctx, next) => {
    await next()
    if (ctx.oidc?.route !== 'token' || ctx.status !== 200) return
    if (ctx.oidc.params?.grant_type !== 'refresh_token') return
    const token = ctx.oidc.entities.RefreshToken
    if (!isOnlineRefreshToken(token)) return

    const body = ctx.body
    if (body && typeof body === 'object' && 'refresh_token' in body) {
      delete (body as Record<string, unknown>).refresh_token
    }
    if (token.sessionUid === undefined) return
    const session = await provider.Session.findByUid(token.sessionUid)
    if (session) await session.save(sessionTtlSeconds(lifetimes, session.loginTs))
  }
}

/**
 * Revoking an online refresh token at the revocation endpoint ends the whole IdP session
 * (all of its ORTs and SSO), as at Auth0. oidc-provider itself only revokes the token's grant.
 */
export function revokedOnlineRefreshTokenEndsSession(provider: Provider): Middleware {
  return async (ctx, next) => {
    await next()
    if (ctx.oidc?.route !== 'revocation' || ctx.status !== 200) return
    const token = ctx.oidc.entities.RefreshToken
    if (!isOnlineRefreshToken(token) || token.clientId !== ctx.oidc.client?.clientId) return
    if (token.sessionUid === undefined) return
    const session = await provider.Session.findByUid(token.sessionUid)
    await session?.destroy()
  }
}

interface ForwardedResponse {
  status: number
  headers: IncomingHttpHeaders
  body: Buffer
}

/** POSTs a form to this same server (the address the request came in on). */
function postToSelf(ctx: KoaContextWithOIDC, path: string, form: URLSearchParams): Promise<ForwardedResponse> {
  const { localAddress = '127.0.0.1', localPort } = ctx.req.socket
  const hostHeader = `${isIPv6(localAddress) ? `[${localAddress}]` : localAddress}:${localPort}`
  const body = form.toString()
  return new Promise((resolve, reject) => {
    const outgoing = httpRequest(
      {
        host: localAddress,
        port: localPort,
        path,
        method: 'POST',
        headers: {
          // The browser's Host keeps absolute URLs the provider builds (e.g. the success page)
          // pointing where the browser expects; its cookie carries the IdP session.
          host: ctx.req.headers.host ?? hostHeader,
          cookie: ctx.req.headers.cookie ?? '',
          'content-type': 'application/x-www-form-urlencoded',
          'content-length': String(Buffer.byteLength(body)),
        },
      },
      (response) => {
        const chunks: Buffer[] = []
        response.on('data', (chunk: Buffer) => chunks.push(chunk))
        response.on('end', () =>
          resolve({ status: response.statusCode ?? 500, headers: response.headers, body: Buffer.concat(chunks) }),
        )
        response.on('error', reject)
      },
    )
    outgoing.on('error', reject)
    outgoing.end(body)
  })
}

/**
 * RP-initiated logout that ends the whole IdP session without a human: oidc-provider answers
 * the end-session endpoint with a confirmation form (logout=yes signs out of every client).
 * We answer with a redirect to our GET step instead, which submits that same form to
 * oidc-provider's real confirm endpoint (xsrf check, back-channel logout, grant revocation,
 * session cookie removal) and relays its redirect to post_logout_redirect_uri. A test browser
 * that only follows redirects therefore ends the session, like a user clicking "Yes".
 */
export function autoConfirmLogout(): Middleware {
  return async (ctx, next) => {
    if (ctx.method === 'GET' && ctx.path === ROUTES.endSessionAutoConfirm) {
      const xsrf = new URLSearchParams(ctx.querystring).get('xsrf') ?? ''
      const forwarded = await postToSelf(ctx, ROUTES.endSessionConfirm, new URLSearchParams({ xsrf, logout: 'yes' }))
      ctx.status = forwarded.status
      for (const name of ['location', 'set-cookie', 'content-type', 'cache-control'] as const) {
        const value = forwarded.headers[name]
        if (value !== undefined) ctx.set(name, value)
      }
      ctx.body = forwarded.body
      return
    }

    await next()

    if (ctx.oidc?.route === 'end_session' && ctx.status === 200) {
      const secret = ctx.oidc.session?.state?.secret
      if (typeof secret === 'string') {
        ctx.status = 303
        ctx.redirect(`${ROUTES.endSessionAutoConfirm}?${new URLSearchParams({ xsrf: secret })}`)
      }
    }
  }
}
