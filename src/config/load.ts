import { isIP } from 'node:net'
import { parse as parseYaml } from 'yaml'
import { checkContentSecurityPolicy } from './csp.ts'
import { checkLoginErrorPath, checkLoginParameterNames } from './login.ts'
import { readRevocationConfig } from '../revocation/config.ts'
import { settings, type SettingName, type SettingSpec } from './schema.ts'
import type { Config, RefreshTokenKind, RouteConfig, RouteCsrfPolicy, RouteTokenMode, TokenEndpointAuthMethod } from './types.ts'

/** Thrown by {@link loadConfig}: every problem found, one per line, each naming its variable. */
export class ConfigError extends Error {
  readonly code = 'BFF_ERR_CONFIG_INVALID'
  readonly problems: readonly string[]
  /** Unknown variables that look like typos: often the reason a required setting is "missing". */
  readonly hints: readonly string[]
  constructor (problems: readonly string[], hints: readonly string[] = []) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}${hints.map((h) => `\nnote: ${h}`).join('')}`)
    this.name = 'ConfigError'
    this.problems = problems
    this.hints = hints
  }
}

export interface LoadConfigOptions {
  /** Reads `*_FILE` secrets and `BFF_CONFIG`; injected so that tests need no files. */
  readonly readFile?: (path: string) => string
}

type Env = Readonly<Record<string, string | undefined>>
type Raw = unknown

const specByName = new Map<string, SettingSpec>(settings.map((s) => [s.name, s]))
const MIN_SECRET_LENGTH = 32
const MIN_SECRET_DISTINCT_CHARS = 12

/**
 * Reads and validates the whole configuration. Pure apart from `readFile`.
 *
 * Precedence per setting: the environment variable, then `<NAME>_FILE` for secrets, then the
 * `BFF_CONFIG` file, then the default. Collects every problem and throws one {@link ConfigError}.
 */
export function loadConfig (env: Env, options: LoadConfigOptions = {}): Config {
  const readFile = options.readFile ?? (() => { throw new Error('no file reader') })
  const problems: string[] = []
  const warnings: string[] = []

  const fileValues = readConfigFile(env.BFF_CONFIG, readFile, problems)
  const unknown: string[] = []
  for (const key of Object.keys(env)) {
    if (key.startsWith('BFF_') && !specByName.has(key) && !(key.endsWith('_FILE') && specByName.get(key.slice(0, -5))?.secret)) {
      const suggestion = closestSettingName(key)
      unknown.push(`unknown setting "${key}" ignored${suggestion !== undefined ? `: did you mean "${suggestion}"?` : ' (a typo?)'}`)
    }
  }
  warnings.push(...unknown)

  const raw = (name: SettingName): Raw => {
    const spec = specByName.get(name)!
    const fileVar = `${name}_FILE`
    if (spec.secret && env[fileVar] !== undefined) {
      if (env[name] !== undefined) {
        problems.push(`"${name}" and "${fileVar}" are both set; set one`)
        return undefined
      }
      try {
        return readFile(env[fileVar]!).replace(/\r?\n$/, '')
      } catch (err) {
        problems.push(`"${fileVar}" names a file that cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`)
        return undefined
      }
    }
    const fromEnv = env[name]
    if (fromEnv !== undefined && fromEnv !== '') return fromEnv
    if (fileValues[name] !== undefined) return fileValues[name]
    return spec.default
  }

  const read = new SettingReader(raw, problems)

  const port = read.integer('BFF_PORT')
  const host = read.string('BFF_HOST')
  const adminPort = read.integer('BFF_ADMIN_PORT')
  const adminHost = read.string('BFF_ADMIN_HOST')
  const publicUrl = read.url('BFF_PUBLIC_URL')
  const issuerText = read.string('BFF_OIDC_ISSUER')
  const issuer = issuerText === undefined ? undefined : parseUrl('BFF_OIDC_ISSUER', issuerText, problems)
  const clientId = read.string('BFF_OIDC_CLIENT_ID')
  const clientSecret = read.string('BFF_OIDC_CLIENT_SECRET')
  const clientPrivateKey = read.string('BFF_OIDC_CLIENT_PRIVATE_KEY')
  const authMethod = read.string('BFF_OIDC_TOKEN_ENDPOINT_AUTH_METHOD') as TokenEndpointAuthMethod | undefined
  const scopes = read.list('BFF_OIDC_SCOPES', /\s+/)
  const audience = read.string('BFF_OIDC_AUDIENCE')
  const timeoutSeconds = read.integer('BFF_OIDC_TIMEOUT_SECONDS')
  const allowInsecureHttp = read.boolean('BFF_ALLOW_INSECURE_HTTP')
  const postLogoutRedirectUrl = read.url('BFF_POST_LOGOUT_REDIRECT_URL')
  const revokeOnLogout = read.boolean('BFF_LOGOUT_REVOKE_REFRESH_TOKEN')
  const dpop = read.boolean('BFF_DPOP')
  const par = read.boolean('BFF_OIDC_PAR')
  const redisUrl = read.url('BFF_REDIS_URL')
  const keyPrefix = read.string('BFF_REDIS_KEY_PREFIX')
  const redisUsername = read.string('BFF_REDIS_USERNAME')
  const redisPassword = read.string('BFF_REDIS_PASSWORD')
  const sentinels = read.list('BFF_REDIS_SENTINELS', /,/)
  const sentinelMasterName = read.string('BFF_REDIS_SENTINEL_MASTER_NAME')
  const sentinelPassword = read.string('BFF_REDIS_SENTINEL_PASSWORD')
  const clusterNodes = read.list('BFF_REDIS_CLUSTER_NODES', /,/)
  const trustedProxiesText = read.list('BFF_TRUSTED_PROXIES', /,/)
  const upstreamTimeoutSeconds = read.integer('BFF_UPSTREAM_TIMEOUT_SECONDS')
  const connectionTimeoutSeconds = read.integer('BFF_CONNECTION_TIMEOUT_SECONDS')
  const requestTimeoutSeconds = read.integer('BFF_REQUEST_TIMEOUT_SECONDS')
  const keepAliveTimeoutSeconds = read.integer('BFF_KEEP_ALIVE_TIMEOUT_SECONDS')
  const maxHeaderBytes = read.integer('BFF_MAX_HEADER_BYTES')
  const maxEventLoopDelayMs = read.integer('BFF_MAX_EVENT_LOOP_DELAY_MS')
  const store = read.string('BFF_SESSION_STORE') as 'redis' | 'memory'
  const secrets = read.list('BFF_SESSION_SECRET', /,/)
  const cookieName = read.string('BFF_SESSION_COOKIE_NAME')
  const idleSeconds = read.integer('BFF_SESSION_IDLE_SECONDS')
  const absoluteSeconds = read.integer('BFF_SESSION_ABSOLUTE_SECONDS')
  const refreshSkewSeconds = read.integer('BFF_REFRESH_SKEW_SECONDS')
  const refreshLockSeconds = read.integer('BFF_REFRESH_LOCK_SECONDS')
  const checkSeconds = read.integer('BFF_SESSION_CHECK_SECONDS')
  const warningSeconds = read.integer('BFF_SESSION_WARNING_SECONDS')
  const maxStreams = read.integer('BFF_SESSION_EVENTS_MAX_STREAMS')
  const maxStreamsPerSession = read.integer('BFF_SESSION_EVENTS_MAX_PER_SESSION')
  const heartbeatSeconds = read.integer('BFF_SESSION_EVENTS_HEARTBEAT_SECONDS')
  const backchannelLogout = read.boolean('BFF_BACKCHANNEL_LOGOUT')
  const routesRaw = read.json('BFF_ROUTES')
  const staticDir = read.string('BFF_STATIC_DIR')
  const contentSecurityPolicy = read.string('BFF_CONTENT_SECURITY_POLICY')
  const loginParametersRaw = read.list('BFF_LOGIN_PARAMETERS', /[\s,]+/)
  const loginErrorPath = read.string('BFF_LOGIN_ERROR_PATH')
  const logLevel = read.string('BFF_LOG_LEVEL')
  const startupTimeoutSeconds = read.integer('BFF_STARTUP_TIMEOUT_SECONDS')
  const rateLimitWindowSeconds = read.integer('BFF_RATE_LIMIT_WINDOW_SECONDS')
  const rateLimitLogin = read.integer('BFF_RATE_LIMIT_LOGIN')
  const rateLimitCallback = read.integer('BFF_RATE_LIMIT_CALLBACK')
  const rateLimitBackchannel = read.integer('BFF_RATE_LIMIT_BACKCHANNEL_LOGOUT')

  if (port !== undefined && adminPort !== undefined && port !== 0 && port === adminPort) {
    problems.push('"BFF_ADMIN_PORT" must differ from "BFF_PORT" (the admin listener serves /metrics apart from the browser port)')
  }
  if (publicUrl) {
    if (publicUrl.pathname !== '/' || publicUrl.search || publicUrl.hash) {
      problems.push('"BFF_PUBLIC_URL" must be an origin only (scheme, host, port), e.g. https://app.example.com')
    }
    if (publicUrl.protocol === 'http:' && !isLoopbackHost(publicUrl.hostname)) {
      problems.push('"BFF_PUBLIC_URL" must use https (plain http is accepted only on a loopback host, for development)')
    } else if (publicUrl.protocol !== 'http:' && publicUrl.protocol !== 'https:') {
      problems.push('"BFF_PUBLIC_URL" must be an http(s) URL')
    }
  }
  if (issuer) {
    if (issuer.protocol === 'http:' && !allowInsecureHttp) {
      problems.push('"BFF_OIDC_ISSUER" uses plain http; use https, or set "BFF_ALLOW_INSECURE_HTTP"=true for development')
    } else if (issuer.protocol !== 'http:' && issuer.protocol !== 'https:') {
      problems.push('"BFF_OIDC_ISSUER" must be an http(s) URL')
    }
  }
  if (allowInsecureHttp) warnings.push('BFF_ALLOW_INSECURE_HTTP=true: plain-http identity provider allowed; never use this in production')
  if (redisUrl && redisUrl.protocol !== 'redis:' && redisUrl.protocol !== 'rediss:') {
    problems.push('"BFF_REDIS_URL" must start with redis:// or rediss://')
  }
  const sentinelNodes = sentinels === undefined ? undefined : parseHostPorts('BFF_REDIS_SENTINELS', sentinels, problems)
  const seedNodes = clusterNodes === undefined ? undefined : parseHostPorts('BFF_REDIS_CLUSTER_NODES', clusterNodes, problems)
  if (sentinels !== undefined && clusterNodes !== undefined) {
    problems.push('"BFF_REDIS_SENTINELS" and "BFF_REDIS_CLUSTER_NODES" are both set; Sentinel and Cluster exclude each other: set one')
  }
  if (sentinels !== undefined && sentinelMasterName === undefined) {
    problems.push('"BFF_REDIS_SENTINEL_MASTER_NAME" is required with "BFF_REDIS_SENTINELS"')
  }
  if (sentinels === undefined) {
    if (sentinelMasterName !== undefined) problems.push('"BFF_REDIS_SENTINEL_MASTER_NAME" is set but "BFF_REDIS_SENTINELS" is not')
    if (sentinelPassword !== undefined) problems.push('"BFF_REDIS_SENTINEL_PASSWORD" is set but "BFF_REDIS_SENTINELS" is not')
  }
  if (store === 'memory') warnings.push('BFF_SESSION_STORE=memory: sessions live in this process only, are lost on restart and are not shared between replicas; development only')

  if (clientSecret === undefined && clientPrivateKey === undefined) {
    problems.push('"BFF_OIDC_CLIENT_SECRET" (or "BFF_OIDC_CLIENT_PRIVATE_KEY") is required')
  }
  if (clientSecret !== undefined && clientPrivateKey !== undefined) {
    problems.push('"BFF_OIDC_CLIENT_SECRET" and "BFF_OIDC_CLIENT_PRIVATE_KEY" are both set; set one')
  }
  if (authMethod === 'private_key_jwt' && clientPrivateKey === undefined) {
    problems.push('"BFF_OIDC_TOKEN_ENDPOINT_AUTH_METHOD"=private_key_jwt needs "BFF_OIDC_CLIENT_PRIVATE_KEY"')
  }
  if (authMethod !== undefined && authMethod !== 'private_key_jwt' && clientSecret === undefined) {
    problems.push(`"BFF_OIDC_TOKEN_ENDPOINT_AUTH_METHOD"=${authMethod} needs "BFF_OIDC_CLIENT_SECRET"`)
  }

  let refreshTokenKind: RefreshTokenKind = 'none'
  if (scopes) {
    if (!scopes.includes('openid')) problems.push('"BFF_OIDC_SCOPES" must include "openid"')
    if (scopes.includes('online_access') && scopes.includes('offline_access')) {
      problems.push('"BFF_OIDC_SCOPES" requests both "online_access" and "offline_access"; they exclude each other (Auth0 rejects the request): keep one')
    } else if (scopes.includes('online_access')) refreshTokenKind = 'online'
    else if (scopes.includes('offline_access')) refreshTokenKind = 'offline'
  }

  if (secrets) {
    secrets.forEach((secret, i) => {
      const which = secrets.length > 1 ? `entry ${i + 1} of "BFF_SESSION_SECRET"` : '"BFF_SESSION_SECRET"'
      if (secret.length < MIN_SECRET_LENGTH) problems.push(`${which} must be at least ${MIN_SECRET_LENGTH} characters (use e.g. \`openssl rand -base64 48\`)`)
      else if (new Set(secret).size < MIN_SECRET_DISTINCT_CHARS) problems.push(`${which} has too little entropy (too few distinct characters)`)
    })
  }
  if (cookieName !== undefined && !/^__Host-[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(cookieName)) {
    problems.push('"BFF_SESSION_COOKIE_NAME" must start with "__Host-" and contain only cookie-name characters')
  }
  if (idleSeconds !== undefined && absoluteSeconds !== undefined && idleSeconds > absoluteSeconds) {
    problems.push('"BFF_SESSION_IDLE_SECONDS" must not exceed "BFF_SESSION_ABSOLUTE_SECONDS"')
  }
  // An idle socket is cut after the connection timeout: the stream's heartbeat must come sooner.
  if (heartbeatSeconds !== undefined && connectionTimeoutSeconds !== undefined && connectionTimeoutSeconds > 0 && heartbeatSeconds >= connectionTimeoutSeconds) {
    problems.push('"BFF_SESSION_EVENTS_HEARTBEAT_SECONDS" must be less than "BFF_CONNECTION_TIMEOUT_SECONDS", or every idle session-events stream is cut')
  }

  const routes = routesRaw === undefined ? undefined : parseRoutes(routesRaw, problems)
  const trustedProxies = trustedProxiesText === undefined ? [] : parseCidrs('BFF_TRUSTED_PROXIES', trustedProxiesText, problems)
  if (trustedProxies.some((range) => range.endsWith('/0'))) {
    warnings.push('BFF_TRUSTED_PROXIES trusts every address (a /0 range): any client can then choose the address bffgate reports for it')
  }
  const loginParameters = loginParametersRaw?.length === 1 && loginParametersRaw[0] === 'none' ? [] : loginParametersRaw
  if (loginParameters !== undefined) problems.push(...checkLoginParameterNames(loginParameters, 'BFF_LOGIN_PARAMETERS'))
  if (loginErrorPath !== undefined) problems.push(...checkLoginErrorPath(loginErrorPath.trim(), 'BFF_LOGIN_ERROR_PATH'))
  if (contentSecurityPolicy !== undefined) {
    const csp = checkContentSecurityPolicy(contentSecurityPolicy, 'BFF_CONTENT_SECURITY_POLICY')
    problems.push(...csp.problems)
    warnings.push(...csp.warnings)
  }

  const revocation = readRevocationConfig(read, publicUrl?.origin, problems, warnings)
  if (problems.length > 0) throw new ConfigError(problems, unknown)

  const origin = publicUrl!.origin
  return deepFreeze({
    port: port!,
    host: host!,
    admin: { port: adminPort!, host: adminHost! },
    publicUrl: origin,
    oidc: {
      // Kept as written: openid-client compares the issuer exactly, trailing slash included.
      issuer: issuerText!.trim(),
      clientId: clientId!,
      ...(clientSecret !== undefined && { clientSecret }),
      ...(clientPrivateKey !== undefined && { clientPrivateKey }),
      tokenEndpointAuthMethod: authMethod ?? (clientPrivateKey !== undefined ? 'private_key_jwt' : 'client_secret_post'),
      scopes: scopes!,
      ...(audience !== undefined && { audience }),
      timeoutSeconds: timeoutSeconds!,
      allowInsecureHttp: allowInsecureHttp!,
      redirectUri: `${origin}/bff/callback`,
      postLogoutRedirectUri: postLogoutRedirectUrl?.href ?? `${origin}/bff/logged-out`,
      revokeRefreshTokenOnLogout: revokeOnLogout!,
      dpop: dpop!,
      par: par!,
    },
    redis: {
      url: redisUrl!.href,
      keyPrefix: keyPrefix!,
      ...(redisUsername !== undefined && { username: redisUsername }),
      ...(redisPassword !== undefined && { password: redisPassword }),
      ...(sentinelNodes !== undefined && { sentinel: { nodes: sentinelNodes, masterName: sentinelMasterName!, ...(sentinelPassword !== undefined && { password: sentinelPassword }) } }),
      ...(seedNodes !== undefined && { cluster: { nodes: seedNodes } }),
    },
    trustedProxies,
    upstreamTimeoutSeconds: upstreamTimeoutSeconds!,
    server: {
      connectionTimeoutSeconds: connectionTimeoutSeconds!,
      requestTimeoutSeconds: requestTimeoutSeconds!,
      keepAliveTimeoutSeconds: keepAliveTimeoutSeconds!,
      maxHeaderBytes: maxHeaderBytes!,
      maxEventLoopDelayMs: maxEventLoopDelayMs!,
    },
    session: {
      store,
      secrets: secrets!,
      cookieName: cookieName!,
      idleSeconds: idleSeconds!,
      absoluteSeconds: absoluteSeconds!,
      refreshSkewSeconds: refreshSkewSeconds!,
      refreshLockSeconds: refreshLockSeconds!,
      ...(checkSeconds !== undefined && { checkSeconds }),
      refreshTokenKind,
    },
    sessionEvents: {
      warningSeconds: warningSeconds!,
      maxStreams: maxStreams!,
      maxPerSession: maxStreamsPerSession!,
      heartbeatSeconds: heartbeatSeconds!,
    },
    backchannelLogout: backchannelLogout!,
    revocation,
    login: { parameters: [...new Set(loginParameters!)], errorPath: loginErrorPath!.trim() },
    routes: routes!,
    ...(staticDir !== undefined && { staticDir }),
    contentSecurityPolicy: contentSecurityPolicy!.trim(),
    logLevel: logLevel!,
    startupTimeoutSeconds: startupTimeoutSeconds!,
    rateLimits: {
      windowSeconds: rateLimitWindowSeconds!,
      login: rateLimitLogin!,
      callback: rateLimitCallback!,
      backchannelLogout: rateLimitBackchannel!,
    },
    warnings,
  })
}

/** Reads typed values from raw settings, recording a problem instead of throwing. */
class SettingReader {
  readonly #raw: (name: SettingName) => Raw
  readonly #problems: string[]
  constructor (raw: (name: SettingName) => Raw, problems: string[]) {
    this.#raw = raw
    this.#problems = problems
  }

  #get (name: SettingName): string | undefined {
    const value = this.#raw(name)
    const spec = specByName.get(name)!
    if (value === undefined || value === '') {
      if (spec.required) this.#problems.push(`"${name}" is required${spec.secret ? ` (or "${name}_FILE")` : ''}`)
      return undefined
    }
    if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') {
      this.#problems.push(`"${name}" must be a ${spec.kind}, not ${Array.isArray(value) ? 'an array' : typeof value}`)
      return undefined
    }
    const text = String(value)
    if (spec.kind === 'enum' && !spec.values!.includes(text)) {
      this.#problems.push(`"${name}" must be one of ${spec.values!.join(', ')}`)
      return undefined
    }
    return text
  }

  string (name: SettingName): string | undefined { return this.#get(name) }

  integer (name: SettingName): number | undefined {
    const text = this.#get(name)
    if (text === undefined) return undefined
    const { min = 0, max } = specByName.get(name)!
    const value = /^\d+$/.test(text.trim()) ? Number(text) : Number.NaN
    if (!Number.isSafeInteger(value) || value < min) {
      this.#problems.push(`"${name}" must be ${min > 0 ? 'a positive' : 'a non-negative'} integer${min > 1 ? ` of at least ${min}` : ''}, got ${JSON.stringify(text)}`)
      return undefined
    }
    if (max !== undefined && value > max) {
      this.#problems.push(`"${name}" must be at most ${max}, got ${JSON.stringify(text)}`)
      return undefined
    }
    return value
  }

  boolean (name: SettingName): boolean | undefined {
    const text = this.#get(name)
    if (text === undefined) return undefined
    const lower = text.trim().toLowerCase()
    if (lower === 'true' || lower === '1' || lower === 'yes') return true
    if (lower === 'false' || lower === '0' || lower === 'no') return false
    this.#problems.push(`"${name}" must be true or false, got ${JSON.stringify(text)}`)
    return undefined
  }

  url (name: SettingName): URL | undefined {
    const text = this.#get(name)
    return text === undefined ? undefined : parseUrl(name, text, this.#problems)
  }

  list (name: SettingName, separator: RegExp): string[] | undefined {
    const text = this.#get(name)
    if (text === undefined) return undefined
    const items = text.split(separator).map((s) => s.trim()).filter((s) => s !== '')
    if (items.length === 0) this.#problems.push(`"${name}" must not be empty`)
    return items
  }

  json (name: SettingName): unknown {
    const value = this.#raw(name)
    if (typeof value !== 'string') return value
    try {
      return JSON.parse(value)
    } catch {
      this.#problems.push(`"${name}" must be valid JSON`)
      return undefined
    }
  }
}

/**
 * The declared setting closest to a mistyped name (`BFF_SESION_SECRET` → `BFF_SESSION_SECRET`,
 * `BFF_SESSION_SECRET_FLIE` → `BFF_SESSION_SECRET_FILE`), if one is near enough to be meant.
 */
export function closestSettingName (name: string): string | undefined {
  const candidates = settings.flatMap((s: SettingSpec) => s.secret ? [s.name, `${s.name}_FILE`] : [s.name])
  let best: string | undefined
  let bestDistance = Infinity
  for (const candidate of candidates) {
    const d = editDistance(name, candidate)
    if (d < bestDistance) { best = candidate; bestDistance = d }
  }
  // Up to a quarter of the name's letters (at least 2) may differ: typos, not other settings.
  return bestDistance <= Math.max(2, Math.floor(name.length / 4)) ? best : undefined
}

/** Damerau-Levenshtein distance (optimal string alignment): a swap of neighbours counts once. */
function editDistance (a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_row, i) => Array.from({ length: b.length + 1 }, (_column, j) => (i === 0 ? j : j === 0 ? i : 0)))
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1)
    }
  }
  return d[a.length]![b.length]!
}

/** `host:port` items (IPv6 in brackets); each bad item is a problem naming `name`. */
function parseHostPorts (name: string, items: readonly string[], problems: string[]): Array<{ host: string; port: number }> {
  const nodes: Array<{ host: string; port: number }> = []
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

/** IP addresses or CIDR ranges, each as `address/prefix`; each bad item is a problem naming `name`. */
function parseCidrs (name: string, items: readonly string[], problems: string[]): string[] {
  const ranges: string[] = []
  for (const item of items) {
    const match = /^([0-9A-Fa-f.:]+)(?:\/(\d{1,3}))?$/.exec(item)
    const family = match === null ? 0 : isIP(match[1]!)
    const bits = family === 4 ? 32 : 128
    const prefix = match?.[2] === undefined ? bits : Number(match[2])
    if (family === 0 || prefix > bits) {
      problems.push(`"${name}" must be a comma-separated list of IP addresses or CIDR ranges (like 10.0.0.0/8 or 2001:db8::/32), got ${JSON.stringify(item)}`)
    } else {
      ranges.push(`${match![1]}/${prefix}`)
    }
  }
  return ranges
}

function parseUrl (name: string, text: string, problems: string[]): URL | undefined {
  try {
    return new URL(text.trim())
  } catch {
    // Never echo the value: it may carry a password.
    problems.push(`"${name}" must be an absolute URL`)
    return undefined
  }
}

function readConfigFile (path: string | undefined, readFile: (path: string) => string, problems: string[]): Record<string, unknown> {
  if (path === undefined || path === '') return {}
  let text: string
  try {
    text = readFile(path)
  } catch (err) {
    problems.push(`"BFF_CONFIG" names a file that cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`)
    return {}
  }
  let parsed: unknown
  try {
    parsed = parseYaml(text)
  } catch (err) {
    problems.push(`"BFF_CONFIG" file is neither valid YAML nor JSON: ${(err as Error).message.split('\n')[0]}`)
    return {}
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    problems.push('"BFF_CONFIG" file must hold a mapping of setting names to values')
    return {}
  }
  const values: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(parsed)) {
    const spec = specByName.get(key)
    if (spec === undefined || key === 'BFF_CONFIG') problems.push(`"BFF_CONFIG" file has an unknown setting "${key}"`)
    else if (spec.secret) problems.push(`"BFF_CONFIG" file must not hold the secret "${key}"; use the environment or "${key}_FILE"`)
    else values[key] = value
  }
  return values
}

const ROUTE_KEYS = new Set(['path', 'upstream', 'rewritePrefix', 'audience', 'scope', 'token', 'csrf', 'websocket', 'dpop'])
const TOKEN_MODES: readonly RouteTokenMode[] = ['required', 'optional', 'none']
const CSRF_POLICIES: readonly RouteCsrfPolicy[] = ['header', 'same-origin']
/** bffgate's own paths: no route may take them, and the SPA's history fallback never answers them. */
export const RESERVED_PREFIXES = ['/bff', '/healthz', '/readyz', '/metrics']

function parseRoutes (value: unknown, problems: string[]): RouteConfig[] {
  if (!Array.isArray(value)) {
    problems.push('"BFF_ROUTES" must be a JSON array of routes')
    return []
  }
  const routes: RouteConfig[] = []
  const seen = new Set<string>()
  value.forEach((item: unknown, i) => {
    const where = `"BFF_ROUTES"[${i}]`
    if (item === null || typeof item !== 'object' || Array.isArray(item)) {
      problems.push(`${where} must be an object`)
      return
    }
    const r = item as Record<string, unknown>
    for (const key of Object.keys(r)) if (!ROUTE_KEYS.has(key)) problems.push(`${where} has an unknown key "${key}"`)
    const path = typeof r.path === 'string' ? r.path.replace(/\/+$/, '') : undefined
    if (path === undefined || !/^\/[A-Za-z0-9._~!$&'()*+,;=:@/-]+$/.test(path) || path.includes('//') || /\/\.\.?(\/|$)/.test(path)) {
      problems.push(`${where}.path must be a path prefix like "/api"`)
    } else if (RESERVED_PREFIXES.some((p) => path === p || path.startsWith(`${p}/`))) {
      problems.push(`${where}.path "${path}" collides with bffgate's own endpoints`)
    } else if (seen.has(path)) {
      problems.push(`${where}.path "${path}" is configured twice`)
    } else seen.add(path)
    let upstream: URL | undefined
    try {
      upstream = typeof r.upstream === 'string' ? new URL(r.upstream) : undefined
    } catch { /* reported below */ }
    if (upstream === undefined || (upstream.protocol !== 'http:' && upstream.protocol !== 'https:')) {
      problems.push(`${where}.upstream must be an http(s) URL`)
    } else if (upstream.pathname !== '/' || upstream.search || upstream.hash || upstream.username || upstream.password) {
      problems.push(`${where}.upstream must be an origin only, like "http://api:9000" (use rewritePrefix for a base path)`)
    }
    const rewritePrefix = r.rewritePrefix ?? ''
    if (typeof rewritePrefix !== 'string' || (rewritePrefix !== '' && !/^\/[A-Za-z0-9._~!$&'()*+,;=:@/-]*$/.test(rewritePrefix))) {
      problems.push(`${where}.rewritePrefix must be "" or a path starting with "/"`)
    }
    const token = r.token ?? 'required'
    if (!TOKEN_MODES.includes(token as RouteTokenMode)) problems.push(`${where}.token must be one of ${TOKEN_MODES.join(', ')}`)
    const csrf = r.csrf ?? 'header'
    if (!CSRF_POLICIES.includes(csrf as RouteCsrfPolicy)) problems.push(`${where}.csrf must be one of ${CSRF_POLICIES.join(', ')}`)
    for (const key of ['audience', 'scope'] as const) {
      if (r[key] !== undefined && (typeof r[key] !== 'string' || r[key] === '')) problems.push(`${where}.${key} must be a non-empty string`)
    }
    for (const key of ['websocket', 'dpop'] as const) {
      if (r[key] !== undefined && typeof r[key] !== 'boolean') problems.push(`${where}.${key} must be true or false`)
    }
    if (path !== undefined && upstream !== undefined) {
      routes.push({
        path,
        upstream: upstream.origin,
        rewritePrefix: typeof rewritePrefix === 'string' ? rewritePrefix.replace(/\/+$/, '') : '',
        ...(typeof r.audience === 'string' && { audience: r.audience }),
        ...(typeof r.scope === 'string' && { scope: r.scope }),
        token: token as RouteTokenMode,
        csrf: csrf as RouteCsrfPolicy,
        websocket: r.websocket === true,
        dpop: r.dpop === true,
      })
    }
  })
  return routes
}

/** True for hosts a browser treats as a secure context over plain http. */
export function isLoopbackHost (hostname: string): boolean {
  return hostname === 'localhost' || hostname.endsWith('.localhost') || /^127\.\d+\.\d+\.\d+$/.test(hostname) || hostname === '[::1]'
}

function deepFreeze<T> (value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const v of Object.values(value)) deepFreeze(v)
  }
  return value
}
