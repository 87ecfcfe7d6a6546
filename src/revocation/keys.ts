import { createRemoteJWKSet, type JWTVerifyGetKey } from 'jose'

/**
 * Where a transmitter publishes its configuration (SSF 1.0, Transmitter Configuration Discovery): `/.well-known/ssf-configuration`
 * inserted between the issuer's host and its path (a trailing `/` of the path dropped). Pure.
 */
export function ssfConfigurationUrl(issuer: string): string {
  const url = new URL(issuer)
  const path = url.pathname.replace(/\/+$/, '')
  return `${url.origin}/.well-known/ssf-configuration${path}`
}

/** OpenID Connect Discovery's and RFC 8414's metadata locations of an issuer, in that order. Pure. */
export function authorizationServerMetadataUrls(issuer: string): string[] {
  const url = new URL(issuer)
  const path = url.pathname.replace(/\/+$/, '')
  return [
    `${url.origin}${path}/.well-known/openid-configuration`,
    `${url.origin}/.well-known/oauth-authorization-server${path}`,
  ]
}

/**
 * How long a failed metadata fetch is answered from memory before it is tried again, ms: every
 * token check (an unauthenticated caller's included) must not turn into outbound requests.
 * The same as the JWKS refetch cooldown.
 */
export const FAILURE_COOLDOWN_MS = 30_000

/**
 * The key resolver for tokens of `issuer`: the JWKS at `jwksUri`, or at the `jwks_uri` of the
 * first metadata document that names this issuer (fetched on first use, one request at a time,
 * and again {@link FAILURE_COOLDOWN_MS} after a failure, so a transmitter that is down at start
 * does not stop bffgate). A metadata document for another issuer is refused (SSF 1.0: the
 * issuer must be identical). `now` is the clock of the cooldown (jose's JWKS cache keeps its own).
 */
export function createIssuerKeys(options: {
  issuer: string
  jwksUri?: string
  metadataUrls: readonly string[]
  timeoutMs: number
  now?: () => number
}): JWTVerifyGetKey {
  const now = options.now ?? Date.now
  const jwksOptions = { timeoutDuration: options.timeoutMs, cooldownDuration: FAILURE_COOLDOWN_MS }
  if (options.jwksUri !== undefined) return createRemoteJWKSet(new URL(options.jwksUri), jwksOptions)
  let keys: Promise<JWTVerifyGetKey> | undefined
  /** When the lookup in `keys` failed; undefined while it is pending or succeeded. */
  let failedAt: number | undefined
  const discover = async (): Promise<JWTVerifyGetKey> => {
    let lastProblem = 'no metadata document'
    for (const metadataUrl of options.metadataUrls) {
      const response = await fetch(metadataUrl, {
        headers: { accept: 'application/json' },
        signal: AbortSignal.timeout(options.timeoutMs),
      })
      if (!response.ok) {
        lastProblem = `${metadataUrl} answered ${response.status}`
        continue
      }
      const metadata = (await response.json()) as { issuer?: unknown; jwks_uri?: unknown }
      if (metadata.issuer !== options.issuer) throw new Error(`${metadataUrl} names another issuer`)
      if (typeof metadata.jwks_uri !== 'string') throw new Error(`${metadataUrl} has no jwks_uri`)
      return createRemoteJWKSet(new URL(metadata.jwks_uri), jwksOptions)
    }
    throw new Error(`the keys of ${options.issuer} could not be found: ${lastProblem}`)
  }
  return async (header, token) => {
    // A failed lookup stays the answer (the same rejected promise) until its cooldown is over.
    if (keys === undefined || (failedAt !== undefined && now() - failedAt >= FAILURE_COOLDOWN_MS)) {
      failedAt = undefined
      const attempt = discover()
      keys = attempt
      attempt.catch(() => {
        if (keys === attempt) failedAt = now()
      })
    }
    return (await keys)(header, token)
  }
}

/** How long a transmitter's configuration document is reused before it is fetched again, ms. */
const METADATA_TTL_MS = 5 * 60_000

/**
 * The `critical_subject_members` of a transmitter's SSF configuration, fetched on first use and
 * again after {@link METADATA_TTL_MS}. While the document cannot be fetched (or names another
 * issuer), the last list known is used, none at first: the SET's own checks still apply, and
 * the next attempt waits {@link FAILURE_COOLDOWN_MS} (one failure, one warning, not one per SET).
 */
export function createCriticalMembersSource(options: {
  issuer: string
  timeoutMs: number
  onError?: (reason: string) => void
  now?: () => number
}): () => Promise<readonly string[]> {
  const now = options.now ?? Date.now
  let known: readonly string[] = []
  /** When to fetch again, epoch ms. */
  let nextFetchAt = -Infinity
  let pending: Promise<readonly string[]> | undefined
  const refresh = async (): Promise<readonly string[]> => {
    try {
      const response = await fetch(ssfConfigurationUrl(options.issuer), {
        headers: { accept: 'application/json' },
        signal: AbortSignal.timeout(options.timeoutMs),
      })
      if (!response.ok) throw new Error(`ssf-configuration answered ${response.status}`)
      const metadata = (await response.json()) as { issuer?: unknown; critical_subject_members?: unknown }
      if (metadata.issuer !== options.issuer) throw new Error('ssf-configuration names another issuer')
      const members = metadata.critical_subject_members
      known = Array.isArray(members) ? members.filter((m): m is string => typeof m === 'string') : []
      nextFetchAt = now() + METADATA_TTL_MS
    } catch (err) {
      nextFetchAt = now() + FAILURE_COOLDOWN_MS
      options.onError?.((err as Error).message)
    }
    return known
  }
  return async () => {
    if (now() < nextFetchAt) return known
    pending ??= refresh().finally(() => {
      pending = undefined
    })
    return pending
  }
}
