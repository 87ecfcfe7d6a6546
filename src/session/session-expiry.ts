/**
 * IdP-declared session ceilings (IPSIE SL1): an ID token may carry `session_expiry`, the
 * NumericDate after which the IdP's session is over whatever happens. The local session never
 * outlives it: its absolute deadline is capped at login, and lowered at a refresh whose new
 * ID token declares an earlier one (never raised: a later value is ignored). Pure.
 */

/** The `session_expiry` an ID token declares, in epoch seconds, or undefined (absent or not a NumericDate). */
export function declaredSessionExpiry(claims: Readonly<Record<string, unknown>> | undefined): number | undefined {
  const value = claims?.session_expiry
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) return undefined
  return Math.floor(value)
}

/** The absolute deadline (epoch seconds) once the ID token's `session_expiry`, if any, is applied. */
export function capAbsoluteDeadline(
  absoluteExpiresAt: number,
  claims: Readonly<Record<string, unknown>> | undefined,
): number {
  const declared = declaredSessionExpiry(claims)
  return declared === undefined ? absoluteExpiresAt : Math.min(absoluteExpiresAt, declared)
}
