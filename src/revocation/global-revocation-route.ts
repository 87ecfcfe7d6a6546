import type { FastifyError, FastifyInstance, FastifyRequest } from 'fastify'
import { errors as joseErrors, jwtVerify, type JWTVerifyGetKey } from 'jose'
import { BffError } from '../errors.ts'
import type { SessionEnding } from '../session/ending.ts'
import { sendError } from '../http/error-handler.ts'
import type { SessionStore } from '../session/types.ts'
import { endSessionsOf } from './end-sessions.ts'
import { ASYMMETRIC_ALGORITHMS } from './security-event.ts'
import { resolveSubject, SubjectError } from './subject.ts'
import { carryOutClaimed } from '../session/claim.ts'

export const GLOBAL_REVOCATION_PATH = '/bff/global-token-revocation'
const BODY_LIMIT_BYTES = 16 * 1024
/** Longest lifetime (`exp` − `iat`) of a caller's token, seconds: it is a one-shot credential. */
const MAX_TOKEN_LIFETIME_SECONDS = 600
const CLOCK_TOLERANCE_SECONDS = 60
/** Namespace of used caller-token ids in the store's one-time markers. */
const JTI_NAMESPACE = 'gtr-jti'
/** Longest `jti` accepted (it becomes part of a store key). */
const MAX_JTI_LENGTH = 256

export interface GlobalRevocationOptions {
  readonly issuer: string
  readonly audience: string
  readonly keys: JWTVerifyGetKey
  readonly store: SessionStore
  readonly oidcIssuer: string
  /** The frontends whose sessions are indexed under `oidcIssuer` (every one of that issuer ends); absent: the one frontend. */
  readonly frontends?: readonly string[]
  readonly ending: SessionEnding
  /** The clock, epoch milliseconds; `Date.now` by default. */
  readonly now?: () => number
}

/**
 * `POST /bff/global-token-revocation` (draft-parecki-oauth-global-token-revocation §3): ends
 * every session of the user `{"sub_id": <subject identifier>}` names, on every replica.
 *
 * The caller authenticates with a bearer JWT (RFC 7523 style, what Okta Universal Logout
 * sends): signed by a key of the configured issuer (asymmetric only), `aud` this endpoint,
 * `iat`, `exp` (a short lifetime) and `jti` present, and no explicit type of another JWT
 * application (`typ` `…+jwt`: a SET, a logout token, an access token; the draft defines none
 * for this token, so an untyped or `JWT` one is accepted). The `jti` is claimed atomically
 * before any session ends, so one token carries out one revocation, however many requests
 * carry it at once; the claim is dropped again when the revocation then fails (503), so the
 * caller's retry with the same token works. A JWT, not a shared
 * secret: nothing to distribute or rotate on bffgate's side, it expires within minutes, and a
 * leaked one cannot be replayed (draft §6.1 asks for narrowly scoped credentials).
 *
 * 204 when done (also when the user had no session: nothing to revoke is success, and it says
 * nothing about who is logged in); 400 malformed body or unknown subject format; 401 bad or
 * missing token; 403 an `iss_sub` of an issuer the caller may not act on; 422 a recognised
 * format bffgate cannot map (e-mail); 503 when the session store is unreachable.
 */
export function registerGlobalRevocationRoute(app: FastifyInstance, options: GlobalRevocationOptions): void {
  // The verified caller token's replay key, from the authentication hook to the handler.
  const now = options.now ?? Date.now
  const callerTokens = new WeakMap<FastifyRequest, { replayKey: string; rememberSeconds: number }>()
  app.register(async (scope) => {
    scope.removeAllContentTypeParsers()
    scope.addContentTypeParser(
      'application/json',
      { parseAs: 'string', bodyLimit: BODY_LIMIT_BYTES },
      (_request, body, done) => {
        try {
          done(null, JSON.parse(body as string))
        } catch {
          done(new BffError('BFF_ERR_REVOCATION_SUBJECT_INVALID', { message: 'body is not JSON' }))
        }
      },
    )
    scope.setErrorHandler((err: FastifyError | BffError, request, reply) => {
      if (err instanceof BffError) {
        if (err.statusCode >= 500)
          request.log.error(
            { event: 'global_revocation.failed', code: err.code, err: err.cause ?? err },
            'global token revocation could not be carried out',
          )
        else
          request.log.warn(
            { event: 'global_revocation.rejected', code: err.code, reason: err.message },
            'global token revocation refused',
          )
        if (err.statusCode === 401) reply.header('www-authenticate', 'Bearer error="invalid_token"')
        return sendError(reply, err)
      }
      if (typeof err.statusCode === 'number' && err.statusCode < 500) {
        return sendError(
          reply,
          new BffError('BFF_ERR_REVOCATION_SUBJECT_INVALID', {
            message:
              err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE'
                ? 'Content-Type must be application/json'
                : 'malformed request',
          }),
        )
      }
      request.log.error({ event: 'global_revocation.error', err }, 'unexpected error')
      return sendError(reply, new BffError('BFF_ERR_INTERNAL'))
    })

    // Before the body is read: the caller must be authenticated first.
    scope.addHook('onRequest', async (request) => {
      const match = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/.exec(request.headers.authorization ?? '')
      if (match === null) throw new BffError('BFF_ERR_REVOCATION_UNAUTHORIZED', { message: 'bearer token missing' })
      let payload, protectedHeader
      try {
        ;({ payload, protectedHeader } = await jwtVerify(match[1]!, options.keys, {
          issuer: options.issuer,
          audience: options.audience,
          algorithms: ASYMMETRIC_ALGORITHMS,
          clockTolerance: CLOCK_TOLERANCE_SECONDS,
          currentDate: new Date(now()),
          requiredClaims: ['iat', 'exp', 'jti'],
        }))
      } catch (err) {
        if (
          err instanceof joseErrors.JOSEError &&
          !(err instanceof joseErrors.JWKSTimeout) &&
          !(err instanceof joseErrors.JWKSInvalid)
        ) {
          throw new BffError('BFF_ERR_REVOCATION_UNAUTHORIZED', {
            message:
              err instanceof joseErrors.JWTClaimValidationFailed ? `${err.claim} check failed` : 'token not valid',
            cause: err,
          })
        }
        throw new BffError('BFF_ERR_IDP_UNAVAILABLE', {
          message: "the caller's keys could not be fetched; try again shortly",
          cause: err,
          retryAfter: 5,
        })
      }
      if (payload.exp! - payload.iat! > MAX_TOKEN_LIFETIME_SECONDS)
        throw new BffError('BFF_ERR_REVOCATION_UNAUTHORIZED', {
          message: `token lifetime over ${MAX_TOKEN_LIFETIME_SECONDS} s`,
        })
      if (payload.iat! > now() / 1000 + CLOCK_TOLERANCE_SECONDS)
        throw new BffError('BFF_ERR_REVOCATION_UNAUTHORIZED', { message: 'iat is in the future' })
      // RFC 8725 §3.11: a token explicitly typed for another application is not a caller token.
      if (typeof protectedHeader.typ === 'string' && /\+jwt$/i.test(protectedHeader.typ))
        throw new BffError('BFF_ERR_REVOCATION_UNAUTHORIZED', { message: 'typ names another kind of token' })
      if (typeof payload.jti !== 'string' || payload.jti === '' || payload.jti.length > MAX_JTI_LENGTH)
        throw new BffError('BFF_ERR_REVOCATION_UNAUTHORIZED', { message: 'jti check failed' })
      callerTokens.set(request, {
        replayKey: `${payload.iss}\u0000${payload.jti}`,
        rememberSeconds: payload.exp! - Math.floor(now() / 1000) + CLOCK_TOLERANCE_SECONDS,
      })
    })

    scope.post(GLOBAL_REVOCATION_PATH, async (request, reply) => {
      const body = request.body
      if (body === null || typeof body !== 'object' || Array.isArray(body) || !('sub_id' in body))
        throw new BffError('BFF_ERR_REVOCATION_SUBJECT_INVALID', { message: 'sub_id missing' })
      let target
      try {
        target = resolveSubject((body as { sub_id: unknown }).sub_id, {
          userIssuers: [options.oidcIssuer, options.issuer],
        })
      } catch (err) {
        if (err instanceof SubjectError)
          throw new BffError('BFF_ERR_REVOCATION_SUBJECT_INVALID', { message: err.reason, cause: err })
        throw err
      }
      if (target.kind === 'foreign') throw new BffError('BFF_ERR_REVOCATION_FORBIDDEN')
      if (target.kind === 'unmappable')
        throw new BffError('BFF_ERR_REVOCATION_SUBJECT_UNSUPPORTED', { message: `${errorMessage()}: ${target.reason}` })
      // One token, one revocation: claimed (SET NX) before anything ends, so concurrent
      // requests carrying it cannot all pass a check made before any of them claimed it.
      const caller = callerTokens.get(request)!
      const claim = await options.store.claim(JTI_NAMESPACE, caller.replayKey, caller.rememberSeconds)
      if (claim === undefined) throw new BffError('BFF_ERR_REVOCATION_UNAUTHORIZED', { message: 'token already used' })
      // Not carried out (the store failed on the way): the caller's retry with the same token
      // must work. Should the release fail too, the token stays used and the caller needs a new one.
      await carryOutClaimed(
        claim,
        // "Revoke all of the user's tokens": a subject naming one session still ends the user where known.
        async () =>
          endSessionsOf(
            options.ending,
            options.oidcIssuer,
            target.kind === 'session' && target.sub !== undefined ? { kind: 'user', sub: target.sub } : target,
            'global_revocation',
            request.log,
            options.frontends,
          ),
        (releaseErr) =>
          request.log.warn(
            { event: 'global_revocation.release_failed', err: releaseErr },
            "the caller token's claim could not be dropped; a retry needs a new token",
          ),
      )
      return reply.code(204).header('cache-control', 'no-store').send()
    })
  })
}

function errorMessage(): string {
  return 'bffgate cannot map this subject identifier to sessions; nothing was ended'
}
