import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  hkdfSync,
  randomBytes,
  timingSafeEqual,
  type KeyObject,
} from 'node:crypto'

/**
 * Symmetric primitives for session data: AES-256-GCM sealing and HKDF key derivation.
 * Node's crypto directly (not a JWE) keeps a sealed record small and the hot path cheap.
 */

export const IV_BYTES = 12
export const TAG_BYTES = 16

/** Derives a 256-bit key from input keying material; `info` separates every use. */
export function deriveKey(ikm: Uint8Array | string, info: string, salt: Uint8Array = new Uint8Array(0)): Buffer {
  return Buffer.from(hkdfSync('sha256', ikm, salt, info, 32))
}

/**
 * Encrypts `plaintext`; `aad` binds the result to its context (e.g. its Redis key). A
 * `KeyObject` key keeps its bytes out of the V8 heap, so out of heap snapshots (on Node 24 it
 * costs the same as a buffer: bench/README.md, third pass).
 */
export function seal(key: Uint8Array | KeyObject, plaintext: Uint8Array, aad: Uint8Array): Buffer {
  const iv = randomBytes(IV_BYTES)
  const cipher = createCipheriv('aes-256-gcm', key, iv)
  cipher.setAAD(aad)
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()])
  return Buffer.concat([iv, body, cipher.getAuthTag()])
}

/** Decrypts what {@link seal} made; `undefined` when the key, context or bytes are wrong. */
export function open(key: Uint8Array | KeyObject, sealed: Uint8Array, aad: Uint8Array): Buffer | undefined {
  if (sealed.length < IV_BYTES + TAG_BYTES) return undefined
  const iv = sealed.subarray(0, IV_BYTES)
  const tag = sealed.subarray(sealed.length - TAG_BYTES)
  const body = sealed.subarray(IV_BYTES, sealed.length - TAG_BYTES)
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, iv)
    decipher.setAAD(aad)
    decipher.setAuthTag(tag)
    return Buffer.concat([decipher.update(body), decipher.final()])
  } catch {
    return undefined
  }
}

export function hmac(key: Uint8Array, data: Uint8Array | string): Buffer {
  return createHmac('sha256', key).update(data).digest()
}

export function sha256(data: Uint8Array | string): Buffer {
  return createHash('sha256').update(data).digest()
}

/** Compares two strings in time independent of where they differ. */
export function constantTimeEqual(a: string, b: string): boolean {
  const x = sha256(a)
  const y = sha256(b)
  return timingSafeEqual(x, y) && a.length === b.length
}
