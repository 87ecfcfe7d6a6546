/**
 * A misbehaving IdP on demand: the next successful authorization_code token response carries a
 * corrupted ID token, so tests can prove that a relying party refuses each kind of bad token.
 * Every kind breaks exactly one thing: claim changes are re-signed with the IdP's real signing
 * key (same header, same kid), so the signature still verifies against the JWKS and only the
 * named check fails.
 */
import { randomBytes, randomUUID } from 'node:crypto'
import { CompactSign, decodeProtectedHeader, generateKeyPair, importJWK } from 'jose'
import type { CryptoKey, JWK, ProtectedHeaderParameters } from 'jose'
import type { Middleware } from 'oidc-provider'
import { ROUTES } from './middleware.ts'

/** The ways the next authorization_code token response can corrupt its ID token. */
export const ID_TOKEN_MISBEHAVIOURS = [
  /** Bytes of the signature flipped; header and payload untouched. */
  'bad_signature',
  /** An unsecured JWT: header `{"alg":"none"}` (kid dropped), same payload, empty signature. */
  'alg_none',
  /** `iss` names another issuer. */
  'wrong_iss',
  /** `aud` names another client. */
  'wrong_aud',
  /** No `nonce` claim. */
  'missing_nonce',
  /** A `nonce` other than the one of the authorization request. */
  'wrong_nonce',
  /** `exp` an hour in the past. */
  'expired',
  /** `iat` an hour in the future (`exp` unchanged, still after it). */
  'future_iat',
  /** No `sub` claim. */
  'missing_sub',
  /** Signed by a fresh key that is not in the JWKS, under the real key's `kid`. */
  'signed_with_unknown_key',
  /** Signed by a fresh key that is not in the JWKS, under a `kid` the JWKS does not have. */
  'signed_with_unknown_kid',
] as const

export type IdTokenMisbehaviour = (typeof ID_TOKEN_MISBEHAVIOURS)[number]

/** Issuer named by `wrong_iss`. */
export const WRONG_ISSUER = 'https://wrong-issuer.invalid'
/** Audience named by `wrong_aud`. */
export const WRONG_AUDIENCE = 'some-other-client'
/** Shift of `expired` and `future_iat`, in seconds. */
export const MISBEHAVIOUR_SHIFT_SECONDS = 3600

export function isIdTokenMisbehaviour(value: unknown): value is IdTokenMisbehaviour {
  return typeof value === 'string' && (ID_TOKEN_MISBEHAVIOURS as readonly string[]).includes(value)
}

/** The one pending misbehaviour, armed by a test and claimed by the next matching response. */
/** The grants whose token responses a misbehaviour can be armed for. */
export type MisbehavingGrant = 'authorization_code' | 'refresh_token'

export class IdTokenFaults {
  #next: IdTokenMisbehaviour | undefined
  #grant: MisbehavingGrant = 'authorization_code'

  /** The grant whose next successful response the armed misbehaviour corrupts. */
  get grant(): MisbehavingGrant {
    return this.#grant
  }

  get pending(): IdTokenMisbehaviour | undefined {
    return this.#next
  }

  /** Arms `kind` for the next token response of `grant` (default authorization_code); 'none' disarms. */
  arm(kind: IdTokenMisbehaviour | 'none', grant: MisbehavingGrant = 'authorization_code'): void {
    if (kind !== 'none' && !isIdTokenMisbehaviour(kind)) {
      throw new TypeError(`kind must be one of ${ID_TOKEN_MISBEHAVIOURS.join(', ')} or none, got ${String(kind)}`)
    }
    if (grant !== 'authorization_code' && grant !== 'refresh_token')
      throw new TypeError(`grant must be authorization_code or refresh_token, got ${String(grant)}`)
    this.#next = kind === 'none' ? undefined : kind
    this.#grant = grant
  }

  take(): IdTokenMisbehaviour | undefined {
    const kind = this.#next
    this.#next = undefined
    return kind
  }
}

const encoder = new TextEncoder()

function segmentJson(segment: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(segment, 'base64url').toString('utf8')) as Record<string, unknown>
}

function encodeSegment(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url')
}

function sign(header: ProtectedHeaderParameters, payload: Record<string, unknown>, key: CryptoKey): Promise<string> {
  // Same header, same member order; only a missing alg (never the case) would get a default.
  return new CompactSign(encoder.encode(JSON.stringify(payload)))
    .setProtectedHeader({ ...header, alg: header.alg ?? 'RS256' })
    .sign(key)
}

/** Corrupts compact JWS ID tokens, with the IdP's private signing JWKs at hand. */
export class IdTokenCorrupter {
  readonly #keys: readonly JWK[]
  #unknownKey: Promise<CryptoKey> | undefined

  constructor(signingKeys: readonly JWK[]) {
    this.#keys = signingKeys
  }

  /** The IdP's own private key for a header (by kid, else by alg). */
  async #realKey(header: ProtectedHeaderParameters): Promise<CryptoKey> {
    const jwk =
      this.#keys.find((key) => header.kid !== undefined && key.kid === header.kid) ??
      this.#keys.find((key) => key.alg === header.alg)
    if (!jwk || header.alg === undefined)
      throw new Error(`no signing key of the IdP matches the ID token header ${JSON.stringify(header)}`)
    return (await importJWK(jwk, header.alg)) as CryptoKey
  }

  /** A key pair made once per corrupter, never published in the JWKS. */
  #foreignKey(alg: string): Promise<CryptoKey> {
    this.#unknownKey ??= generateKeyPair(alg).then(({ privateKey }) => privateKey)
    return this.#unknownKey
  }

  async corrupt(idToken: string, kind: IdTokenMisbehaviour): Promise<string> {
    const [headerSegment = '', payloadSegment = '', signatureSegment = ''] = idToken.split('.')
    const header = decodeProtectedHeader(idToken)
    const payload = segmentJson(payloadSegment)
    const now = Math.floor(Date.now() / 1000)

    switch (kind) {
      case 'bad_signature': {
        const signature = Buffer.from(signatureSegment, 'base64url')
        for (const at of [0, signature.length >> 1, signature.length - 1]) signature[at] = (signature[at] ?? 0) ^ 0xff
        return `${headerSegment}.${payloadSegment}.${signature.toString('base64url')}`
      }
      case 'alg_none': {
        const { alg: _alg, kid: _kid, ...rest } = header
        return `${encodeSegment({ ...rest, alg: 'none' })}.${payloadSegment}.`
      }
      case 'signed_with_unknown_key':
        return sign(header, payload, await this.#foreignKey(header.alg ?? 'RS256'))
      case 'signed_with_unknown_kid':
        return sign(
          { ...header, kid: `unknown-${randomUUID()}` },
          payload,
          await this.#foreignKey(header.alg ?? 'RS256'),
        )
      case 'wrong_iss':
        payload.iss = WRONG_ISSUER
        break
      case 'wrong_aud':
        payload.aud = WRONG_AUDIENCE
        break
      case 'missing_nonce':
        delete payload.nonce
        break
      case 'wrong_nonce':
        payload.nonce = randomBytes(32).toString('base64url')
        break
      case 'expired':
        payload.exp = now - MISBEHAVIOUR_SHIFT_SECONDS
        break
      case 'future_iat':
        payload.iat = now + MISBEHAVIOUR_SHIFT_SECONDS
        break
      case 'missing_sub':
        delete payload.sub
        break
    }
    return sign(header, payload, await this.#realKey(header))
  }
}

/**
 * Replaces the ID token of the next successful token response of the armed grant
 * (authorization_code unless armed for refresh_token) with a corrupted one when a misbehaviour is armed. Other grants, failed exchanges and responses
 * without an ID token leave the misbehaviour armed. The code is consumed as usual.
 */
export function corruptIdTokens(faults: IdTokenFaults, corrupter: IdTokenCorrupter): Middleware {
  return async (ctx, next) => {
    await next()
    if (faults.pending === undefined || ctx.method !== 'POST' || ctx.path !== ROUTES.token) return
    if (ctx.oidc?.route !== 'token' || ctx.status !== 200 || ctx.oidc.params?.grant_type !== faults.grant) return
    const body = ctx.body as Record<string, unknown> | undefined
    if (!body || typeof body !== 'object' || typeof body.id_token !== 'string') return
    const kind = faults.take()
    if (kind === undefined) return
    body.id_token = await corrupter.corrupt(body.id_token, kind)
  }
}
