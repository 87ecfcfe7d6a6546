import {
  createRemoteJWKSet,
  customFetch,
  errors as joseErrors,
  jwtVerify,
  type FetchImplementation,
  type JWTPayload,
} from 'jose'

/** The event a back-channel logout token must carry (OpenID Connect Back-Channel Logout 1.0 §2.4). */
export const BACKCHANNEL_LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout'

/** What a valid logout token asks for: end the IdP session `sid`, or every session of `sub`. */
export interface LogoutRequest {
  readonly iss: string
  readonly sid?: string
  readonly sub?: string
  readonly jti: string
  /** Seconds the `jti` must be remembered: at least the token's remaining lifetime. */
  readonly rememberSeconds: number
}

/** A logout token that failed validation; `reason` is safe to log and to answer with. */
export class LogoutTokenError extends Error {
  readonly reason: string
  constructor(reason: string, options: { cause?: unknown } = {}) {
    super(`invalid logout token: ${reason}`, options)
    this.name = 'LogoutTokenError'
    this.reason = reason
  }
}

export interface LogoutTokenVerifierOptions {
  readonly issuer: string
  readonly clientId: string
  readonly jwksUri: string
  /** Signature algorithms the IdP may use; `none` and symmetric ones are never accepted. */
  readonly algorithms?: readonly string[]
  /** Fetches the JWKS (timed and traced by the caller); the global fetch when absent. */
  readonly fetch?: FetchImplementation
  /** The clock, epoch milliseconds; `Date.now` by default. */
  readonly now?: () => number
}

/** Allowed clock difference, seconds. */
const CLOCK_TOLERANCE_SECONDS = 60
/** Oldest `iat` accepted, seconds (Auth0's logout tokens live 2 minutes). */
const MAX_AGE_SECONDS = 300

const ASYMMETRIC = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519']

/**
 * Verifies back-channel logout tokens with jose against the issuer's JWKS: an allowed
 * asymmetric signature (never `none`), `iss`, `aud` = our client id, `iat` within tolerance,
 * `exp` when present, a `jti`, the back-channel-logout event, no `nonce`, and `sid` or `sub`.
 * Replay of a `jti` is the caller's to refuse (it needs the shared store).
 */
export function createLogoutTokenVerifier(
  options: LogoutTokenVerifierOptions,
): (token: string) => Promise<LogoutRequest> {
  const now = options.now ?? Date.now
  const keys = createRemoteJWKSet(new URL(options.jwksUri), {
    timeoutDuration: 3000,
    cooldownDuration: 30_000,
    ...(options.fetch !== undefined && { [customFetch]: options.fetch }),
  })
  const algorithms = (options.algorithms ?? ASYMMETRIC).filter((alg) => ASYMMETRIC.includes(alg))
  const tolerance = CLOCK_TOLERANCE_SECONDS
  const maxAge = MAX_AGE_SECONDS

  return async (token) => {
    let payload: JWTPayload
    try {
      ;({ payload } = await jwtVerify(token, keys, {
        issuer: options.issuer,
        audience: options.clientId,
        algorithms: algorithms.length > 0 ? algorithms : ASYMMETRIC,
        clockTolerance: tolerance,
        currentDate: new Date(now()),
        requiredClaims: ['iat', 'jti'],
      }))
    } catch (err) {
      throw new LogoutTokenError(describeJoseError(err), { cause: err })
    }
    const nowSeconds = Math.floor(now() / 1000)
    if (payload.iat! > nowSeconds + tolerance) throw new LogoutTokenError('iat is in the future')
    if (payload.iat! < nowSeconds - maxAge - tolerance) throw new LogoutTokenError('iat is too old')
    const events = payload.events
    if (events === null || typeof events !== 'object' || Array.isArray(events))
      throw new LogoutTokenError('events claim missing')
    const event = (events as Record<string, unknown>)[BACKCHANNEL_LOGOUT_EVENT]
    if (event === null || typeof event !== 'object' || Array.isArray(event))
      throw new LogoutTokenError('events claim lacks the back-channel logout event')
    if ('nonce' in payload) throw new LogoutTokenError('nonce is present')
    if (typeof payload.jti !== 'string' || payload.jti === '') throw new LogoutTokenError('jti missing')
    const sid = typeof payload.sid === 'string' && payload.sid !== '' ? payload.sid : undefined
    const sub = typeof payload.sub === 'string' && payload.sub !== '' ? payload.sub : undefined
    if (sid === undefined && sub === undefined) throw new LogoutTokenError('neither sid nor sub present')
    const expiresAt = typeof payload.exp === 'number' ? payload.exp : payload.iat! + maxAge
    return {
      iss: payload.iss!,
      ...(sid !== undefined && { sid }),
      ...(sub !== undefined && { sub }),
      jti: payload.jti,
      rememberSeconds: Math.max(expiresAt - nowSeconds, maxAge) + tolerance,
    }
  }
}

function describeJoseError(err: unknown): string {
  if (err instanceof joseErrors.JWTClaimValidationFailed) return `${err.claim} check failed (${err.reason})`
  if (err instanceof joseErrors.JWTExpired) return 'expired'
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return 'bad signature'
  if (err instanceof joseErrors.JWKSNoMatchingKey) return "signed with a key not in the issuer's JWKS"
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return 'signature algorithm not allowed'
  if (err instanceof joseErrors.JWSInvalid || err instanceof joseErrors.JWTInvalid) return 'malformed token'
  if (err instanceof joseErrors.JOSEError) return err.code
  return 'verification failed'
}
