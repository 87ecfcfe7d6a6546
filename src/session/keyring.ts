import { deriveKey, sha256 } from '../crypto.ts'

/** The keys derived from one `BFF_SESSION_SECRET` entry. */
export interface SecretKeys {
  /** 4 bytes that name this secret inside a ticket, so lookups need no trial and error. */
  readonly kid: Buffer
  /** Turns a session id into its Redis key (the raw id never reaches Redis). */
  readonly sessionIdKey: Buffer
  /** Seals the login-state cookie. */
  readonly loginStateKey: Buffer
}

/** All session secrets: the first protects new data, every one is accepted (rotation). */
export interface Keyring {
  readonly current: SecretKeys
  readonly all: readonly SecretKeys[]
  byKid(kid: Uint8Array): SecretKeys | undefined
}

export function createKeyring(secrets: readonly string[]): Keyring {
  if (secrets.length === 0) throw new TypeError('at least one session secret is required')
  const all = secrets.map((secret): SecretKeys => ({
    kid: sha256(deriveKey(secret, 'bffgate kid')).subarray(0, 4),
    sessionIdKey: deriveKey(secret, 'bffgate session-id hmac'),
    loginStateKey: deriveKey(secret, 'bffgate login-state'),
  }))
  return {
    current: all[0]!,
    all,
    byKid: (kid) => all.find((k) => k.kid.equals(kid)),
  }
}
