/**
 * Where a navigating browser goes when a login fails (`BFF_LOGIN_ERROR_PATH`): a page of the
 * SPA, with bffgate's error code in the query, never the IdP's text. Pure.
 */

/** The query parameter that carries bffgate's error code (`login_failed`, `login_state_invalid` ...). */
const LOGIN_ERROR_PARAMETER = 'login_error'
/** The query parameter that carries the IdP's OAuth error code, when it is a registered one. */
const LOGIN_ERROR_REASON_PARAMETER = 'login_error_reason'

/**
 * OAuth 2.0 and OpenID Connect error codes of an authorization response (RFC 6749 §4.1.2.1,
 * OIDC Core §3.1.2.6): the only IdP values ever passed on, so that a SPA can tell
 * `login_required` (after `prompt=none`) from `access_denied`. Anything else the IdP says is
 * left out: it would be text an attacker's link could choose.
 */
const REGISTERED_OAUTH_ERRORS = new Set([
  'invalid_request',
  'unauthorized_client',
  'access_denied',
  'unsupported_response_type',
  'invalid_scope',
  'server_error',
  'temporarily_unavailable',
  'interaction_required',
  'login_required',
  'account_selection_required',
  'consent_required',
  'invalid_request_uri',
  'invalid_request_object',
  'request_not_supported',
  'request_uri_not_supported',
  'registration_not_supported',
])

/**
 * The location to send the browser to: `path` (a same-origin path, checked at start) with
 * `login_error=<code>` and, when the IdP gave a registered OAuth error, `login_error_reason`.
 * Existing query parameters and the fragment of `path` are kept.
 */
export function loginErrorLocation(path: string, error: string, oauthError: string | undefined): string {
  const url = new URL(path, 'http://spa.invalid')
  url.searchParams.set(LOGIN_ERROR_PARAMETER, error)
  if (oauthError !== undefined && REGISTERED_OAUTH_ERRORS.has(oauthError))
    url.searchParams.set(LOGIN_ERROR_REASON_PARAMETER, oauthError)
  return `${url.pathname}${url.search}${url.hash}`
}
