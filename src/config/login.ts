/**
 * The login options' settings (`BFF_LOGIN_PARAMETERS`, `BFF_LOGIN_ERROR_PATH`): defaults and
 * checks. Pure.
 */

import { settingLabel } from './label.ts'

/** Forwarded when `BFF_LOGIN_PARAMETERS` is unset: OIDC Core's and Auth0's interactive options. */
export const DEFAULT_LOGIN_PARAMETERS = [
  'prompt',
  'login_hint',
  'screen_hint',
  'organization',
  'invitation',
  'ui_locales',
  'acr_values',
] as const

/**
 * Parameters that carry the protocol itself or bffgate's own configuration: never taken from
 * the browser, and refused in `BFF_LOGIN_PARAMETERS` (a login link could otherwise pick the
 * redirect URI, the scopes, the API or the PKCE challenge).
 */
export const PROTECTED_PARAMETERS = new Set([
  'response_type',
  'response_mode',
  'client_id',
  'redirect_uri',
  'scope',
  'state',
  'nonce',
  'code_challenge',
  'code_challenge_method',
  'request',
  'request_uri',
  'dpop_jkt',
  'audience',
  'resource',
  'claims',
  'registration',
  'id_token_hint',
  'client_assertion',
  'client_assertion_type',
  'client_secret',
  'authorization_details',
])

/** Problems with a configured allowlist, each naming `setting`. */
export function checkLoginParameterNames(names: readonly string[], setting: string): string[] {
  const problems: string[] = []
  for (const name of names) {
    if (!/^[a-z][a-z0-9_]{0,63}$/.test(name))
      problems.push(
        `${settingLabel(setting)} has an invalid parameter name ${JSON.stringify(name.slice(0, 40))} (lowercase letters, digits and _)`,
      )
    else if (PROTECTED_PARAMETERS.has(name))
      problems.push(`${settingLabel(setting)} must not allow "${name}": bffgate sets it itself`)
  }
  return problems
}

/** Problems with a configured error path, each naming `setting`: a same-origin path outside `/bff/`. */
export function checkLoginErrorPath(path: string, setting: string): string[] {
  // oxlint-disable-next-line no-control-regex
  if (!path.startsWith('/') || path.startsWith('//') || /[\\\u0000-\u0020\u007f]/.test(path)) {
    return [`${settingLabel(setting)} must be a path of the SPA starting with "/", like "/login-failed"`]
  }
  const { pathname } = new URL(path, 'http://spa.invalid')
  if (pathname === '/bff' || pathname.startsWith('/bff/'))
    return [`${settingLabel(setting)} must not be under /bff/ (a failed login could loop)`]
  return []
}
