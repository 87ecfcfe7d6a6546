/**
 * Every error bffgate answers with, in one place (docs/errors.md lists the same set; a test
 * keeps the two equal).
 *
 * Each has an internal `code` (`BFF_ERR_<AREA>_<WHAT>`, for logs) and a stable public `error`
 * (snake_case, for the SPA to branch on); responses are `{"error": ..., "message": ...}`.
 */
export interface ErrorDefinition {
  readonly error: string
  readonly statusCode: number
  readonly message: string
}

export const errorDefinitions = {
  BFF_ERR_SESSION_REQUIRED: { error: 'login_required', statusCode: 401, message: 'No session: log in at /bff/login' },
  BFF_ERR_SESSION_ENDED: {
    error: 'session_ended',
    statusCode: 401,
    message: 'The session has ended: log in again at /bff/login',
  },
  BFF_ERR_CSRF_HEADER_MISSING: {
    error: 'csrf_failed',
    statusCode: 403,
    message: 'The request must carry the header "x-csrf: 1"',
  },
  BFF_ERR_CSRF_ORIGIN_MISMATCH: { error: 'csrf_failed', statusCode: 403, message: 'Cross-site request refused' },
  BFF_ERR_LOGOUT_SID_INVALID: {
    error: 'csrf_failed',
    statusCode: 403,
    message: 'This logout URL does not belong to the current session: log out with the logoutUrl of /bff/user',
  },
  BFF_ERR_LOGIN_STATE_INVALID: {
    error: 'login_state_invalid',
    statusCode: 400,
    message:
      'The login attempt is unknown, expired, already used or belongs to another browser: start again at /bff/login',
  },
  BFF_ERR_LOGOUT_TOKEN_INVALID: { error: 'invalid_request', statusCode: 400, message: 'Invalid logout token' },
  BFF_ERR_LOGIN_RETURN_TO_TOO_LONG: {
    error: 'return_to_too_long',
    statusCode: 400,
    message: 'returnTo is too long to be carried through the login: use a shorter path',
  },
  BFF_ERR_LOGIN_PARAMETER_INVALID: {
    error: 'invalid_login_parameter',
    statusCode: 400,
    message: 'A login parameter is malformed',
  },
  BFF_ERR_LOGIN_FAILED: { error: 'login_failed', statusCode: 400, message: 'The identity provider refused the login' },
  BFF_ERR_IDP_RESPONSE_INVALID: {
    error: 'idp_response_invalid',
    statusCode: 502,
    message: 'The identity provider answered with something that failed validation',
  },
  BFF_ERR_IDP_UNREACHABLE: {
    error: 'idp_unavailable',
    statusCode: 502,
    message: 'The identity provider could not be reached for the login; try again',
  },
  BFF_ERR_IDP_UNAVAILABLE: {
    error: 'idp_unavailable',
    statusCode: 503,
    message: 'The identity provider is unreachable; try again shortly',
  },
  BFF_ERR_STORE_UNAVAILABLE: {
    error: 'session_store_unavailable',
    statusCode: 503,
    message: 'The session store is unreachable; try again shortly',
  },
  BFF_ERR_TOO_MANY_STREAMS: {
    error: 'too_many_streams',
    statusCode: 429,
    message: 'Too many session-event streams are open; close some tabs or try again later',
  },
  BFF_ERR_OVERLOADED: { error: 'overloaded', statusCode: 503, message: 'The gateway is overloaded; try again shortly' },
  BFF_ERR_UPSTREAM_UNREACHABLE: {
    error: 'upstream_unavailable',
    statusCode: 502,
    message: 'The upstream API is unreachable',
  },
  BFF_ERR_UPSTREAM_TIMEOUT: {
    error: 'upstream_timeout',
    statusCode: 504,
    message: 'The upstream API did not answer in time',
  },
  BFF_ERR_RATE_LIMITED: {
    error: 'rate_limited',
    statusCode: 429,
    message: 'Too many requests from this address; try again later',
  },
  BFF_ERR_NOT_FOUND: { error: 'not_found', statusCode: 404, message: 'Not found' },
  BFF_ERR_FRONTEND_UNKNOWN: {
    error: 'frontend_unknown',
    statusCode: 404,
    message: 'No frontend of this gateway answers this host and path',
  },
  BFF_ERR_PATH_DOT_SEGMENT: {
    error: 'invalid_path',
    statusCode: 400,
    message: 'The path has a "." or ".." segment (in some encoding, or with ";" parameters); it is not forwarded',
  },
  BFF_ERR_SET_INVALID_REQUEST: {
    error: 'invalid_request',
    statusCode: 400,
    message: 'The Security Event Token is malformed or fails validation',
  },
  BFF_ERR_SET_INVALID_KEY: {
    error: 'invalid_key',
    statusCode: 400,
    message: 'The Security Event Token is not signed by a key of the transmitter',
  },
  BFF_ERR_SET_INVALID_ISSUER: {
    error: 'invalid_issuer',
    statusCode: 400,
    message: 'The Security Event Token comes from another issuer',
  },
  BFF_ERR_SET_INVALID_AUDIENCE: {
    error: 'invalid_audience',
    statusCode: 400,
    message: 'The Security Event Token is for another audience',
  },
  BFF_ERR_SET_AUTHENTICATION_FAILED: {
    error: 'authentication_failed',
    statusCode: 400,
    message: 'The transmitter did not authenticate (Authorization header missing or wrong)',
  },
  BFF_ERR_SET_MEDIA_TYPE: {
    error: 'invalid_request',
    statusCode: 415,
    message: 'The body must be one Security Event Token, Content-Type application/secevent+jwt',
  },
  BFF_ERR_REVOCATION_UNAUTHORIZED: {
    error: 'invalid_token',
    statusCode: 401,
    message: 'The revocation request needs a valid bearer JWT from the configured issuer',
  },
  BFF_ERR_REVOCATION_FORBIDDEN: {
    error: 'access_denied',
    statusCode: 403,
    message: 'The caller may not revoke users of the issuer the subject names',
  },
  BFF_ERR_REVOCATION_SUBJECT_INVALID: {
    error: 'invalid_request',
    statusCode: 400,
    message: 'The body must be JSON with a sub_id subject identifier (RFC 9493)',
  },
  BFF_ERR_REVOCATION_SUBJECT_UNSUPPORTED: {
    error: 'unsupported_subject',
    statusCode: 422,
    message: 'bffgate cannot map this subject identifier to sessions; nothing was ended',
  },
  BFF_ERR_BAD_REQUEST: { error: 'bad_request', statusCode: 400, message: 'Bad request' },
  BFF_ERR_INTERNAL: { error: 'internal_error', statusCode: 500, message: 'Internal error' },
} as const satisfies Record<string, ErrorDefinition>

export type ErrorCode = keyof typeof errorDefinitions

/** An error with a known code; the error handler turns it into the JSON answer. */
export class BffError extends Error {
  readonly code: ErrorCode
  readonly error: string
  readonly statusCode: number
  /** Seconds, sent as `Retry-After` on 503s and 429s. */
  readonly retryAfter?: number

  constructor(code: ErrorCode, options: { cause?: unknown; message?: string; retryAfter?: number } = {}) {
    const def = errorDefinitions[code]
    super(options.message ?? def.message, { cause: options.cause })
    this.name = 'BffError'
    this.code = code
    this.error = def.error
    this.statusCode = def.statusCode
    if (options.retryAfter !== undefined) this.retryAfter = options.retryAfter
  }
}
