/** Whether and how a route attaches the session's access token. */
export type RouteTokenMode = 'required' | 'optional' | 'none'

/** One proxied API route (design §6): requests under `path` go to `upstream`, nowhere else. */
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

/** The validated, frozen configuration `buildApp()` runs on. */
export interface Config {
  readonly port: number
  readonly host: string
  /** Origin only, no trailing slash, e.g. `https://app.example.com`. */
  readonly publicUrl: string
  readonly oidc: OidcConfig
  readonly redis: { readonly url: string; readonly keyPrefix: string }
  readonly session: SessionConfig
  readonly backchannelLogout: boolean
  readonly routes: readonly RouteConfig[]
  readonly staticDir?: string
  readonly logLevel: string
  /** Things that are allowed but deserve a loud warning at start. */
  readonly warnings: readonly string[]
}
