/**
 * Session and refresh-token lifetimes of the development IdP, modelled on Auth0's
 * "inactivity timeout" (idle) and "require log in after" (absolute) session settings.
 */

/** Current time in whole seconds, the unit oidc-provider stores expiry in. */
export function epochSeconds(now = Date.now()): number {
  return Math.floor(now / 1000)
}

export interface SessionLifetimes {
  idleSeconds: number
  absoluteSeconds: number
}

/**
 * Seconds a session may still live when it is saved now: a full idle period, but never past
 * login time + absolute lifetime. Before login (no `loginTs`) only the idle period applies.
 */
export function sessionTtlSeconds(
  lifetimes: SessionLifetimes,
  loginTs: number | undefined,
  now = epochSeconds(),
): number {
  if (typeof loginTs !== 'number') return lifetimes.idleSeconds
  const untilAbsoluteEnd = loginTs + lifetimes.absoluteSeconds - now
  // At least one second: oidc-provider rejects a non-positive TTL, and a session past its
  // absolute end cannot be found any more anyway (its stored expiry is capped there).
  return Math.max(1, Math.min(lifetimes.idleSeconds, untilAbsoluteEnd))
}

/** Lifetime of an online refresh token issued now: it ends with the session's absolute end. */
export function onlineRefreshTokenTtlSeconds(
  lifetimes: SessionLifetimes,
  authTime: number | undefined,
  now = epochSeconds(),
): number {
  const start = typeof authTime === 'number' ? authTime : now
  return Math.max(1, start + lifetimes.absoluteSeconds - now)
}
