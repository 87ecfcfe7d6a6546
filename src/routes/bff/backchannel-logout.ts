import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { BffError } from '../../errors.ts'
import { LogoutTokenError, type LogoutRequest } from '../../oidc/logout-token.ts'
import { sendError } from '../../http/error-handler.ts'
import type { GatewayMetrics } from '../../metrics.ts'
import type { SessionEnding } from '../../session/ending.ts'
import type { SessionStore } from '../../session/types.ts'
import { carryOutClaimed } from '../../session/claim.ts'

/** Largest request body accepted; logout tokens are a few hundred bytes. */
const BODY_LIMIT_BYTES = 16 * 1024

/**
 * `POST /bff/backchannel-logout` (OpenID Connect Back-Channel Logout 1.0): the IdP tells
 * bffgate that an IdP session ended. Every bffgate session bound to that `sid` (or, with
 * only `sub`, every session of that user) is deleted from the shared store, so the next
 * request on any replica answers 401 `session_ended`. 200 with `Cache-Control: no-store`;
 * a token that fails validation is a 400 with a JSON error and deletes nothing; bad input
 * never causes a 5xx. A session-store outage is a 503 with `Retry-After` (Back-Channel Logout
 * 1.0 §2.8: an error the IdP may retry), and the `jti` is claimed only once the sessions are
 * gone, so that retry is not refused as a replay.
 */
export function registerBackchannelLogoutRoute(
  app: FastifyInstance,
  deps: {
    /** Verifies a logout token; with several frontends it names the frontend whose client it is for (frontends/logout-audience.ts). */
    readonly verify: (token: string) => Promise<LogoutRequest & { readonly frontend?: string }>
    readonly store: Pick<SessionStore, 'claim'>
    readonly ending: SessionEnding
    readonly metrics: Pick<GatewayMetrics, 'backchannelLogout'>
    /**
     * Where it answers: `/bff/backchannel-logout`, and with several frontends the same under each
     * path prefix too (docs/frontends.md). Deployment-wide: the IdP may call any host.
     */
    readonly paths?: readonly string[]
  },
): void {
  const { verify, store, ending, metrics } = deps
  app.register(async (scope) => {
    scope.removeAllContentTypeParsers()
    scope.addContentTypeParser(
      'application/x-www-form-urlencoded',
      { parseAs: 'string', bodyLimit: BODY_LIMIT_BYTES },
      (_request, body, done) => {
        done(null, new URLSearchParams(body as string))
      },
    )
    scope.setErrorHandler((err: FastifyError | BffError, request, reply) => {
      if (err instanceof BffError && err.statusCode >= 500) {
        // Not the token's fault: the IdP must retry (a 400 would make it give up, Auth0 does).
        metrics.backchannelLogout('failed')
        request.log.error(
          { event: 'backchannel_logout.failed', code: err.code, err: err.cause ?? err },
          'back-channel logout could not be carried out',
        )
        return sendError(reply, err)
      }
      const reason =
        err instanceof BffError
          ? err.message
          : err.code === 'FST_ERR_CTP_BODY_TOO_LARGE'
            ? 'body too large'
            : err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE'
              ? 'content type must be application/x-www-form-urlencoded'
              : 'malformed request'
      metrics.backchannelLogout('rejected')
      request.log.warn({ event: 'backchannel_logout.rejected', reason }, 'back-channel logout refused')
      return sendError(reply, new BffError('BFF_ERR_LOGOUT_TOKEN_INVALID', { message: reason }))
    })

    const handler = async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
      const token = request.body instanceof URLSearchParams ? request.body.get('logout_token') : null
      if (token === null || token === '')
        throw new BffError('BFF_ERR_LOGOUT_TOKEN_INVALID', { message: 'logout_token missing' })
      let logout: LogoutRequest & { readonly frontend?: string }
      try {
        logout = await verify(token)
      } catch (err) {
        if (err instanceof LogoutTokenError)
          throw new BffError('BFF_ERR_LOGOUT_TOKEN_INVALID', { message: err.reason, cause: err })
        throw new BffError('BFF_ERR_LOGOUT_TOKEN_INVALID', { message: 'the token could not be verified', cause: err })
      }
      const jti = `${logout.iss}\u0000${logout.jti}`
      // One token, one logout: its jti is claimed (SET NX) before anything is deleted, so two
      // copies racing cannot both pass; released again when the deletion fails, so the IdP's
      // retry of the same token is carried out.
      const claim = await store.claim('jti', jti, logout.rememberSeconds)
      if (claim === undefined) throw new BffError('BFF_ERR_LOGOUT_TOKEN_INVALID', { message: 'jti already used' })
      // Only the sessions of the frontend whose client the token names (none named: the one frontend's).
      const frontend = logout.frontend
      await carryOutClaimed(
        claim,
        async () => {
          if (logout.sid !== undefined)
            await ending.endIdpSession(logout.iss, logout.sid, 'backchannel', request.log, frontend)
          else await ending.endSubject(logout.iss, logout.sub!, 'backchannel', request.log, frontend)
        },
        (releaseErr) =>
          request.log.warn(
            { event: 'backchannel_logout.release_failed', err: releaseErr },
            "the logout token's claim could not be dropped; the IdP's retry of it will be refused",
          ),
      )
      metrics.backchannelLogout('accepted')
      return reply.code(200).send()
    }
    for (const path of deps.paths ?? ['/bff/backchannel-logout']) scope.post(path, handler)
  })
}
