/**
 * The DPoP nonces an authorization server handed out, per origin (RFC 9449 §8: a nonce is
 * chosen by the server and valid for its origin, not for one client key). openid-client keeps
 * nonces inside each DPoP handle, and a handle is tied to one key pair, so a handle made per
 * call (one key per session) would start without a nonce every time and pay a refused round
 * trip (`use_dpop_nonce`) on each PAR, code and refresh request. This cache outlives the
 * handles: every response's `DPoP-Nonce` is remembered for its origin, and every new proof
 * that has no nonce of its own gets the origin's latest.
 */
export interface DpopNonceCache {
  /** The latest nonce the server at `origin` sent, if any. */
  get(origin: string): string | undefined
  /** Remembers the `DPoP-Nonce` of a response from `url`, if it carries one. */
  remember(url: string | URL, response: Response): void
}

/** Origins remembered at most: an IdP has one or two (token, PAR endpoints); a bound, not a tuning knob. */
const MAX_ORIGINS = 16

export function createDpopNonceCache(): DpopNonceCache {
  const nonces = new Map<string, string>()
  return {
    get: (origin) => nonces.get(origin),
    remember(url, response) {
      const nonce = response.headers.get('dpop-nonce')
      // RFC 9449 §8.1: the nonce is a non-empty string of NQCHAR; anything else is ignored.
      if (nonce === null || nonce === '' || !/^[\x21\x23-\x5b\x5d-\x7e]+$/.test(nonce)) return
      const origin = new URL(url).origin
      nonces.delete(origin)
      if (nonces.size >= MAX_ORIGINS) nonces.delete(nonces.keys().next().value!)
      nonces.set(origin, nonce)
    },
  }
}
