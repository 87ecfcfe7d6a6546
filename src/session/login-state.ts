import { open, seal } from './crypto.ts'
import type { Keyring } from './keyring.ts'
import type { DpopKey } from './types.ts'

/**
 * The pre-login state (state, nonce, PKCE verifier, returnTo), kept in an encrypted,
 * short-lived cookie: bound to the browser that started the login, and no store write for
 * an unauthenticated visitor. Single use is enforced at the callback (`claimOnce`).
 */
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

export function sealLoginState (keyring: Keyring, state: LoginState): string {
  const sealed = seal(keyring.current.loginStateKey, Buffer.from(JSON.stringify(state)), AAD)
  return Buffer.concat([keyring.current.kid, sealed]).toString('base64url')
}

/** `undefined` for a missing, tampered, foreign, oversized or expired login cookie. */
export function openLoginState (keyring: Keyring, cookieValue: string | undefined, nowSeconds: number): LoginState | undefined {
  if (cookieValue === undefined || cookieValue.length > MAX_LOGIN_COOKIE_LENGTH || !/^[A-Za-z0-9_-]+$/.test(cookieValue)) return undefined
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
