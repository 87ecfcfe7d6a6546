import type { IncomingHttpHeaders } from 'node:http'
import { createDpopProof, type DpopKey } from '../dpop.ts'
import type { StoredAccessToken } from '../session/types.ts'
import { isDpopToken } from './upstream-headers.ts'

/**
 * DPoP towards the upstreams (RFC 9449): a proof per request for a DPoP-bound token, carrying
 * the latest `DPoP-Nonce` the upstream's origin handed out (§9). One cache per proxy.
 */
export interface UpstreamDpop {
  /**
   * A fresh proof for one request (`htm`, `htu` without query, `ath`, the upstream's nonce),
   * or null when the token is not DPoP-bound or the session has no key.
   */
  prove(
    key: DpopKey | undefined,
    token: StoredAccessToken,
    request: { method: string; upstream: string; path: string },
  ): Promise<string | null>
  /** Keeps the nonce an upstream answer carries, for the next proofs to that upstream. */
  remember(upstream: string, headers: IncomingHttpHeaders): void
}

export function createUpstreamDpop(): UpstreamDpop {
  /** The latest `DPoP-Nonce` each upstream origin handed out. */
  const nonces = new Map<string, string>()
  return {
    async prove(key, token, request) {
      if (!isDpopToken(token) || key === undefined) return null
      const url = `${request.upstream}${request.path.split('?', 1)[0]}`
      return createDpopProof(key, {
        method: request.method,
        url,
        accessToken: token.access_token,
        nonce: nonces.get(request.upstream),
      })
    },
    remember(upstream, headers) {
      const nonce = headers['dpop-nonce']
      if (typeof nonce === 'string' && nonce !== '') nonces.set(upstream, nonce)
    },
  }
}
