import { randomUUID } from 'node:crypto'
import { exportJWK, generateKeyPair } from 'jose'
import type { JWK } from 'jose'

let processKeys: Promise<JWK[]> | undefined

/** Generates one private RS256 signing key as a JWK (with `kid`, `alg` and `use`). */
export async function generateSigningKeys(): Promise<JWK[]> {
  const { privateKey } = await generateKeyPair('RS256', { modulusLength: 2048, extractable: true })
  const jwk = await exportJWK(privateKey)
  return [{ ...jwk, kid: randomUUID(), alg: 'RS256', use: 'sig' }]
}

/**
 * The signing keys every dev IdP of this process uses unless given its own: generated once,
 * so that an IdP closed and started again in the same process signs with the same keys and
 * earlier tokens still verify.
 */
export function processSigningKeys(): Promise<JWK[]> {
  processKeys ??= generateSigningKeys()
  return processKeys
}
