import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify'
import { BffError, type ErrorCode } from '../errors.ts'
import { prepareError } from '../http/error-handler.ts'
import { SetError, type SetErrorCode } from './security-event.ts'
import type { SetOutcome } from './set-processor.ts'

/** Where transmitters push SETs. */
export const SSF_PUSH_PATH = '/bff/ssf/events'
/** Largest body accepted: one SET is a few KiB. */
const BODY_LIMIT_BYTES = 64 * 1024
const MEDIA_TYPE = 'application/secevent+jwt'

const CODE_BY_ERR: Record<SetErrorCode, ErrorCode> = {
  invalid_request: 'BFF_ERR_SET_INVALID_REQUEST',
  invalid_key: 'BFF_ERR_SET_INVALID_KEY',
  invalid_issuer: 'BFF_ERR_SET_INVALID_ISSUER',
  invalid_audience: 'BFF_ERR_SET_INVALID_AUDIENCE',
  authentication_failed: 'BFF_ERR_SET_AUTHENTICATION_FAILED',
  access_denied: 'BFF_ERR_SET_AUTHENTICATION_FAILED',
}

/** Equal strings, in time independent of where they differ (hashes first: equal lengths). */
export function sameSecret(given: string, expected: string): boolean {
  const digest = (value: string) => createHash('sha256').update(value).digest()
  return timingSafeEqual(digest(given), digest(expected))
}

/**
 * `POST /bff/ssf/events`: push delivery of Security Event Tokens (RFC 8935). The transmitter
 * authenticates with the configured `Authorization` value (compared in constant time, before
 * the body is read); the body is one SET, `Content-Type: application/secevent+jwt`. 202 once
 * its events are carried out; 400 with RFC 8935's `{"err", "description"}` for a SET that
 * fails validation (nothing ended); 415 for another media type; 503 with `Retry-After` when
 * the session store is unreachable (a general HTTP error the transmitter retries; the `jti`
 * is not claimed, so the retry is carried out).
 */
export function registerSsfPushRoute(
  app: FastifyInstance,
  options: { authorization: string; process: (token: string) => Promise<SetOutcome> },
): void {
  app.register(async (scope) => {
    scope.removeAllContentTypeParsers()
    scope.addContentTypeParser(
      MEDIA_TYPE,
      { parseAs: 'string', bodyLimit: BODY_LIMIT_BYTES },
      (_request, body, done) => {
        done(null, body)
      },
    )
    scope.setErrorHandler((err: FastifyError | BffError, request, reply) => {
      if (err instanceof BffError && err.statusCode >= 500) {
        request.log.error(
          { event: 'ssf.failed', code: err.code, err: err.cause ?? err },
          'security event could not be carried out',
        )
        return sendSetError(reply, err)
      }
      if (!(err instanceof BffError) && (typeof err.statusCode !== 'number' || err.statusCode >= 500)) {
        request.log.error({ event: 'ssf.error', err }, 'unexpected error')
        return sendSetError(reply, new BffError('BFF_ERR_INTERNAL'))
      }
      const refused =
        err instanceof BffError
          ? err
          : err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE'
            ? new BffError('BFF_ERR_SET_MEDIA_TYPE')
            : new BffError('BFF_ERR_SET_INVALID_REQUEST', {
                message: err.code === 'FST_ERR_CTP_BODY_TOO_LARGE' ? 'body too large' : 'malformed request',
              })
      request.log.warn({ event: 'ssf.rejected', code: refused.code, reason: refused.message }, 'security event refused')
      return sendSetError(reply, refused)
    })
    // Before the body is read: an unauthenticated sender gets nothing parsed or verified.
    scope.addHook('onRequest', async (request) => {
      const given = request.headers.authorization
      if (given === undefined || !sameSecret(given, options.authorization))
        throw new BffError('BFF_ERR_SET_AUTHENTICATION_FAILED')
    })
    scope.post(SSF_PUSH_PATH, async (request, reply) => {
      const token = typeof request.body === 'string' ? request.body.trim() : ''
      if (token === '') throw new BffError('BFF_ERR_SET_INVALID_REQUEST', { message: 'empty body' })
      let outcome: SetOutcome
      try {
        outcome = await options.process(token)
      } catch (err) {
        if (err instanceof SetError) throw new BffError(CODE_BY_ERR[err.err], { message: err.description, cause: err })
        if (err instanceof BffError) throw err
        // The transmitter's keys could not be fetched: not the SET's fault, so a retryable 503.
        throw new BffError('BFF_ERR_IDP_UNAVAILABLE', {
          message: "the transmitter's keys could not be fetched; try again shortly",
          cause: err,
          retryAfter: 5,
        })
      }
      if (outcome.kind === 'replayed')
        throw new BffError('BFF_ERR_SET_INVALID_REQUEST', { message: 'jti already processed' })
      return reply.code(202).header('cache-control', 'no-store').send()
    })
  })
}

/** RFC 8935 §2.4's error body, `{"err": ..., "description": ...}`, with bffgate's status and headers. */
function sendSetError(reply: FastifyReply, error: BffError): FastifyReply {
  const body = prepareError(reply, error)
  return reply.send({ err: body.error, description: body.message })
}
