import type { FastifyRequest } from 'fastify'
import type { RouteCsrfPolicy } from '../config/types.ts'
import { BffError } from '../errors.ts'
import { checkRouteCsrf } from './csrf-policy.ts'

/** Refuses (403) a request that fails the CSRF check under `policy`; the handler never runs. */
export function guardCsrf(request: FastifyRequest, publicUrl: string, policy: RouteCsrfPolicy = 'header'): void {
  const verdict = checkRouteCsrf(policy, request.method, request.headers, publicUrl)
  if (verdict === 'ok') return
  request.log.warn({ event: 'csrf.rejected', reason: verdict }, 'request refused by the CSRF check')
  throw new BffError(verdict === 'header_missing' ? 'BFF_ERR_CSRF_HEADER_MISSING' : 'BFF_ERR_CSRF_ORIGIN_MISMATCH')
}
