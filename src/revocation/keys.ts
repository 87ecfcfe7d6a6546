import { createRemoteJWKSet, type JWTVerifyGetKey } from 'jose'

/**
 * Where a transmitter publishes its configuration (SSF 1.0, Transmitter Configuration Discovery): `/.well-known/ssf-configuration`
 * inserted between the issuer's host and its path (a trailing `/` of the path dropped). Pure.
 */
export function ssfConfigurationUrl (issuer: string): string {
  const url = new URL(issuer)
  const path = url.pathname.replace(/\/+$/, '')
  return `${url.origin}/.well-known/ssf-configuration${path}`
}

/** OpenID Connect Discovery's and RFC 8414's metadata locations of an issuer, in that order. Pure. */
export function authorizationServerMetadataUrls (issuer: string): string[] {
  const url = new URL(issuer)
  const path = url.pathname.replace(/\/+$/, '')
  return [`${url.origin}${path}/.well-known/openid-configuration`, `${url.origin}/.well-known/oauth-authorization-server${path}`]
}

/**
 * The key resolver for tokens of `issuer`: the JWKS at `jwksUri`, or at the `jwks_uri` of the
 * first metadata document that names this issuer (fetched on first use and again after a
 * failure, so a transmitter that is down at start does not stop bffgate). A metadata document
 * for another issuer is refused (SSF 1.0: the issuer must be identical).
 */
export function createIssuerKeys (options: { issuer: string; jwksUri?: string; metadataUrls: readonly string[]; timeoutMs: number }): JWTVerifyGetKey {
  const jwksOptions = { timeoutDuration: options.timeoutMs, cooldownDuration: 30_000 }
  if (options.jwksUri !== undefined) return createRemoteJWKSet(new URL(options.jwksUri), jwksOptions)
  let keys: Promise<JWTVerifyGetKey> | undefined
  const discover = async (): Promise<JWTVerifyGetKey> => {
    let lastProblem = 'no metadata document'
    for (const metadataUrl of options.metadataUrls) {
      const response = await fetch(metadataUrl, { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(options.timeoutMs) })
      if (!response.ok) {
        lastProblem = `${metadataUrl} answered ${response.status}`
        continue
      }
      const metadata = await response.json() as { issuer?: unknown; jwks_uri?: unknown }
      if (metadata.issuer !== options.issuer) throw new Error(`${metadataUrl} names another issuer`)
      if (typeof metadata.jwks_uri !== 'string') throw new Error(`${metadataUrl} has no jwks_uri`)
      return createRemoteJWKSet(new URL(metadata.jwks_uri), jwksOptions)
    }
    throw new Error(`the keys of ${options.issuer} could not be found: ${lastProblem}`)
  }
  return async (header, token) => {
    keys ??= discover()
    let resolved: JWTVerifyGetKey
    try {
      resolved = await keys
    } catch (err) {
      keys = undefined
      throw err
    }
    return resolved(header, token)
  }
}

/** How long a transmitter's configuration document is reused before it is fetched again, ms. */
const METADATA_TTL_MS = 5 * 60_000

/**
 * The `critical_subject_members` of a transmitter's SSF configuration, fetched on first use and
 * again after {@link METADATA_TTL_MS}. While the document cannot be fetched (or names another
 * issuer), the last list known is used, none at first: the SET's own checks still apply.
 */
export function createCriticalMembersSource (options: { issuer: string; timeoutMs: number; onError?: (reason: string) => void }): () => Promise<readonly string[]> {
  let known: readonly string[] = []
  let fetchedAt = -Infinity
  let pending: Promise<readonly string[]> | undefined
  const refresh = async (): Promise<readonly string[]> => {
    try {
      const response = await fetch(ssfConfigurationUrl(options.issuer), { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(options.timeoutMs) })
      if (!response.ok) throw new Error(`ssf-configuration answered ${response.status}`)
      const metadata = await response.json() as { issuer?: unknown; critical_subject_members?: unknown }
      if (metadata.issuer !== options.issuer) throw new Error('ssf-configuration names another issuer')
      const members = metadata.critical_subject_members
      known = Array.isArray(members) ? members.filter((m): m is string => typeof m === 'string') : []
      fetchedAt = Date.now()
    } catch (err) {
      options.onError?.((err as Error).message)
    }
    return known
  }
  return async () => {
    if (Date.now() - fetchedAt < METADATA_TTL_MS) return known
    pending ??= refresh().finally(() => { pending = undefined })
    return pending
  }
}
