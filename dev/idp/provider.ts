/**
 * oidc-provider configuration that reproduces Auth0 with Online Refresh Tokens (ORTs).
 * See docs of oidc-provider 9 (docs/README.md) for every option used here.
 */
import { Provider, errors } from 'oidc-provider'
import type { Account, Client, KoaContextWithOIDC, RefreshToken, ResourceServerInfo } from 'oidc-provider'
import type { JWK } from 'jose'
import { CLAIMS_BY_SCOPE } from './accounts.ts'
import type { UserDirectory } from './accounts.ts'
import { createAdapterFactory } from './adapter.ts'
import type { DevStore } from './adapter.ts'
import { onlineRefreshTokenTtlSeconds, sessionTtlSeconds } from './lifetimes.ts'
import type { SessionLifetimes } from './lifetimes.ts'
import {
  autoConfirmLogout,
  countTokenRequests,
  ignoreAuthorizationParameters,
  enforceSecretAuthMethod,
  recordIssuedTokens,
  injectTokenFaults,
  offlineAccessWithoutConsent,
  onlineRefreshTokenExchange,
  revokedOnlineRefreshTokenEndsSession,
} from './middleware.ts'
import type { IssuedTokens, TokenFaults, TokenStats } from './middleware.ts'
import { escapeHtml, renderPage } from './html.ts'
import { IdTokenCorrupter, corruptIdTokens } from './id-token-faults.ts'
import type { IdTokenFaults } from './id-token-faults.ts'

/** A client registered at the IdP (OAuth 2.0 dynamic registration metadata names). */
export interface DevIdpClient {
  client_id: string
  /** Needed for `client_secret_basic` and `client_secret_post`. */
  client_secret?: string
  redirect_uris: string[]
  post_logout_redirect_uris?: string[]
  backchannel_logout_uri?: string
  /**
   * How the client authenticates at the token, PAR and revocation endpoints:
   * `client_secret_basic`, `client_secret_post`, `private_key_jwt` (needs {@link jwks}) or
   * `none` (a public client). Given explicitly, it is enforced strictly (a basic client
   * sending its secret in the body is refused, as at Auth0); omitted, the client is
   * registered for `client_secret_basic` and may also send its secret in the body.
   */
  token_endpoint_auth_method?: string
  /** Public keys that verify the client's `private_key_jwt` assertions. */
  jwks?: { keys: JWK[] }
}

/** Everything the provider needs, with defaults already applied. */
export interface ProviderSettings {
  issuer: string
  clients: readonly DevIdpClient[]
  users: UserDirectory
  store: DevStore
  keys: JWK[]
  cookieKeys: string[]
  apiAudience: string
  apiScopes: string
  /** More APIs a login grants besides the default one (Auth0 multi-resource refresh tokens). */
  extraApis: ReadonlyArray<{ audience: string; scopes: string }>
  accessTokenTtlSeconds: number
  idTokenTtlSeconds: number
  offlineRefreshTokenTtlSeconds: number
  clockToleranceSeconds: number
  lifetimes: SessionLifetimes
  stats: TokenStats
  faults: TokenFaults
  /** Test-only: corrupts the ID token of the next authorization_code token response. */
  idTokenFaults: IdTokenFaults
  /** Refuse authorization requests that were not pushed (PAR) first. */
  requirePushedAuthorizationRequests: boolean
  /** Front-channel authorization parameters dropped before oidc-provider sees them. */
  ignoreAuthorizationParameters: readonly string[]
  /** Demand a server-issued DPoP nonce in every token and PAR endpoint proof; needs {@link dpopNonceSecret}. */
  requireDpopNonce: boolean
  /** 32 bytes that DPoP nonces are derived from; undefined = the IdP issues no nonces. */
  dpopNonceSecret: Buffer | undefined
  /** Receives every token value the token endpoint issues. */
  issuedTokens: IssuedTokens
  /**
   * Also send back-channel logout to private-network addresses (a compose network's
   * 172.x/10.x/192.168.x); loopback is always allowed. Never in a production IdP.
   */
  allowPrivateNetwork: boolean
  /**
   * Client id to `token_endpoint_auth_method`, for clients that registered one explicitly
   * (static or at runtime): they must authenticate exactly that way.
   */
  explicitAuthMethods: ReadonlyMap<string, string>
  /**
   * IPSIE SL1 `session_expiry` in ID tokens: when `enabled`, every ID token declares when the
   * IdP session ends (its auth time + the absolute lifetime), or the value `overrides` holds
   * for the user (a ceiling lowered later, as an IdP policy change would).
   */
  sessionExpiry: { enabled: boolean; overrides: Map<string, number> }
}

const BOTH_REFRESH_SCOPES = 'Cannot request both online_access and offline_access scopes'

function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase()
  return host === 'localhost' || host.endsWith('.localhost') || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host)
}

/**
 * oidc-provider sends outgoing requests (back-channel logout) through a dispatcher that refuses
 * loopback and private addresses (SSRF protection). A development IdP must reach relying
 * parties on 127.0.0.1, so loopback targets get a plain fetch; every other target keeps the
 * protection. Never do this in a production IdP.
 */
function fetchAllowingLoopback(
  url: string | URL,
  options: RequestInit & { dispatcher?: unknown },
  allowPrivateNetwork = false,
): Promise<Response> {
  if (allowPrivateNetwork || isLoopbackHost(new URL(url).hostname)) {
    const { dispatcher: _protectedDispatcher, ...rest } = options
    return globalThis.fetch(url, rest)
  }
  return globalThis.fetch(url, options)
}

/** Every scope named in the request, from the raw query/body too (oidc-provider may have dropped some). */
function requestedScopes(ctx: KoaContextWithOIDC): Set<string> {
  const sources = [ctx.oidc?.params?.scope, ctx.query.scope, ctx.oidc?.body?.scope]
  const scopes = new Set<string>()
  for (const source of sources) {
    if (typeof source === 'string') for (const scope of source.split(' ')) scopes.add(scope)
  }
  return scopes
}

/**
 * Auth0's `audience` parameter at the token endpoint (a multi-resource refresh token exchanged
 * for another API). oidc-provider only reads RFC 8707 `resource` there, but keeps every
 * field of the parsed body in `ctx.oidc.body`.
 */
function tokenRequestAudience(ctx: KoaContextWithOIDC): string | undefined {
  if (ctx.oidc?.route !== 'token') return undefined
  const audience = ctx.oidc.body?.audience
  if (audience === undefined || audience === '') return undefined
  if (typeof audience !== 'string') throw new errors.InvalidRequest('audience must be given once')
  return audience
}

/** The APIs a code or refresh token was granted for. */
function grantedResources(token: { resource?: string | string[] }): string[] {
  if (token.resource === undefined) return []
  return Array.isArray(token.resource) ? token.resource : [token.resource]
}

/** The oidc-provider metadata of a client, static or registered at runtime. */
export function clientMetadata(client: DevIdpClient): Record<string, unknown> {
  return {
    client_id: client.client_id,
    ...(client.client_secret === undefined ? {} : { client_secret: client.client_secret }),
    ...(client.jwks === undefined ? {} : { jwks: client.jwks }),
    redirect_uris: client.redirect_uris,
    post_logout_redirect_uris: client.post_logout_redirect_uris ?? [],
    ...(client.backchannel_logout_uri === undefined
      ? {}
      : { backchannel_logout_uri: client.backchannel_logout_uri, backchannel_logout_session_required: true }),
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: client.token_endpoint_auth_method ?? 'client_secret_basic',
    // Every ID token states auth_time, as Auth0's do, so a login by single sign-on shows how
    // old the IdP session's authentication is (not only when max_age asks for it).
    require_auth_time: true,
  }
}

/** Builds the configured oidc-provider instance, with its Auth0-compatibility middleware installed. */
export function createDevProvider(settings: ProviderSettings): Provider {
  const { lifetimes, users, apiAudience } = settings

  const resourceServerOf = (audience: string, scope: string): ResourceServerInfo => ({
    scope,
    audience,
    accessTokenTTL: settings.accessTokenTtlSeconds,
    accessTokenFormat: 'jwt',
    jwt: { sign: { alg: 'RS256' } },
  })
  const resourceServers = new Map<string, ResourceServerInfo>([
    [apiAudience, resourceServerOf(apiAudience, settings.apiScopes)],
  ])
  for (const api of settings.extraApis) resourceServers.set(api.audience, resourceServerOf(api.audience, api.scopes))

  const provider = new Provider(settings.issuer, {
    adapter: createAdapterFactory(settings.store),
    clients: settings.clients.map(clientMetadata),
    jwks: { keys: settings.keys },
    cookies: {
      // Distinct names: browsers share cookies across ports of one host, and the BFF under
      // test runs on the same 127.0.0.1.
      names: { session: 'idp_session', interaction: 'idp_interaction', resume: 'idp_interaction_resume' },
      keys: settings.cookieKeys,
      long: { httpOnly: true, sameSite: 'lax' },
      short: { httpOnly: true, sameSite: 'lax' },
    },
    clockTolerance: settings.clockToleranceSeconds,
    scopes: ['openid', 'profile', 'email', 'offline_access', 'online_access'],
    claims: { acr: null, sid: null, auth_time: null, iss: null, ...CLAIMS_BY_SCOPE },
    // Auth0's `audience` authorization parameter selects the API (resource indicator). The
    // validator also enforces Auth0's rule against asking for both kinds of refresh token;
    // oidc-provider calls every extraParams validator on each authorization request, after
    // redirect_uri is validated, so the error goes back to the client as a redirect.
    extraParams: {
      audience(ctx: KoaContextWithOIDC) {
        const scopes = requestedScopes(ctx)
        if (scopes.has('online_access') && scopes.has('offline_access')) {
          throw new errors.InvalidRequest(BOTH_REFRESH_SCOPES)
        }
      },
    },
    features: {
      devInteractions: { enabled: false },
      backchannelLogout: { enabled: true },
      // Pushed authorization requests (RFC 9126) at /request; oidc-provider enables them by
      // default, spelled out here because bffgate's BFF_OIDC_PAR depends on them.
      pushedAuthorizationRequests: {
        enabled: true,
        requirePushedAuthorizationRequests: settings.requirePushedAuthorizationRequests,
      },
      // DPoP is on (oidc-provider's default). Nonces exist only when a secret is configured;
      // the token and PAR endpoints then answer a proof without one with `use_dpop_nonce`.
      dPoP: {
        enabled: true,
        ...(settings.dpopNonceSecret === undefined ? {} : { nonceSecret: settings.dpopNonceSecret }),
        requireNonce: (ctx: KoaContextWithOIDC) =>
          settings.requireDpopNonce &&
          (ctx.oidc?.route === 'token' || ctx.oidc?.route === 'pushed_authorization_request'),
      },
      revocation: {
        enabled: true,
        // A client may only revoke its own tokens.
        allowedPolicy: async (_ctx: KoaContextWithOIDC, client: Client, token: { clientId?: string }) =>
          token.clientId === client.clientId,
      },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: async (ctx: KoaContextWithOIDC, form: string) => {
          ctx.body = renderPage(
            'Sign out',
            `${form}<button type="submit" form="op.logoutForm" name="logout" value="yes">Sign out</button>`,
          )
        },
        postLogoutSuccessSource: async (ctx: KoaContextWithOIDC) => {
          ctx.body = renderPage('Signed out', '<p>You are signed out.</p>')
        },
      },
      resourceIndicators: {
        enabled: true,
        // At authorization: the API of Auth0's `audience` parameter (default: the default
        // API) comes first, followed by every other configured API, so one login grants them
        // all, as Auth0 does for a first-party app with a multi-resource refresh token policy.
        // At the token endpoint, for a code or refresh token granted several APIs: the one
        // named by `audience`, else the first (the authorization's own audience).
        defaultResource: async (ctx: KoaContextWithOIDC, _client: Client, oneOf?: string[]) => {
          if (oneOf) {
            // Several `resource` values in one token request: oidc-provider refuses them.
            if (Array.isArray(ctx.oidc?.params?.resource)) return oneOf
            return tokenRequestAudience(ctx) ?? oneOf[0]
          }
          const audience = ctx.oidc?.params?.audience
          const primary = typeof audience === 'string' && audience !== '' ? audience : apiAudience
          const all = [...new Set([primary, ...resourceServers.keys()])]
          return all.length === 1 ? primary : all
        },
        // Code and refresh grants reuse the APIs granted at authorization (Auth0 clients
        // repeat no audience at the token endpoint, or name one of those APIs). An audience
        // the token was not granted is refused here; an RFC 8707 `resource` is checked by
        // oidc-provider itself.
        useGrantedResource: async (ctx: KoaContextWithOIDC, token: { resource?: string | string[] }) => {
          const audience = tokenRequestAudience(ctx)
          if (audience !== undefined && !grantedResources(token).includes(audience)) {
            throw new errors.InvalidTarget(`audience ${audience} was not granted to this token`)
          }
          return true
        },
        getResourceServerInfo: async (_ctx: KoaContextWithOIDC, resource: string) => {
          const info = resourceServers.get(resource)
          if (!info) throw new errors.InvalidTarget(`unknown API audience: ${resource}`)
          return info
        },
      },
    },
    // online_access: only authorization codes (Auth0: ORTs need a browser login session).
    issueRefreshToken: async (
      _ctx: KoaContextWithOIDC,
      client: Client,
      source: { kind: string; scopes: Set<string> },
    ) => {
      if (!client.grantTypeAllowed('refresh_token')) return false
      if (source.scopes.has('offline_access')) return true
      return source.kind === 'AuthorizationCode' && source.scopes.has('online_access')
    },
    // Everything but offline_access dies with the session, ORTs included.
    expiresWithSession: async (_ctx: KoaContextWithOIDC, source: { scopes: Set<string> }) =>
      !source.scopes.has('offline_access'),
    // oidc-provider's default rotates in some cases; Auth0 never rotates ORTs and (with
    // rotation enabled) always rotates ordinary refresh tokens.
    rotateRefreshToken: (ctx: KoaContextWithOIDC) => !ctx.oidc?.entities.RefreshToken?.scopes.has('online_access'),
    ttl: {
      AccessToken: settings.accessTokenTtlSeconds,
      ClientCredentials: settings.accessTokenTtlSeconds,
      AuthorizationCode: 60,
      IdToken: settings.idTokenTtlSeconds,
      Interaction: 3600,
      DeviceCode: 600,
      BackchannelAuthenticationRequest: 600,
      PreAuthorizedCode: 600,
      Grant: Math.max(lifetimes.absoluteSeconds, settings.offlineRefreshTokenTtlSeconds),
      Session: (_ctx: KoaContextWithOIDC, session: { loginTs?: number }) =>
        sessionTtlSeconds(lifetimes, session.loginTs),
      RefreshToken: (_ctx: KoaContextWithOIDC, token: RefreshToken) =>
        token.scopes.has('online_access')
          ? onlineRefreshTokenTtlSeconds(lifetimes, token.authTime)
          : settings.offlineRefreshTokenTtlSeconds,
    },
    // The token is the authorization code or refresh token the ID token is issued from.
    findAccount: async (
      _ctx: KoaContextWithOIDC,
      sub: string,
      token?: { authTime?: number },
    ): Promise<Account | undefined> => {
      const user = users.bySub(sub)
      if (!user) return undefined
      const { sessionExpiry } = settings
      const declared = !sessionExpiry.enabled
        ? undefined
        : (sessionExpiry.overrides.get(sub) ??
          (typeof token?.authTime === 'number' ? token.authTime + lifetimes.absoluteSeconds : undefined))
      return {
        accountId: user.sub,
        claims: () => ({ ...users.claimsOf(user), ...(declared !== undefined && { session_expiry: declared }) }),
      }
    },
    interactions: {
      url: async (_ctx: KoaContextWithOIDC, interaction: { uid: string }) => `/interaction/${interaction.uid}`,
    },
    clientBasedCORS: (_ctx: KoaContextWithOIDC, origin: string, client: Client) =>
      client.redirectUris.some((uri) => URL.parse(uri)?.origin === origin),
    renderError: async (ctx: KoaContextWithOIDC, out: Record<string, string>) => {
      ctx.body = renderPage(
        'Error',
        Object.entries(out)
          .map(([key, value]) => `<p><strong>${escapeHtml(key)}</strong>: ${escapeHtml(String(value))}</p>`)
          .join(''),
      )
    },
    fetch: (url: string | URL, options: RequestInit & { dispatcher?: unknown }) =>
      fetchAllowingLoopback(url, options, settings.allowPrivateNetwork),
  })

  // Auth0 puts `sid` in every ID token; oidc-provider only for clients that registered
  // back-channel logout with session_required. Clients without it still need the sid.
  provider.Client.prototype.includeSid = () => true

  // Auth0's ORT values start with "ORT" (they stay opaque to clients). oidc-provider has no
  // option for a token value prefix, so the id generator of the RefreshToken model is wrapped.
  const generateTokenId = provider.RefreshToken.prototype.generateTokenId
  provider.RefreshToken.prototype.generateTokenId = function generateOnlineAwareTokenId(this: RefreshToken): string {
    const id = generateTokenId.call(this)
    return this.scopes.has('online_access') ? `ORT${id}` : id
  }

  provider.use(ignoreAuthorizationParameters(settings.ignoreAuthorizationParameters))
  provider.use(countTokenRequests(settings.stats))
  provider.use(recordIssuedTokens(settings.issuedTokens))
  provider.use(injectTokenFaults(settings.faults))
  provider.use(corruptIdTokens(settings.idTokenFaults, new IdTokenCorrupter(settings.keys)))
  provider.use(enforceSecretAuthMethod(settings.explicitAuthMethods))
  provider.use(offlineAccessWithoutConsent())
  provider.use(onlineRefreshTokenExchange(provider, lifetimes))
  provider.use(revokedOnlineRefreshTokenEndsSession(provider))
  provider.use(autoConfirmLogout())

  return provider
}
