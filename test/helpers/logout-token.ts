import { randomUUID } from 'node:crypto'
import { SignJWT, importJWK, type JWK } from 'jose'
import { BACKCHANNEL_LOGOUT_EVENT } from '../../src/oidc/logout-token.ts'

/**
 * A back-channel logout token's claims as an IdP sends them, valid now; `overrides` win, and
 * an override of `undefined` leaves that claim out.
 */
export function logoutTokenClaims(
  issuer: string,
  audience: string,
  overrides: Record<string, unknown> = {},
): Record<string, unknown> {
  const now = Math.floor(Date.now() / 1000)
  const claims: Record<string, unknown> = {
    iss: issuer,
    aud: audience,
    iat: now,
    exp: now + 120,
    jti: randomUUID(),
    events: { [BACKCHANNEL_LOGOUT_EVENT]: {} },
    ...overrides,
  }
  for (const [name, value] of Object.entries(claims)) if (value === undefined) delete claims[name]
  return claims
}

/** `claims` signed as a logout token (`typ` logout+jwt) with `jwk`, under its own algorithm unless `alg` says otherwise. */
export async function signLogoutToken(jwk: JWK, claims: Record<string, unknown>, alg?: string): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: alg ?? jwk.alg ?? 'RS256', kid: jwk.kid, typ: 'logout+jwt' })
    .sign(await importJWK(jwk, jwk.alg ?? 'RS256'))
}
