import type { FastifyRequest } from 'fastify'
import { BffError } from '../errors.ts'
import { checkCsrf } from '../gateway/csrf.ts'

/** Refuses (403) a request that fails the CSRF check; the handler never runs. */
export function guardCsrf (request: FastifyRequest): void {
  const verdict = checkCsrf(request.headers, request.server.bff.config.publicUrl)
  if (verdict === 'ok') return
  request.log.warn({ event: 'csrf.rejected', reason: verdict }, 'request refused by the CSRF check')
  throw new BffError(verdict === 'header_missing' ? 'BFF_ERR_CSRF_HEADER_MISSING' : 'BFF_ERR_CSRF_ORIGIN_MISMATCH')
}
