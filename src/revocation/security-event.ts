import { errors as joseErrors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose'
import { resolveSubject, SubjectError, type SubjectContext, type SubjectTarget } from './subject.ts'

/** CAEP 1.0 event types bffgate acts on, and SSF 1.0's own. */
export const SESSION_REVOKED = 'https://schemas.openid.net/secevent/caep/event-type/session-revoked'
export const CREDENTIAL_CHANGE = 'https://schemas.openid.net/secevent/caep/event-type/credential-change'
export const VERIFICATION = 'https://schemas.openid.net/secevent/ssf/event-type/verification'
export const STREAM_UPDATED = 'https://schemas.openid.net/secevent/ssf/event-type/stream-updated'

/** RFC 8935 §2.4 error codes (also RFC 8936's `setErrs`). */
export type SetErrorCode =
  | 'invalid_request'
  | 'invalid_key'
  | 'invalid_issuer'
  | 'invalid_audience'
  | 'authentication_failed'
  | 'access_denied'

/** A SET that failed validation; `description` is safe to log and to answer with. */
export class SetError extends Error {
  readonly err: SetErrorCode
  readonly description: string
  constructor(err: SetErrorCode, description: string, options: { cause?: unknown } = {}) {
    super(`invalid security event token: ${description}`, options)
    this.name = 'SetError'
    this.err = err
    this.description = description
  }
}

/** A SET whose signature, issuer, audience, type and age were checked. */
export interface VerifiedSet {
  readonly iss: string
  readonly jti: string
  readonly iat: number
  readonly subId: unknown
  readonly events: Readonly<Record<string, Readonly<Record<string, unknown>>>>
  /** Seconds its `jti` must be remembered to refuse a replay while it would still be accepted. */
  readonly rememberSeconds: number
}

export interface SetVerifierOptions {
  readonly issuer: string
  readonly audience: string
  readonly keys: JWTVerifyGetKey
  readonly maxAgeSeconds: number
  readonly now?: () => number
}

/** Allowed clock difference, seconds. */
const CLOCK_TOLERANCE_SECONDS = 60
/** Asymmetric signatures only (SSF 1.0 §4.1.3: signed by the transmitter's published keys). */
export const ASYMMETRIC_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
]

/**
 * Verifies Security Event Tokens (RFC 8417, profiled by SSF 1.0 §4): a signature by a key in
 * the transmitter's JWKS (never `none` or a shared secret), header `typ` `secevent+jwt`, `iss`
 * and `aud` exactly as configured, `iat` neither in the future nor older than `maxAgeSeconds`,
 * a `jti`, and an `events` object of event objects. Replay of the `jti` is the caller's to
 * refuse (it needs the shared store).
 */
export function createSetVerifier(options: SetVerifierOptions): (token: string) => Promise<VerifiedSet> {
  const now = options.now ?? Date.now
  return async (token) => {
    let payload: JWTPayload
    try {
      ;({ payload } = await jwtVerify(token, options.keys, {
        issuer: options.issuer,
        audience: options.audience,
        typ: 'secevent+jwt',
        algorithms: ASYMMETRIC_ALGORITHMS,
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
        currentDate: new Date(now()),
        requiredClaims: ['iat', 'jti'],
      }))
    } catch (err) {
      throw toSetError(err)
    }
    const nowSeconds = Math.floor(now() / 1000)
    const iat = payload.iat!
    if (iat > nowSeconds + CLOCK_TOLERANCE_SECONDS) throw new SetError('invalid_request', 'iat is in the future')
    if (iat < nowSeconds - options.maxAgeSeconds) throw new SetError('invalid_request', 'iat is too old')
    if (typeof payload.jti !== 'string' || payload.jti === '' || payload.jti.length > 256)
      throw new SetError('invalid_request', 'jti missing or malformed')
    const events = payload.events
    if (events === null || typeof events !== 'object' || Array.isArray(events) || Object.keys(events).length === 0)
      throw new SetError('invalid_request', 'events claim missing')
    for (const value of Object.values(events)) {
      if (value === null || typeof value !== 'object' || Array.isArray(value))
        throw new SetError('invalid_request', 'an event is not an object')
    }
    return {
      iss: payload.iss!,
      jti: payload.jti,
      iat,
      subId: payload.sub_id,
      events: events as Record<string, Record<string, unknown>>,
      rememberSeconds: Math.max(iat + options.maxAgeSeconds - nowSeconds, 0) + CLOCK_TOLERANCE_SECONDS,
    }
  }
}

/** jose's verdict in RFC 8935's words. */
function toSetError(err: unknown): SetError {
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    if (err.claim === 'iss')
      return new SetError('invalid_issuer', 'iss is not the configured transmitter', { cause: err })
    if (err.claim === 'aud') return new SetError('invalid_audience', 'aud is not this receiver', { cause: err })
    if (err.claim === 'typ') return new SetError('invalid_request', 'typ must be secevent+jwt', { cause: err })
    return new SetError('invalid_request', `${err.claim} check failed (${err.reason})`, { cause: err })
  }
  if (err instanceof joseErrors.JWTExpired) return new SetError('invalid_request', 'expired', { cause: err })
  if (err instanceof joseErrors.JWSSignatureVerificationFailed)
    return new SetError('invalid_key', 'bad signature', { cause: err })
  if (err instanceof joseErrors.JWKSNoMatchingKey || err instanceof joseErrors.JWKSMultipleMatchingKeys)
    return new SetError('invalid_key', "signed with a key not in the transmitter's JWKS", { cause: err })
  if (err instanceof joseErrors.JOSEAlgNotAllowed)
    return new SetError('invalid_key', 'signature algorithm not allowed', { cause: err })
  if (
    err instanceof joseErrors.JWSInvalid ||
    err instanceof joseErrors.JWTInvalid ||
    err instanceof joseErrors.JOSENotSupported
  )
    return new SetError('invalid_request', 'malformed token', { cause: err })
  if (err instanceof joseErrors.JWKSTimeout || err instanceof joseErrors.JWKSInvalid) throw err
  if (err instanceof joseErrors.JOSEError) return new SetError('invalid_request', err.code, { cause: err })
  // Not the token's fault (the JWKS could not be fetched): the caller answers 503.
  throw err
}

/** What one event of a SET asks bffgate to do. */
export type EventAction =
  | { readonly kind: 'end'; readonly event: 'session-revoked' | 'credential-change'; readonly target: SubjectTarget }
  | { readonly kind: 'verification'; readonly state?: string }
  | { readonly kind: 'ignore'; readonly event: string; readonly reason: string }

/**
 * The actions of a verified SET, one per event. CAEP `session-revoked` ends the IdP session
 * the subject names (a complex subject's `session`), else every session of the user;
 * `credential-change` ends every session of the user (a changed password or removed factor
 * says nothing about which session used it, so all of them go; a subject naming only a
 * session ends that one). The subject is the SET's `sub_id` (SSF 1.0 §3.1), or the event's
 * legacy `subject` member. Unknown event types are ignored, as SSF 1.0 §4.2.3 asks.
 * Throws {@link SetError} for a malformed subject of an event bffgate acts on.
 */
export function interpretSet(set: VerifiedSet, context: SubjectContext): EventAction[] {
  return Object.entries(set.events).map(([type, event]): EventAction => {
    switch (type) {
      case VERIFICATION:
        return { kind: 'verification', ...(typeof event.state === 'string' && { state: event.state }) }
      case SESSION_REVOKED:
      case CREDENTIAL_CHANGE: {
        const subject = set.subId ?? event.subject
        if (subject === undefined) throw new SetError('invalid_request', 'sub_id missing')
        let target: SubjectTarget
        try {
          target = resolveSubject(subject, context)
        } catch (err) {
          if (err instanceof SubjectError) throw new SetError('invalid_request', err.reason, { cause: err })
          throw err
        }
        if (type === CREDENTIAL_CHANGE && target.kind === 'session' && target.sub !== undefined)
          target = { kind: 'user', sub: target.sub }
        return { kind: 'end', event: type === SESSION_REVOKED ? 'session-revoked' : 'credential-change', target }
      }
      default:
        return {
          kind: 'ignore',
          event: type,
          reason: type === STREAM_UPDATED ? 'stream status change' : 'event type not acted on',
        }
    }
  })
}
