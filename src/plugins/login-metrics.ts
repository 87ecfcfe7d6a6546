import type { FastifyInstance } from 'fastify'
import { BffError, type ErrorCode } from '../errors.ts'
import type { LoginOutcome } from '../metrics.ts'

const CALLBACK = '/bff/callback'

const OUTCOME_BY_ERROR: Partial<Record<ErrorCode, LoginOutcome>> = {
  BFF_ERR_LOGIN_STATE_INVALID: 'state_invalid',
  BFF_ERR_LOGIN_FAILED: 'rejected',
  BFF_ERR_IDP_UNREACHABLE: 'idp_unreachable',
  BFF_ERR_IDP_RESPONSE_INVALID: 'idp_response_invalid',
}

/**
 * Counts how each login ends at `/bff/callback` (`bff_logins_total`), from the outside of the
 * route: a redirect is a success; a failure is named by the error the route threw.
 */
export function registerLoginMetrics (app: FastifyInstance): void {
  const failures = new WeakMap<object, LoginOutcome>()
  app.addHook('onError', (request, _reply, err, done) => {
    if (request.routeOptions.url === CALLBACK) failures.set(request, err instanceof BffError ? OUTCOME_BY_ERROR[err.code] ?? 'error' : 'error')
    done()
  })
  app.addHook('onResponse', (request, reply, done) => {
    if (request.routeOptions.url === CALLBACK) {
      app.bff.metrics.login(failures.get(request) ?? (reply.statusCode < 400 ? 'success' : 'error'))
    }
    done()
  })
}
