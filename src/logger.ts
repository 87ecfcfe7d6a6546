import type { FastifyServerOptions } from 'fastify'

/** What an error code looks like (`ECONNREFUSED`, `BFF_ERR_*`, `FST_ERR_*`, `ERR_*`, `UND_ERR_*`): upper case, digits, `_`. */
const ERROR_CODE = /^[A-Z][A-Z0-9_]{0,63}$/
/** How deep `cause` chains (and `AggregateError`'s `errors`) are followed. */
const CAUSE_DEPTH = 4

interface LoggedError {
  type: string
  message: string
  code?: string
  stack?: string
  cause?: LoggedError
  errors?: LoggedError[]
}

/**
 * A `code` field as logged: an error code is kept, anything else (an authorization code, a
 * value someone put there) is replaced. Applies to the `code` of every log object and of every
 * logged error and its causes.
 */
export function loggedCode (value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined
  return typeof value === 'string' && ERROR_CODE.test(value) ? value : '[redacted]'
}

function messageWithCauses (err: Error): string {
  let message = err.message
  let cause = err.cause
  for (let depth = 0; cause instanceof Error && depth < CAUSE_DEPTH; depth++, cause = cause.cause) {
    if (cause.message !== '') message += `: ${cause.message}`
  }
  return message
}

/**
 * An error as logged: its type, message, error code, stack and causes, and nothing else.
 * Libraries hang response bodies, token sets and request options on their errors (openid-client's
 * `cause` can be a token endpoint's JSON); those never reach the log. `stack: false` for
 * expected failures (a 4xx), whose stack says nothing.
 */
export function loggedError (err: unknown, options: { stack?: boolean } = {}, depth = 0): LoggedError {
  // Not an Error (a response body, a string): only its type, since anything could be in it.
  if (!(err instanceof Error)) return { type: err === null ? 'null' : typeof err, message: '(not an Error: not logged)' }
  // As pino's own serializer: the message followed by its causes' (`a: b: c`), so one field says what failed and why.
  const out: LoggedError = { type: err.name, message: depth === 0 ? messageWithCauses(err) : err.message }
  const code = loggedCode((err as { code?: unknown }).code)
  if (code !== undefined) out.code = code
  if (options.stack !== false && err.stack !== undefined) out.stack = err.stack
  if (depth < CAUSE_DEPTH) {
    if (err.cause !== undefined) out.cause = loggedError(err.cause, options, depth + 1)
    if (err instanceof AggregateError && Array.isArray(err.errors)) out.errors = err.errors.slice(0, 5).map((e: unknown) => loggedError(e, options, depth + 1))
  }
  return out
}

/**
 * pino options: JSON lines, secrets kept out by construction rather than by a walk over every
 * log object. fastify's own per-request lines are off (see `buildApp`): bffgate writes one access
 * line per request itself (http/observability.ts). Errors are logged through
 * {@link loggedError} (type, message, code, stack, causes only) and `code` fields through
 * {@link loggedCode}, so neither a response body hung on an error nor an authorization code can be
 * logged; redaction is left with exact paths only (wildcard paths make pino copy and walk every
 * logged object: ~7 µs per line measured). Request URLs are logged without their query string,
 * which can carry an authorization code, state or anything an SPA put there.
 */
export function loggerOptions (level: string): NonNullable<FastifyServerOptions['logger']> {
  return {
    level,
    redact: {
      paths: [
        'req.headers.cookie',
        'req.headers.authorization',
        'res.headers["set-cookie"]',
      ],
      censor: '[redacted]',
    },
    serializers: {
      req (request: { method: string; url: string; id: string; ip?: string }) {
        const question = request.url.indexOf('?')
        return { id: request.id, method: request.method, url: question === -1 ? request.url : request.url.slice(0, question) }
      },
      // fastify's type wants a `stack` on every serialized error; ours has one only when the error had one.
      err: ((err: unknown) => loggedError(err)) as unknown as (err: Error) => { type: string; message: string; stack: string },
      code: loggedCode,
    },
  }
}
