import { randomUUID } from 'node:crypto'
import { SignJWT, calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type JWK } from 'jose'
import { sha256 } from './crypto.ts'

/**
 * DPoP (RFC 9449) primitives: a session's key pair, its import for signing, and proofs. Used
 * by the login (a key per session), the OpenID client (token requests bound to the key) and
 * the proxy (a proof per upstream request, proxy/dpop.ts).
 */

/**
 * DPoP key material of one session: an ES256 key pair kept as JWKs inside the session
 * record, which is encrypted at rest, so the private key never leaves bffgate.
 */
export interface DpopKey {
  readonly privateJwk: JsonWebKey
  readonly publicJwk: JsonWebKey
  /** JWK SHA-256 thumbprint of the public key: the `dpop_jkt` and the tokens' `cnf.jkt`. */
  readonly jkt: string
}

export async function createDpopKey(): Promise<DpopKey> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true })
  const publicJwk = await exportJWK(publicKey)
  return { privateJwk: await exportJWK(privateKey), publicJwk, jkt: await calculateJwkThumbprint(publicJwk) }
}

/** Imported keys by thumbprint: importing costs more than signing, and sessions repeat. */
const imported = new Map<string, Promise<CryptoKeyPair>>()
const IMPORTED_MAX = 1000

/** The session's key pair as CryptoKeys (for openid-client's DPoP handle and for proofs). */
export function importDpopKey(key: DpopKey): Promise<CryptoKeyPair> {
  let pair = imported.get(key.jkt)
  if (pair === undefined) {
    pair = (async () => ({
      privateKey: (await importJWK(key.privateJwk as JWK, 'ES256')) as CryptoKey,
      // openid-client needs an extractable public key to embed it in its proofs.
      publicKey: (await importJWK(key.publicJwk as JWK, 'ES256', { extractable: true })) as CryptoKey,
    }))()
    if (imported.size >= IMPORTED_MAX) imported.delete(imported.keys().next().value!)
    imported.set(key.jkt, pair)
  }
  return pair
}

/**
 * A DPoP proof for one upstream request: `htm`, `htu` (no query or fragment), `iat`, a fresh
 * `jti`, `ath` (the access token's hash) and the upstream's nonce when it asked for one.
 */
export async function createDpopProof(
  key: DpopKey,
  request: { method: string; url: string; accessToken: string; nonce?: string },
): Promise<string> {
  const { privateKey } = await importDpopKey(key)
  const url = new URL(request.url)
  return new SignJWT({
    htm: request.method,
    htu: `${url.origin}${url.pathname}`,
    ath: sha256(request.accessToken).toString('base64url'),
    ...(request.nonce !== undefined && { nonce: request.nonce }),
  })
    .setProtectedHeader({
      typ: 'dpop+jwt',
      alg: 'ES256',
      jwk: { kty: key.publicJwk.kty!, crv: key.publicJwk.crv!, x: key.publicJwk.x!, y: key.publicJwk.y! },
    })
    .setIssuedAt()
    .setJti(randomUUID())
    .sign(privateKey)
}
