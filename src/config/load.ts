import { checkContentSecurityPolicy } from './csp.ts'
import {
  checkClientAuthentication,
  checkHostCookieName,
  checkIssuer,
  checkListeners,
  checkPublicUrl,
  checkRedisTopology,
  checkSessionSecrets,
  checkSessionTimings,
  parseTrustedProxies,
  refreshTokenKindOf,
} from './checks.ts'
import { checkLoginErrorPath, checkLoginParameterNames } from './login.ts'
import { readRevocationConfig } from '../revocation/config.ts'
import { parseUrl, SettingReader } from './reader.ts'
import { parseRoutes } from './routes.ts'
import { assembleFrontend, parseFrontends, type FrontendDefaults, type FrontendParts } from './frontends.ts'
import { settings, type SettingSpec } from './schema.ts'
import { createRawSource, isSet, readConfigFile, unknownSettingWarnings, type Env, type ReadFile } from './sources.ts'
import type { Config, RefreshTokenKind, TokenEndpointAuthMethod } from './types.ts'

export { RESERVED_PREFIXES } from './routes.ts'

/** Thrown by {@link loadConfig}: every problem found, one per line, each naming its variable. */
export class ConfigError extends Error {
  readonly code = 'BFF_ERR_CONFIG_INVALID'
  readonly problems: readonly string[]
  /** Unknown variables that look like typos: often the reason a required setting is "missing". */
  readonly hints: readonly string[]
  constructor(problems: readonly string[], hints: readonly string[] = []) {
    super(
      `invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}${hints.map((h) => `\nnote: ${h}`).join('')}`,
    )
    this.name = 'ConfigError'
    this.problems = problems
    this.hints = hints
  }
}

export interface LoadConfigOptions {
  /** Reads `*_FILE` secrets, `BFF_CONFIG` and the frontends' secret files; injected so that tests need no files. */
  readonly readFile?: ReadFile
}

const ENV_CLIENT_LABELS = {
  secret: '"BFF_OIDC_CLIENT_SECRET"',
  privateKey: '"BFF_OIDC_CLIENT_PRIVATE_KEY"',
  authMethod: '"BFF_OIDC_TOKEN_ENDPOINT_AUTH_METHOD"',
}

/**
 * Reads and validates the whole configuration. Pure apart from `readFile`.
 *
 * Precedence per setting (src/config/sources.ts): the environment variable, then `<NAME>_FILE`
 * for secrets, then the `BFF_CONFIG` file, then the default. Values are read and typed
 * (reader.ts), checked area by area (checks.ts, routes.ts, login.ts, csp.ts) and assembled.
 * Collects every problem and throws one {@link ConfigError}.
 */
export function loadConfig(env: Env, options: LoadConfigOptions = {}): Config {
  const readFile =
    options.readFile ??
    (() => {
      throw new Error('no file reader')
    })
  const problems: string[] = []
  const warnings: string[] = []

  const file = readConfigFile(env.BFF_CONFIG, readFile, problems)
  const unknown = unknownSettingWarnings(env)
  warnings.push(...unknown)
  const raw = createRawSource(env, file.values, readFile, problems)
  // With a frontends list, the settings a frontend takes over are not required here.
  const withFrontends = file.frontends !== undefined
  const read = new SettingReader(raw, problems, withFrontends ? FRONTEND_SETTINGS : undefined)
  if (withFrontends) problems.push(...checkNoOwnFrontendSettings(env, file.values))

  const port = read.integer('BFF_PORT')
  const host = read.string('BFF_HOST')
  const adminPort = read.integer('BFF_ADMIN_PORT')
  const adminHost = read.string('BFF_ADMIN_HOST')
  const publicUrl = read.url('BFF_PUBLIC_URL')
  const issuerText = read.string('BFF_OIDC_ISSUER')
  const issuer = issuerText === undefined ? undefined : parseUrl('"BFF_OIDC_ISSUER"', issuerText, problems)
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
  const rateLimitRevocation = read.integer('BFF_RATE_LIMIT_REVOCATION')

  problems.push(...checkListeners(port, adminPort))
  if (publicUrl) problems.push(...checkPublicUrl('"BFF_PUBLIC_URL"', publicUrl))
  if (issuer) problems.push(...checkIssuer('"BFF_OIDC_ISSUER"', issuer, allowInsecureHttp))
  if (allowInsecureHttp)
    warnings.push('BFF_ALLOW_INSECURE_HTTP=true: plain-http identity provider allowed; never use this in production')
  const { sentinelNodes, seedNodes } = checkRedisTopology(
    { url: redisUrl, sentinels, sentinelMasterName, sentinelPassword, clusterNodes },
    problems,
  )
  if (store === 'memory')
    warnings.push(
      'BFF_SESSION_STORE=memory: sessions live in this process only, are lost on restart and are not shared between replicas; development only',
    )

  if (!withFrontends)
    problems.push(...checkClientAuthentication(ENV_CLIENT_LABELS, { clientSecret, clientPrivateKey, authMethod }))
  const refreshTokenKind: RefreshTokenKind =
    scopes === undefined ? 'none' : refreshTokenKindOf('"BFF_OIDC_SCOPES"', scopes, problems)
  if (secrets) problems.push(...checkSessionSecrets(secrets))
  if (cookieName !== undefined) problems.push(...checkHostCookieName('"BFF_SESSION_COOKIE_NAME"', cookieName))
  problems.push(...checkSessionTimings({ idleSeconds, absoluteSeconds, heartbeatSeconds, connectionTimeoutSeconds }))

  const routes = routesRaw === undefined ? undefined : parseRoutes(routesRaw, '"BFF_ROUTES"', problems)
  const trustedProxies = parseTrustedProxies(trustedProxiesText, problems, warnings)
  const loginParameters = loginParametersRaw?.length === 1 && loginParametersRaw[0] === 'none' ? [] : loginParametersRaw
  if (loginParameters !== undefined) problems.push(...checkLoginParameterNames(loginParameters, 'BFF_LOGIN_PARAMETERS'))
  if (loginErrorPath !== undefined) problems.push(...checkLoginErrorPath(loginErrorPath.trim(), 'BFF_LOGIN_ERROR_PATH'))
  if (contentSecurityPolicy !== undefined) {
    const csp = checkContentSecurityPolicy(contentSecurityPolicy, 'BFF_CONTENT_SECURITY_POLICY')
    problems.push(...csp.problems)
    warnings.push(...csp.warnings)
  }

  // Read once the frontends are known (its audiences default to the first frontend's origin
  // when BFF_PUBLIC_URL is unset), its problems and warnings reported here, in their place.
  const revocationAt = { problems: problems.length, warnings: warnings.length }
  let frontendParts: FrontendParts[] = []
  if (withFrontends) {
    const defaults: FrontendDefaults = {
      publicUrl: publicUrl !== undefined && checkPublicUrl('', publicUrl).length === 0 ? publicUrl : undefined,
      issuer: issuerText,
      authMethod,
      scopes,
      refreshTokenKind,
      audience,
      par,
      dpop,
      revokeRefreshTokenOnLogout: revokeOnLogout,
      timeoutSeconds,
      allowInsecureHttp,
      contentSecurityPolicy,
      loginParameters,
      loginErrorPath: loginErrorPath?.trim(),
    }
    frontendParts = parseFrontends(file.frontends, defaults, readFile, problems, warnings)
  }
  const revocationProblems: string[] = []
  const revocationWarnings: string[] = []
  const revocation = readRevocationConfig(
    read,
    publicUrl?.origin ?? frontendParts[0]?.publicUrl.origin,
    revocationProblems,
    revocationWarnings,
  )
  problems.splice(revocationAt.problems, 0, ...revocationProblems)
  warnings.splice(revocationAt.warnings, 0, ...revocationWarnings)

  if (problems.length > 0) throw new ConfigError(problems, unknown)

  if (!withFrontends) {
    // The frontend the environment describes: every host, no prefix, named `default`.
    frontendParts = [
      {
        name: 'default',
        publicUrl: publicUrl!,
        pathPrefix: '',
        issuer: issuerText!,
        clientId: clientId!,
        clientSecret,
        clientPrivateKey,
        authMethod,
        scopes: scopes!,
        refreshTokenKind,
        audience,
        par: par!,
        dpop: dpop!,
        revokeRefreshTokenOnLogout: revokeOnLogout!,
        timeoutSeconds: timeoutSeconds!,
        allowInsecureHttp: allowInsecureHttp!,
        postLogoutRedirectUrl,
        cookieName: cookieName!,
        routes: routes!,
        staticDir,
        contentSecurityPolicy: contentSecurityPolicy!,
        loginParameters: loginParameters!,
        loginErrorPath: loginErrorPath!.trim(),
      },
    ]
  }
  const frontends = frontendParts.map(assembleFrontend)
  const primary = frontends[0]!
  return deepFreeze({
    port: port!,
    host: host!,
    admin: { port: adminPort!, host: adminHost! },
    publicUrl: primary.publicUrl,
    oidc: primary.oidc,
    redis: {
      url: redisUrl!.href,
      keyPrefix: keyPrefix!,
      ...(redisUsername !== undefined && { username: redisUsername }),
      ...(redisPassword !== undefined && { password: redisPassword }),
      ...(sentinelNodes !== undefined && {
        sentinel: {
          nodes: sentinelNodes,
          masterName: sentinelMasterName!,
          ...(sentinelPassword !== undefined && { password: sentinelPassword }),
        },
      }),
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
      cookieName: primary.cookie.name,
      idleSeconds: idleSeconds!,
      absoluteSeconds: absoluteSeconds!,
      refreshSkewSeconds: refreshSkewSeconds!,
      refreshLockSeconds: refreshLockSeconds!,
      ...(checkSeconds !== undefined && { checkSeconds }),
      refreshTokenKind: primary.refreshTokenKind,
    },
    sessionEvents: {
      warningSeconds: warningSeconds!,
      maxStreams: maxStreams!,
      maxPerSession: maxStreamsPerSession!,
      heartbeatSeconds: heartbeatSeconds!,
    },
    backchannelLogout: backchannelLogout!,
    revocation,
    login: primary.login,
    routes: primary.routes,
    ...(primary.staticDir !== undefined && { staticDir: primary.staticDir }),
    contentSecurityPolicy: primary.contentSecurityPolicy,
    logLevel: logLevel!,
    startupTimeoutSeconds: startupTimeoutSeconds!,
    rateLimits: {
      windowSeconds: rateLimitWindowSeconds!,
      login: rateLimitLogin!,
      callback: rateLimitCallback!,
      backchannelLogout: rateLimitBackchannel!,
      revocation: rateLimitRevocation!,
    },
    frontends,
    warnings,
  })
}

/** Settings a frontend takes over (docs/frontends.md): not required beside a `frontends` list. */
const FRONTEND_SETTINGS: ReadonlySet<string> = new Set(
  settings.filter((s: SettingSpec) => s.frontend !== undefined).map((s) => s.name),
)

/** Settings each frontend gives itself (client, cookie, routes ...), set beside a `frontends` list: each is a problem. */
function checkNoOwnFrontendSettings(env: Env, fileValues: Readonly<Record<string, unknown>>): string[] {
  return settings
    .filter((s: SettingSpec) => s.frontend?.role === 'own' && isSet(s, env, fileValues))
    .map(
      (s: SettingSpec) =>
        `"${s.name}" is set, but with a "frontends" list each frontend gives its own ("${s.frontend!.key}"): remove it`,
    )
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const v of Object.values(value)) deepFreeze(v)
  }
  return value
}
