import { isIP } from 'node:net'
import type { HostPort, RefreshTokenKind, TokenEndpointAuthMethod } from './types.ts'

/**
 * The cross-field checks, one named function per area. Each takes values already read and
 * returns its problems (and warnings), naming settings by the labels it is given, so that a
 * frontend's settings are checked by the same rules as the environment's. Pure.
 */

const MIN_SECRET_LENGTH = 32
const MIN_SECRET_DISTINCT_CHARS = 12

// Listeners

/** The admin listener must not take the browser port (two ephemeral ports, 0, never collide). */
export function checkListeners(port: number | undefined, adminPort: number | undefined): string[] {
  if (port !== undefined && adminPort !== undefined && port !== 0 && port === adminPort) {
    return [
      '"BFF_ADMIN_PORT" must differ from "BFF_PORT" (the admin listener serves /metrics apart from the browser port)',
    ]
  }
  return []
}

// The browser's origin and the identity provider

/** An origin only, https except on a loopback host. */
export function checkPublicUrl(label: string, url: URL): string[] {
  const problems: string[] = []
  if (url.pathname !== '/' || url.search || url.hash) {
    problems.push(`${label} must be an origin only (scheme, host, port), e.g. https://app.example.com`)
  }
  if (url.protocol === 'http:' && !isLoopbackHost(url.hostname)) {
    problems.push(`${label} must use https (plain http is accepted only on a loopback host, for development)`)
  } else if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    problems.push(`${label} must be an http(s) URL`)
  }
  return problems
}

/** https, or plain http when `BFF_ALLOW_INSECURE_HTTP` allows it. */
export function checkIssuer(label: string, issuer: URL, allowInsecureHttp: boolean | undefined): string[] {
  if (issuer.protocol === 'http:' && !allowInsecureHttp) {
    return [`${label} uses plain http; use https, or set "BFF_ALLOW_INSECURE_HTTP"=true for development`]
  }
  if (issuer.protocol !== 'http:' && issuer.protocol !== 'https:') return [`${label} must be an http(s) URL`]
  return []
}

/** True for hosts a browser treats as a secure context over plain http. */
export function isLoopbackHost(hostname: string): boolean {
  return (
    hostname === 'localhost' ||
    hostname.endsWith('.localhost') ||
    /^127\.\d+\.\d+\.\d+$/.test(hostname) ||
    hostname === '[::1]'
  )
}

// Client authentication and scopes

/** How a client's credentials are named where they are checked. */
export interface ClientCredentialLabels {
  readonly secret: string
  readonly privateKey: string
  readonly authMethod: string
}

/** Exactly one of secret and private key, and one that fits the authentication method. */
export function checkClientAuthentication(
  labels: ClientCredentialLabels,
  client: {
    clientSecret?: string | undefined
    clientPrivateKey?: string | undefined
    authMethod?: TokenEndpointAuthMethod | undefined
  },
): string[] {
  const problems: string[] = []
  const { clientSecret, clientPrivateKey, authMethod } = client
  if (clientSecret === undefined && clientPrivateKey === undefined)
    problems.push(`${labels.secret} (or ${labels.privateKey}) is required`)
  if (clientSecret !== undefined && clientPrivateKey !== undefined)
    problems.push(`${labels.secret} and ${labels.privateKey} are both set; set one`)
  if (authMethod === 'private_key_jwt' && clientPrivateKey === undefined)
    problems.push(`${labels.authMethod}=private_key_jwt needs ${labels.privateKey}`)
  if (authMethod !== undefined && authMethod !== 'private_key_jwt' && clientSecret === undefined)
    problems.push(`${labels.authMethod}=${authMethod} needs ${labels.secret}`)
  return problems
}

/** The refresh token the scopes ask for; `openid` is required, `online_access` and `offline_access` exclude each other. */
export function refreshTokenKindOf(label: string, scopes: readonly string[], problems: string[]): RefreshTokenKind {
  if (!scopes.includes('openid')) problems.push(`${label} must include "openid"`)
  if (scopes.includes('online_access') && scopes.includes('offline_access')) {
    problems.push(
      `${label} requests both "online_access" and "offline_access"; they exclude each other (Auth0 rejects the request): keep one`,
    )
    return 'none'
  }
  if (scopes.includes('online_access')) return 'online'
  if (scopes.includes('offline_access')) return 'offline'
  return 'none'
}

// Sessions

/** Each rotation entry long and varied enough. */
export function checkSessionSecrets(secrets: readonly string[]): string[] {
  const problems: string[] = []
  secrets.forEach((secret, i) => {
    const which = secrets.length > 1 ? `entry ${i + 1} of "BFF_SESSION_SECRET"` : '"BFF_SESSION_SECRET"'
    if (secret.length < MIN_SECRET_LENGTH)
      problems.push(`${which} must be at least ${MIN_SECRET_LENGTH} characters (use e.g. \`openssl rand -base64 48\`)`)
    else if (new Set(secret).size < MIN_SECRET_DISTINCT_CHARS)
      problems.push(`${which} has too little entropy (too few distinct characters)`)
  })
  return problems
}

/** Characters RFC 6265 allows in a cookie name (a token). */
export const COOKIE_NAME_CHARS = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/

/** A host-only cookie: `__Host-` (Path=/, no Domain), then cookie-name characters. */
export function checkHostCookieName(label: string, name: string): string[] {
  return name.startsWith('__Host-') && COOKIE_NAME_CHARS.test(name)
    ? []
    : [`${label} must start with "__Host-" and contain only cookie-name characters`]
}

/** Session lifetimes and the session-events heartbeat against the connection timeout. */
export function checkSessionTimings(t: {
  idleSeconds?: number | undefined
  absoluteSeconds?: number | undefined
  heartbeatSeconds?: number | undefined
  connectionTimeoutSeconds?: number | undefined
}): string[] {
  const problems: string[] = []
  if (t.idleSeconds !== undefined && t.absoluteSeconds !== undefined && t.idleSeconds > t.absoluteSeconds) {
    problems.push('"BFF_SESSION_IDLE_SECONDS" must not exceed "BFF_SESSION_ABSOLUTE_SECONDS"')
  }
  // An idle socket is cut after the connection timeout: the stream's heartbeat must come sooner.
  if (
    t.heartbeatSeconds !== undefined &&
    t.connectionTimeoutSeconds !== undefined &&
    t.connectionTimeoutSeconds > 0 &&
    t.heartbeatSeconds >= t.connectionTimeoutSeconds
  ) {
    problems.push(
      '"BFF_SESSION_EVENTS_HEARTBEAT_SECONDS" must be less than "BFF_CONNECTION_TIMEOUT_SECONDS", or every idle session-events stream is cut',
    )
  }
  return problems
}

// Redis

/** The Redis topology settings as read. */
export interface RedisTopologyInput {
  readonly url?: URL | undefined
  readonly sentinels?: readonly string[] | undefined
  readonly sentinelMasterName?: string | undefined
  readonly sentinelPassword?: string | undefined
  readonly clusterNodes?: readonly string[] | undefined
}

/** Standalone, Sentinel or Cluster, not two at once; the node lists parsed. */
export function checkRedisTopology(
  input: RedisTopologyInput,
  problems: string[],
): { sentinelNodes?: HostPort[]; seedNodes?: HostPort[] } {
  const { url, sentinels, sentinelMasterName, sentinelPassword, clusterNodes } = input
  if (url && url.protocol !== 'redis:' && url.protocol !== 'rediss:')
    problems.push('"BFF_REDIS_URL" must start with redis:// or rediss://')
  const sentinelNodes = sentinels === undefined ? undefined : parseHostPorts('BFF_REDIS_SENTINELS', sentinels, problems)
  const seedNodes =
    clusterNodes === undefined ? undefined : parseHostPorts('BFF_REDIS_CLUSTER_NODES', clusterNodes, problems)
  if (sentinels !== undefined && clusterNodes !== undefined) {
    problems.push(
      '"BFF_REDIS_SENTINELS" and "BFF_REDIS_CLUSTER_NODES" are both set; Sentinel and Cluster exclude each other: set one',
    )
  }
  if (sentinels !== undefined && sentinelMasterName === undefined)
    problems.push('"BFF_REDIS_SENTINEL_MASTER_NAME" is required with "BFF_REDIS_SENTINELS"')
  if (sentinels === undefined) {
    if (sentinelMasterName !== undefined)
      problems.push('"BFF_REDIS_SENTINEL_MASTER_NAME" is set but "BFF_REDIS_SENTINELS" is not')
    if (sentinelPassword !== undefined)
      problems.push('"BFF_REDIS_SENTINEL_PASSWORD" is set but "BFF_REDIS_SENTINELS" is not')
  }
  return { ...(sentinelNodes !== undefined && { sentinelNodes }), ...(seedNodes !== undefined && { seedNodes }) }
}

/** `host:port` items (IPv6 in brackets); each bad item is a problem naming `name`. */
function parseHostPorts(name: string, items: readonly string[], problems: string[]): HostPort[] {
  const nodes: HostPort[] = []
  for (const item of items) {
    const match = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+):(\d{1,5})$/.exec(item)
    const port = match === null ? Number.NaN : Number(match[2])
    if (match === null || port < 1 || port > 65535) {
      problems.push(`"${name}" must be a comma-separated list of host:port, got ${JSON.stringify(item)}`)
    } else {
      nodes.push({ host: match[1]!.replace(/^\[(.*)\]$/, '$1'), port })
    }
  }
  return nodes
}

// Trusted proxies

/** `BFF_TRUSTED_PROXIES` as `address/prefix` ranges; a range trusting everyone is warned about. */
export function parseTrustedProxies(
  items: readonly string[] | undefined,
  problems: string[],
  warnings: string[],
): string[] {
  const ranges = items === undefined ? [] : parseCidrs('BFF_TRUSTED_PROXIES', items, problems)
  if (ranges.some((range) => range.endsWith('/0'))) {
    warnings.push(
      'BFF_TRUSTED_PROXIES trusts every address (a /0 range): any client can then choose the address bffgate reports for it',
    )
  }
  return ranges
}

/** IP addresses or CIDR ranges, each as `address/prefix`; each bad item is a problem naming `name`. */
function parseCidrs(name: string, items: readonly string[], problems: string[]): string[] {
  const ranges: string[] = []
  for (const item of items) {
    const match = /^([0-9A-Fa-f.:]+)(?:\/(\d{1,3}))?$/.exec(item)
    const family = match === null ? 0 : isIP(match[1]!)
    const bits = family === 4 ? 32 : 128
    const prefix = match?.[2] === undefined ? bits : Number(match[2])
    if (family === 0 || prefix > bits) {
      problems.push(
        `"${name}" must be a comma-separated list of IP addresses or CIDR ranges (like 10.0.0.0/8 or 2001:db8::/32), got ${JSON.stringify(item)}`,
      )
    } else {
      ranges.push(`${match![1]}/${prefix}`)
    }
  }
  return ranges
}
