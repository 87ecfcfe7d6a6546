import type { StoredAccessToken } from '../session/types.ts'

/** True when the token is missing or expires within `skewSeconds` of `nowSeconds`. */
export function needsRefresh (token: StoredAccessToken | undefined, nowSeconds: number, skewSeconds: number): boolean {
  return token === undefined || token.expires_at - skewSeconds <= nowSeconds
}

/** True while the token can still be sent (used when a refresh fails transiently). */
export function isStillValid (token: StoredAccessToken | undefined, nowSeconds: number): token is StoredAccessToken {
  return token !== undefined && token.expires_at > nowSeconds
}
