import type { RevocationConfig } from '../revocation/config.ts'

/** Whether and how a route attaches the session's access token. */
export type RouteTokenMode = 'required' | 'optional' | 'none'

/**
 * How a route refuses cross-site requests (docs/spa.md): `header` needs `x-csrf: 1` on every
 * request; `same-origin` also takes GET and HEAD on the browser's own signal that the
 * request comes from this origin (Fetch Metadata), for `EventSource`, `<img>`, `<a download>`
 * and `<video>`, which cannot set headers. Unsafe methods always need the header.
 */
export type RouteCsrfPolicy = 'header' | 'same-origin'

/** One proxied API route (docs/configuration.md, "Routes"): requests under `path` go to `upstream`, nowhere else. */
export interface RouteConfig {
  /** Path prefix, starting with `/`, without a trailing slash, e.g. `/api`. */
  readonly path: string
  /** Upstream origin, e.g. `http://api:9000`. */
  readonly upstream: string
  /** Path prefix that replaces `path` upstream; `''` (the default) strips it: `/api/x` → `upstream/x`. */
  readonly rewritePrefix: string
  readonly audience?: string
  readonly scope?: string
  readonly token: RouteTokenMode
  readonly csrf: RouteCsrfPolicy
  readonly websocket: boolean
  readonly dpop: boolean
}

export type TokenEndpointAuthMethod = 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt'

export interface OidcConfig {
  readonly issuer: string
  readonly clientId: string
  readonly clientSecret?: string
  readonly clientPrivateKey?: string
  readonly tokenEndpointAuthMethod: TokenEndpointAuthMethod
  readonly scopes: readonly string[]
  readonly audience?: string
  readonly timeoutSeconds: number
  readonly allowInsecureHttp: boolean
  /** `BFF_PUBLIC_URL` + `/bff/callback`. */
  readonly redirectUri: string
  readonly postLogoutRedirectUri: string
  readonly revokeRefreshTokenOnLogout: boolean
  /** Pushed Authorization Requests (`BFF_OIDC_PAR`). */
  readonly par: boolean
  /** DPoP for every token (`BFF_DPOP`). */
  readonly dpop: boolean
}

/** Login options (`BFF_LOGIN_PARAMETERS`, `BFF_LOGIN_ERROR_PATH`). */
export interface LoginConfig {
  /** Query parameters of `/bff/login` forwarded to the authorization request. */
  readonly parameters: readonly string[]
  /** Where a navigating browser lands when a login fails. */
  readonly errorPath: string
}

/** Which kind of refresh token the scopes ask for. */
export type RefreshTokenKind = 'online' | 'offline' | 'none'

export interface SessionConfig {
  readonly store: 'redis' | 'memory'
  /** Newest first; the first protects new data. */
  readonly secrets: readonly string[]
  readonly cookieName: string
  readonly idleSeconds: number
  readonly absoluteSeconds: number
  readonly refreshSkewSeconds: number
  readonly refreshLockSeconds: number
  readonly checkSeconds?: number
  readonly refreshTokenKind: RefreshTokenKind
}

/** A `host:port` pair (Sentinel or Cluster seed). */
export interface HostPort {
  readonly host: string
  readonly port: number
}

/**
 * Where sessions live. `url` alone is a standalone Redis; `sentinel` finds the master through
 * sentinels; `cluster` seeds a Redis Cluster. `url` still supplies TLS (`rediss:`), the
 * database and credentials unless `username`/`password` override them.
 */
export interface RedisConfig {
  readonly url: string
  readonly keyPrefix: string
  readonly username?: string
  readonly password?: string
  readonly sentinel?: { readonly nodes: readonly HostPort[]; readonly masterName: string; readonly password?: string }
  readonly cluster?: { readonly nodes: readonly HostPort[] }
}

/** `GET /bff/session-events`: the session's end pushed to the page. */
export interface SessionEventsConfig {
  /** Seconds before the absolute end that `session-expiring` is sent; 0: never. */
  readonly warningSeconds: number
  /** Streams per process; 0 turns the endpoint off. */
  readonly maxStreams: number
  readonly maxPerSession: number
  readonly heartbeatSeconds: number
}

/** Browser-facing server limits. */
export interface ServerLimits {
  readonly connectionTimeoutSeconds: number
  readonly requestTimeoutSeconds: number
  readonly keepAliveTimeoutSeconds: number
  readonly maxHeaderBytes: number
  /** 0 disables load shedding. */
  readonly maxEventLoopDelayMs: number
}

/**
 * One frontend: an SPA with its own OpenID client, session cookie, routes and static files
 * (docs/frontends.md). Without a `frontends` list the environment makes one, named `default`,
 * that answers every host, exactly as the top-level fields of {@link Config} describe it.
 */
export interface FrontendConfig {
  /** Lowercase letters, digits and `-`; unique. For logs, metrics and error messages. */
  readonly name: string
  /** Origin only, no trailing slash. */
  readonly publicUrl: string
  /** Mount path, e.g. `/admin`, or `''` (no prefix). Every path below is already under it. */
  readonly pathPrefix: string
  /**
   * Host names it answers (lowercase, no port, no trailing dot; src/config/host.ts); absent:
   * every host (the frontend made from the environment).
   */
  readonly hosts?: readonly string[]
  /** Its client; `redirectUri` and `postLogoutRedirectUri` include the prefix. */
  readonly oidc: OidcConfig
  readonly refreshTokenKind: RefreshTokenKind
  /** The session cookie: `path` is `/` (a `__Host-` name) or the prefix (a `__Secure-` name). */
  readonly cookie: { readonly name: string; readonly path: string }
  /** Route paths include the prefix. */
  readonly routes: readonly RouteConfig[]
  readonly staticDir?: string
  readonly contentSecurityPolicy: string
  /** `errorPath` includes the prefix. */
  readonly login: LoginConfig
}

/** The validated, frozen configuration `buildApp()` runs on. */
export interface Config {
  /** Browser-facing listener. */
  readonly port: number
  readonly host: string
  /** Admin listener: `/metrics` and the probes, never published. */
  readonly admin: { readonly port: number; readonly host: string }
  /** Origin only, no trailing slash, e.g. `https://app.example.com`. */
  readonly publicUrl: string
  readonly oidc: OidcConfig
  readonly redis: RedisConfig
  /**
   * Addresses or CIDR ranges (`addr/prefix`) of the proxies whose `X-Forwarded-For` is believed
   * (`BFF_TRUSTED_PROXIES`); empty: none.
   */
  readonly trustedProxies: readonly string[]
  /** Seconds a proxied request waits for the upstream's response headers (then 504). */
  readonly upstreamTimeoutSeconds: number
  readonly server: ServerLimits
  readonly session: SessionConfig
  readonly sessionEvents: SessionEventsConfig
  readonly backchannelLogout: boolean
  /** Shared Signals receiver and Global Token Revocation (src/revocation/config.ts). */
  readonly revocation: RevocationConfig
  readonly login: LoginConfig
  readonly routes: readonly RouteConfig[]
  readonly staticDir?: string
  /** Sent with the static files (the SPA). */
  readonly contentSecurityPolicy: string
  readonly logLevel: string
  /** Seconds the start retries an unreachable IdP or Redis before giving up (0: no retry). */
  readonly startupTimeoutSeconds: number
  /** Requests per client IP per window on the public `/bff/*` endpoints; 0 turns one off. */
  readonly rateLimits: {
    readonly windowSeconds: number
    readonly login: number
    readonly callback: number
    readonly backchannelLogout: number
    /** Global Token Revocation and the SSF push route, each. */
    readonly revocation: number
  }
  /**
   * Every frontend, the first one first. The top-level `publicUrl`, `oidc`, `session.cookieName`,
   * `session.refreshTokenKind`, `login`, `routes`, `staticDir` and `contentSecurityPolicy` are
   * those of the first: what the single-frontend request path runs on.
   */
  readonly frontends: readonly FrontendConfig[]
  /** Things that are allowed but deserve a loud warning at start. */
  readonly warnings: readonly string[]
}
