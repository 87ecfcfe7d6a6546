import type { FastifyRequest } from 'fastify'
import type { IncomingHttpHeaders } from 'node:http'
import type { StoredAccessToken } from '../session/types.ts'
import { isDpopToken } from './upstream-headers.ts'

/**
 * Why a request is sent upstream a second time: its token was refused (`invalid_token`, RFC
 * 6750 §3.1: the token itself, not the caller's rights), or the upstream asked for a DPoP
 * proof with its nonce (`use_dpop_nonce`, RFC 9449 §9).
 */
export type ReplayReason = 'invalid_token' | 'use_dpop_nonce'

const REPLAYABLE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'DELETE'])

/**
 * The 401-replay policy: an upstream's 401 is replayed once (never twice), only for a request
 * that carried a token and has no body (a streamed body is gone), and only for a challenge
 * bffgate can act on: `invalid_token` (a new token from one exchange), or `use_dpop_nonce`
 * when the token is DPoP-bound (a new proof). Undefined: the 401 goes to the browser.
 */
export function replayReasonFor(
  request: FastifyRequest,
  sent: { readonly token: StoredAccessToken; readonly replayReason?: ReplayReason | undefined },
  statusCode: number,
  headers: IncomingHttpHeaders,
): ReplayReason | undefined {
  if (sent.replayReason !== undefined || statusCode !== 401 || !isReplayable(request)) return undefined
  const why = challengeError(headers['www-authenticate'])
  return why === 'invalid_token' || (why === 'use_dpop_nonce' && isDpopToken(sent.token)) ? why : undefined
}

/** The error of a Bearer or DPoP challenge that bffgate can act on. */
function challengeError(header: string | string[] | undefined): ReplayReason | undefined {
  const value = Array.isArray(header) ? header.join(', ') : header
  if (value === undefined || !/^\s*(bearer|dpop)\b/i.test(value)) return undefined
  const error = /\berror\s*=\s*"?([a-z_]+)"?/i.exec(value)?.[1]
  return error === 'invalid_token' || error === 'use_dpop_nonce' ? error : undefined
}

/** A request can be sent again only when it has no body (the body streamed and is gone). */
function isReplayable(request: FastifyRequest): boolean {
  const length = request.headers['content-length']
  return (
    REPLAYABLE_METHODS.has(request.method) &&
    (length === undefined || length === '0') &&
    request.headers['transfer-encoding'] === undefined
  )
}
