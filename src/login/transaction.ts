import type { SerializeOptions } from '@fastify/cookie'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { BffError } from '../errors.ts'
import { constantTimeEqual, open, seal, sha256 } from '../crypto.ts'
import { expiredCookieOptions } from '../session/cookie.ts'
import type { Keyring } from '../session/keyring.ts'
import type { DpopKey } from '../dpop.ts'
import type { SessionStore } from '../session/types.ts'

/*
 * The login transaction: one login attempt from `/bff/login` to `/bff/callback`.
 *
 * Starting ({@link beginLoginAttempt}): the pre-login state (state, nonce, PKCE verifier,
 * returnTo ...) is sealed into a short-lived cookie of its own, named after its `state`
 * (several tabs may log in at once), SameSite=Lax (the IdP's redirect back is a cross-site
 * navigation); no store write for an unauthenticated visitor; at most
 * {@link MAX_PENDING_LOGINS} attempts stay pending, the oldest (or unreadable) dropped.
 *
 * Finishing ({@link finishLoginAttempt}): the attempt's cookie is consumed whatever happens,
 * opened, its `state` compared in constant time with the callback's, and claimed once in the
 * store (a replayed callback is refused).
 */

/** What a login attempt carries from `/bff/login` to `/bff/callback` (sealed in its cookie). */
export interface LoginState {
  readonly state: string
  readonly nonce: string
  readonly codeVerifier: string
  readonly returnTo: string
  /** Epoch seconds after which the login attempt is refused. */
  readonly expiresAt: number
  /** The DPoP key the authorization code is bound to (`dpop_jkt`), when DPoP is on. */
  readonly dpop?: DpopKey
  /**
   * The session cookie this browser sent to `/bff/login`: the callback ends that session. The
   * SameSite=Strict cookie is not sent on the IdP's cross-site redirect to the callback, so it
   * is remembered here, where it is sent.
   */
  readonly previousSession?: string
  /** The checked login options (`BFF_LOGIN_PARAMETERS`) sent with the attempt, kept for a retry. */
  readonly parameters?: Readonly<Record<string, string>>
  /** The frontend the attempt was started for (docs/frontends.md): only its callback finishes it. */
  readonly frontend?: string
  /** This attempt already asked the IdP for a fresh authentication (`prompt=login`). */
  readonly reauthenticate?: true
}

const AAD = Buffer.from('bffgate login-state v1')
/**
 * Login cookies larger than this are refused before decrypting, and `/bff/login` refuses to
 * start an attempt whose sealed state would be larger (so that it never fails only after the
 * user authenticated). With at most `MAX_PENDING_LOGINS` of them, the login cookies stay far
 * below browsers' 4 KiB per cookie and the gateway's request-head limit.
 */
export const MAX_LOGIN_COOKIE_LENGTH = 2048

export function sealLoginState(keyring: Keyring, state: LoginState): string {
  const sealed = seal(keyring.current.loginStateKey, Buffer.from(JSON.stringify(state)), AAD)
  return Buffer.concat([keyring.current.kid, sealed]).toString('base64url')
}

/** `undefined` for a missing, tampered, foreign, oversized or expired login cookie. */
export function openLoginState(
  keyring: Keyring,
  cookieValue: string | undefined,
  nowSeconds: number,
): LoginState | undefined {
  if (
    cookieValue === undefined ||
    cookieValue.length > MAX_LOGIN_COOKIE_LENGTH ||
    !/^[A-Za-z0-9_-]+$/.test(cookieValue)
  )
    return undefined
  const bytes = Buffer.from(cookieValue, 'base64url')
  const keys = keyring.byKid(bytes.subarray(0, 4))
  if (keys === undefined) return undefined
  const plaintext = open(keys.loginStateKey, bytes.subarray(4), AAD)
  if (plaintext === undefined) return undefined
  let state: LoginState
  try {
    state = JSON.parse(plaintext.toString('utf8')) as LoginState
  } catch {
    return undefined
  }
  return state.expiresAt > nowSeconds ? state : undefined
}

// ---- The attempt's cookie -----------------------------------------------------------------

/**
 * Cookie attributes (IETF "OAuth 2.0 for Browser-Based Applications", BFF section): `__Host-`
 * prefix, Secure, HttpOnly, Path=/, no Domain; SameSite=Lax because the IdP's redirect back to
 * `/bff/callback` is a cross-site top-level navigation.
 */
const LOGIN_STATE_COOKIE_PREFIX = '__Host-bff-login-'
/** Lifetime of a login attempt, in seconds. */
export const LOGIN_STATE_TTL_SECONDS = 600
/** Login attempts a browser may have pending at once (tabs logging in together); older ones are dropped. */
const MAX_PENDING_LOGINS = 4

/**
 * Each login attempt has a cookie of its own, named after its `state`, so that several tabs
 * logging in at once (say, after a session ended) never overwrite each other's attempt.
 */
function loginStateCookieName(state: string): string {
  return `${LOGIN_STATE_COOKIE_PREFIX}${sha256(state).subarray(0, 9).toString('base64url')}`
}

export function isLoginStateCookie(name: string): boolean {
  return name.startsWith(LOGIN_STATE_COOKIE_PREFIX)
}

function loginStateCookieOptions(): SerializeOptions {
  return { httpOnly: true, secure: true, sameSite: 'lax', path: '/', maxAge: LOGIN_STATE_TTL_SECONDS }
}

// ---- Starting -----------------------------------------------------------------------------

/**
 * Seals a new attempt, or undefined when its cookie would be too large for the callback to
 * accept. Sized before the IdP round trip: a login cookie the callback would refuse must not
 * cost the user an authentication first. What fills it varies (returnTo after
 * percent-encoding, login options, a DPoP key), so the sealed result itself is measured, in
 * its largest form: the callback's one re-authentication retry seals the same state with
 * `reauthenticate`.
 */
export function sealLoginAttempt(keyring: Keyring, state: LoginState): string | undefined {
  const cookie = sealLoginState(keyring, state)
  const largest = state.reauthenticate === true ? cookie : sealLoginState(keyring, { ...state, reauthenticate: true })
  return largest.length > MAX_LOGIN_COOKIE_LENGTH ? undefined : cookie
}

/**
 * Sets the attempt's cookie (from {@link sealLoginAttempt}) and keeps the number of pending
 * login cookies bounded: the oldest (or unreadable) ones go.
 */
export function beginLoginAttempt(
  request: FastifyRequest,
  reply: FastifyReply,
  keyring: Keyring,
  state: LoginState,
  sealed: string,
  nowSeconds: number,
): void {
  const pending = Object.entries(request.cookies)
    .filter(([name]) => isLoginStateCookie(name))
    .map(([name, value]) => ({ name, expiresAt: openLoginState(keyring, value, nowSeconds)?.expiresAt ?? 0 }))
    .sort((a, b) => b.expiresAt - a.expiresAt)
  for (const [i, { name, expiresAt }] of pending.entries()) {
    if (i >= MAX_PENDING_LOGINS - 1 || expiresAt === 0) reply.setCookie(name, '', expiredCookieOptions('lax'))
  }
  reply.setCookie(loginStateCookieName(state.state), sealed, loginStateCookieOptions())
}

// ---- Finishing ----------------------------------------------------------------------------

/**
 * The attempt a callback finishes: its cookie (named after the callback's `state`) is
 * consumed whatever happens next; the state must open, match in constant time and never
 * have been used before. Throws `BFF_ERR_LOGIN_STATE_INVALID` otherwise.
 */
export async function finishLoginAttempt(
  request: FastifyRequest,
  reply: FastifyReply,
  context: { readonly keyring: Keyring; readonly store: Pick<SessionStore, 'claimOnce'>; readonly nowSeconds: number },
): Promise<LoginState> {
  const state = (request.query as Record<string, unknown>).state
  const cookieName = typeof state === 'string' && state !== '' ? loginStateCookieName(state) : undefined
  if (cookieName !== undefined && request.cookies[cookieName] !== undefined)
    reply.setCookie(cookieName, '', expiredCookieOptions('lax'))
  const login =
    cookieName === undefined
      ? undefined
      : openLoginState(context.keyring, request.cookies[cookieName], context.nowSeconds)
  if (login === undefined || typeof state !== 'string' || !constantTimeEqual(state, login.state)) {
    request.log.warn(
      { event: 'login.state_invalid', reason: login === undefined ? 'no_login_cookie' : 'state_mismatch' },
      'callback with an unknown or foreign state',
    )
    throw new BffError('BFF_ERR_LOGIN_STATE_INVALID')
  }
  if (!(await context.store.claimOnce('login', login.state, LOGIN_STATE_TTL_SECONDS))) {
    request.log.warn({ event: 'login.state_replayed' }, 'callback replayed a used state')
    throw new BffError('BFF_ERR_LOGIN_STATE_INVALID')
  }
  return login
}
