import { BffError } from '../errors.ts'
import { OidcError } from './client.ts'

/** Where bffgate talked to the IdP when the call failed. */
export type OidcStep =
  /** `/bff/login`: a pushed authorization request (the only IdP call when a login starts). */
  | 'authorization'
  /** `/bff/callback`: redeeming the authorization code. */
  | 'code_exchange'
  /** The token manager: exchanging a refresh token (a request waits for it). */
  | 'refresh'

/** Seconds a client should wait before retrying after a transient IdP failure. */
export const IDP_RETRY_AFTER_SECONDS = 5

/**
 * The one translation of a failed IdP call into bffgate's error (docs/errors.md):
 * - unreachable IdP (network, timeout, 5xx, 429): `idp_unreachable` at login and callback;
 *   during a refresh `idp_unavailable` with `Retry-After` (the session stays);
 * - the IdP refused the code (an OAuth error): `login_failed`, naming its OAuth error;
 * - anything else at login or callback (an answer that failed validation): `idp_response_invalid`.
 * A refresh whose grant is dead (`invalid_grant`) is not a failure to translate: the session
 * ends (session/ending.ts). A {@link BffError} passes through unchanged.
 */
export function bffErrorForOidcFailure(err: unknown, step: OidcStep): BffError {
  if (err instanceof BffError) return err
  const kind = err instanceof OidcError ? err.kind : undefined
  if (step === 'refresh')
    return new BffError('BFF_ERR_IDP_UNAVAILABLE', { cause: err, retryAfter: IDP_RETRY_AFTER_SECONDS })
  if (kind === 'transient') return new BffError('BFF_ERR_IDP_UNREACHABLE', { cause: err })
  if (step === 'code_exchange' && kind === 'rejected') {
    const oauthError = (err as OidcError).oauthError
    return new BffError('BFF_ERR_LOGIN_FAILED', {
      cause: err,
      message: `The identity provider refused the login${oauthError !== undefined ? ` (${oauthError})` : ''}`,
    })
  }
  return new BffError('BFF_ERR_IDP_RESPONSE_INVALID', { cause: err })
}
