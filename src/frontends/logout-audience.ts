import { decodeJwt } from 'jose'
import { LogoutTokenError, type LogoutRequest } from '../oidc/logout-token.ts'

/** One frontend's logout-token verifier, and the client it verifies for. */
export interface FrontendLogoutVerifier {
  readonly frontend: string
  readonly issuer: string
  readonly clientId: string
  readonly verify: (token: string) => Promise<LogoutRequest>
}

/** A verified logout token, and the frontend whose client it was issued to. */
export type FrontendLogoutRequest = LogoutRequest & { readonly frontend: string }

/**
 * Back-channel logout with several frontends (docs/frontends.md): the logout token's audience
 * is a client id, and that client's frontend is the one whose sessions end. The token's
 * unverified `iss` and `aud` only pick the verifier; that frontend's verifier then checks the
 * signature against its issuer's keys, `iss` and `aud` again, and everything else. A token for
 * no frontend's client is refused like any invalid token.
 */
export function createFrontendLogoutVerifier(
  verifiers: readonly FrontendLogoutVerifier[],
): (token: string) => Promise<FrontendLogoutRequest> {
  return async (token) => {
    let claims
    try {
      claims = decodeJwt(token)
    } catch (err) {
      throw new LogoutTokenError('malformed token', { cause: err })
    }
    const audiences = typeof claims.aud === 'string' ? [claims.aud] : Array.isArray(claims.aud) ? claims.aud : []
    const target = verifiers.find((v) => v.issuer === claims.iss && audiences.includes(v.clientId))
    if (target === undefined)
      throw new LogoutTokenError("aud check failed (names no client of this gateway's frontends)")
    return { ...(await target.verify(token)), frontend: target.frontend }
  }
}
