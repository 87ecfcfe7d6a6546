import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { BffError, errorDefinitions, type ErrorCode } from '../errors.ts'
import { loggedError } from '../logger.ts'

/** The `BFF_ERR_*` code each errored reply answered with, for its access line. */
const answeredCodes = new WeakMap<FastifyReply, ErrorCode>()

/** The code of the known error this reply answered with, if any (the access line's `code`). */
export function answeredErrorCode(reply: FastifyReply): ErrorCode | undefined {
  return answeredCodes.get(reply)
}

/**
 * Sets a known error's status and headers on the reply and returns its JSON body
 * (`{"error": ..., "message": ...}`), for callers that hand the body to someone else to send.
 */
export function prepareError(reply: FastifyReply, error: BffError): { error: string; message: string } {
  answeredCodes.set(reply, error.code)
  if (error.retryAfter !== undefined) reply.header('retry-after', String(error.retryAfter))
  reply.code(error.statusCode).header('cache-control', 'no-store').type('application/json; charset=utf-8')
  return { error: error.error, message: error.message }
}

/** Sends the JSON error body of a known error. */
export function sendError(reply: FastifyReply, error: BffError): FastifyReply {
  return reply.send(prepareError(reply, error))
}

/**
 * Every failure becomes a JSON answer. Known errors keep their status and message; fastify's
 * own 4xx (bad JSON, body too large ...) keep their status with a generic code; anything else
 * is a 500 whose details go to the log only. An expected 4xx is logged at debug without a
 * stack (its access line already carries the status and code); a 5xx at error with its cause.
 */
export function registerErrorHandler(
  app: FastifyInstance,
  options: {
    /** With several frontends: whether no frontend answers the request's host and path (a 404 `frontend_unknown`). */
    readonly isUnknownFrontend?: (request: FastifyRequest) => boolean
  } = {},
): void {
  app.setErrorHandler((err: FastifyError | BffError, request, reply) => {
    if (err instanceof BffError) {
      if (err.statusCode >= 500)
        request.log.error({ event: 'request.failed', code: err.code, err: err.cause ?? err }, err.message)
      else
        request.log.debug(
          { event: 'request.failed', code: err.code, failure: loggedError(err.cause ?? err, { stack: false }) },
          err.message,
        )
      return sendError(reply, err)
    }
    const status = typeof err.statusCode === 'number' ? err.statusCode : 500
    if (status >= 400 && status < 500) {
      request.log.debug({ event: 'request.rejected', code: err.code, status }, err.message)
      const code: ErrorCode = status === 404 ? 'BFF_ERR_NOT_FOUND' : 'BFF_ERR_BAD_REQUEST'
      answeredCodes.set(reply, code)
      return reply
        .code(status)
        .header('cache-control', 'no-store')
        .send({ error: errorDefinitions[code].error, message: err.message })
    }
    request.log.error({ event: 'request.error', err }, 'unexpected error')
    return sendError(reply, new BffError('BFF_ERR_INTERNAL'))
  })
  app.setNotFoundHandler((request, reply) =>
    sendError(
      reply,
      new BffError(options.isUnknownFrontend?.(request) === true ? 'BFF_ERR_FRONTEND_UNKNOWN' : 'BFF_ERR_NOT_FOUND'),
    ),
  )
}
