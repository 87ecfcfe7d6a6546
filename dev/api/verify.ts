/**
 * Access token verification of the demo API: RFC 9068 JWT access tokens from the issuer's
 * JWKS, and RFC 9449 DPoP proofs for sender-constrained tokens.
 */
import { createHash, randomUUID } from 'node:crypto'
import { EmbeddedJWK, calculateJwkThumbprint, createRemoteJWKSet, jwtVerify } from 'jose'
import type { JWTPayload } from 'jose'

/** Why a request was refused; maps onto the HTTP answer. */
export type VerifyFailure =
  | { kind: 'missing' }
  | { kind: 'invalid_token'; scheme: 'Bearer' | 'DPoP'; reason: string }
  | { kind: 'invalid_dpop_proof'; reason: string }
  | { kind: 'use_dpop_nonce'; nonce: string }
  | { kind: 'unavailable'; reason: string }

export type VerifyResult =
  | { ok: true; claims: JWTPayload; scheme: 'Bearer' | 'DPoP' }
  | { ok: false; failure: VerifyFailure }

export interface VerifyInput {
  authorization: string | undefined
  /** Every DPoP header value received (RFC 9449 requires exactly one). */
  dpop: string[]
  method: string
  /** The URL the client addressed, without query or fragment (DPoP `htu`). */
  url: string
}

export interface TokenVerifierOptions {
  issuer: string
  /** The audience (or audiences) this API accepts. */
  audience: string | string[]
  /** Accepted DPoP proof age either side of now; default 60 s. */
  dpopProofMaxAgeSeconds?: number
  /** Demand a server-provided nonce in DPoP proofs (RFC 9449 §9): the first proof gets `use_dpop_nonce`. */
  requireDpopNonce?: boolean
}

/** verifyProof's answer when the proof lacks the current server nonce. */
const NONCE_REQUIRED = 'use_dpop_nonce'

const DPOP_ALGORITHMS = ['ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519', 'PS256', 'RS256']

/** Remembers DPoP proof ids for as long as the proofs are acceptable, to refuse replays. */
class ReplayCache {
  readonly #seen = new Map<string, number>()

  /** Returns false when `jti` was already used; otherwise records it until `expiresAt` (ms). */
  use(jti: string, expiresAt: number): boolean {
    const now = Date.now()
    for (const [key, until] of this.#seen) if (until <= now) this.#seen.delete(key)
    if (this.#seen.has(jti)) return false
    this.#seen.set(jti, expiresAt)
    return true
  }
}

function sha256Base64Url(text: string): string {
  return createHash('sha256').update(text).digest('base64url')
}

function sameResource(a: string, b: string): boolean {
  const left = URL.parse(a)
  const right = URL.parse(b)
  return left !== null && right !== null && left.origin === right.origin && left.pathname === right.pathname
}

/** Creates a verifier; the issuer's discovery document is fetched on first use and cached. */
export function createTokenVerifier(options: TokenVerifierOptions) {
  const { issuer, audience } = options
  const maxAge = options.dpopProofMaxAgeSeconds ?? 60
  const replays = new ReplayCache()
  const dpopNonce = `n-${randomUUID()}`
  let jwks: Promise<ReturnType<typeof createRemoteJWKSet>> | undefined

  async function discoverJwks(): Promise<ReturnType<typeof createRemoteJWKSet>> {
    const response = await fetch(`${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`)
    if (!response.ok) throw new Error(`discovery answered HTTP ${response.status}`)
    const metadata = (await response.json()) as { issuer?: unknown; jwks_uri?: unknown }
    if (metadata.issuer !== issuer)
      throw new Error(`discovery names issuer ${String(metadata.issuer)}, expected ${issuer}`)
    if (typeof metadata.jwks_uri !== 'string') throw new Error('discovery has no jwks_uri')
    return createRemoteJWKSet(new URL(metadata.jwks_uri))
  }

  function keySet(): Promise<ReturnType<typeof createRemoteJWKSet>> {
    // A failed discovery is retried by the next request (the IdP may start after the API).
    jwks ??= discoverJwks().catch((error: unknown) => {
      jwks = undefined
      throw error
    })
    return jwks
  }

  async function verifyProof(input: VerifyInput, token: string, jkt: string): Promise<string | undefined> {
    if (input.dpop.length !== 1) return input.dpop.length === 0 ? 'missing DPoP proof' : 'more than one DPoP proof'
    const [proof = ''] = input.dpop
    try {
      const { payload, protectedHeader } = await jwtVerify(proof, EmbeddedJWK, {
        typ: 'dpop+jwt',
        algorithms: DPOP_ALGORITHMS,
      })
      if (!protectedHeader.jwk || (await calculateJwkThumbprint(protectedHeader.jwk)) !== jkt)
        return 'proof key does not match the token binding'
      if (payload.htm !== input.method) return 'htm does not match the request method'
      if (typeof payload.htu !== 'string' || !sameResource(payload.htu, input.url))
        return 'htu does not match the request URL'
      if (payload.ath !== sha256Base64Url(token)) return 'ath does not match the access token'
      const now = Math.floor(Date.now() / 1000)
      if (typeof payload.iat !== 'number' || Math.abs(now - payload.iat) > maxAge) return 'proof iat is out of range'
      if (typeof payload.jti !== 'string' || payload.jti === '') return 'proof has no jti'
      if (!replays.use(`${jkt}:${payload.jti}`, (payload.iat + maxAge) * 1000 + 1000)) return 'proof was already used'
      if (options.requireDpopNonce === true && payload.nonce !== dpopNonce) return NONCE_REQUIRED
      return undefined
    } catch (error) {
      return `proof does not verify: ${(error as Error).message}`
    }
  }

  return async function verify(input: VerifyInput): Promise<VerifyResult> {
    const match = /^(Bearer|DPoP) +([A-Za-z0-9\-._~+/]+=*)$/i.exec(input.authorization ?? '')
    if (!match) return { ok: false, failure: { kind: 'missing' } }
    const scheme = (match[1] ?? '').toLowerCase() === 'dpop' ? 'DPoP' : 'Bearer'
    const token = match[2] ?? ''

    let keys: ReturnType<typeof createRemoteJWKSet>
    try {
      keys = await keySet()
    } catch (error) {
      return { ok: false, failure: { kind: 'unavailable', reason: (error as Error).message } }
    }

    let claims: JWTPayload
    try {
      ;({ payload: claims } = await jwtVerify(token, keys, { issuer, audience, typ: 'at+jwt' }))
    } catch (error) {
      return { ok: false, failure: { kind: 'invalid_token', scheme, reason: (error as Error).message } }
    }

    const jkt = (claims.cnf as { jkt?: unknown } | undefined)?.jkt
    if (scheme === 'Bearer') {
      // RFC 9449 7.2: a DPoP-bound token must not be accepted as a bearer token.
      if (jkt !== undefined)
        return { ok: false, failure: { kind: 'invalid_token', scheme, reason: 'DPoP-bound token presented as Bearer' } }
      return { ok: true, claims, scheme }
    }
    if (typeof jkt !== 'string')
      return {
        ok: false,
        failure: { kind: 'invalid_token', scheme, reason: 'DPoP scheme with a token that is not DPoP-bound' },
      }
    const proofProblem = await verifyProof(input, token, jkt)
    if (proofProblem === NONCE_REQUIRED) return { ok: false, failure: { kind: 'use_dpop_nonce', nonce: dpopNonce } }
    if (proofProblem) return { ok: false, failure: { kind: 'invalid_dpop_proof', reason: proofProblem } }
    return { ok: true, claims, scheme }
  }
}
