/**
 * Development identity provider that behaves like Auth0 with Online Refresh Tokens, built on
 * oidc-provider 9. For local development and integration tests only: plain HTTP, in-memory
 * state, test hooks, loopback back-channel delivery.
 */
import { randomBytes } from 'node:crypto'
import { createServer } from 'node:http'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { isIPv6 } from 'node:net'
import type { JWK } from 'jose'
import { DEFAULT_USER, UserDirectory } from './accounts.ts'
import type { DevUser } from './accounts.ts'
import { DevStore } from './adapter.ts'
import { createHookHandler, revokeSessionsOf } from './hooks.ts'
import { createInteractionHandler } from './interactions.ts'
import { processSigningKeys } from './keys.ts'
import { IdTokenFaults } from './id-token-faults.ts'
import type { IdTokenMisbehaviour } from './id-token-faults.ts'
import { IssuedTokens, TokenFaults, TokenStats } from './middleware.ts'
import type { TokenFailure } from './middleware.ts'
import { clientMetadata, createDevProvider } from './provider.ts'
import { startDevTransmitter } from '../ssf/transmitter.ts'
import type { DevTransmitter } from '../ssf/transmitter.ts'
import type { DevIdpClient } from './provider.ts'

export type { DevIdpClient } from './provider.ts'
export type { DevUser } from './accounts.ts'
export type { TokenFailure } from './middleware.ts'
export type { IdTokenMisbehaviour } from './id-token-faults.ts'
export { ID_TOKEN_MISBEHAVIOURS, MISBEHAVIOUR_SHIFT_SECONDS, WRONG_AUDIENCE, WRONG_ISSUER } from './id-token-faults.ts'
export { DEFAULT_USER } from './accounts.ts'
export { generateSigningKeys } from './keys.ts'

/** Options of {@link startDevIdp}; every lifetime is in seconds. */
export interface DevIdpOptions {
  /** Port to listen on; default 0 (a free port). */
  port?: number
  /** Address to listen on; default '127.0.0.1'. */
  host?: string
  /** Issuer identifier; default `http://<host>:<port>` (no trailing slash). */
  issuer?: string
  /** Access token lifetime; default 300. */
  accessTokenTtlSeconds?: number
  /** ID token lifetime; default 36000 (Auth0's default). */
  idTokenTtlSeconds?: number
  /** Session inactivity timeout; default 259200 (Auth0: 3 days). */
  sessionIdleSeconds?: number
  /** Session lifetime since login; default 2592000 (Auth0: 30 days). */
  sessionAbsoluteSeconds?: number
  /** Lifetime of each (rotating) offline_access refresh token; default 2592000. */
  refreshTokenTtlSeconds?: number
  /** oidc-provider clockTolerance (also stretches stored lifetimes); default 0. */
  clockToleranceSeconds?: number
  /** The API's identifier: `aud` of every access token; default 'https://api.bffgate.test'. */
  apiAudience?: string
  /** Scopes the API knows, copied into access tokens when granted. */
  apiScopes?: string
  /**
   * More APIs, as with Auth0's multi-resource refresh tokens: every login grants the default
   * API and each of these (first-party app, no consent), and a refresh grant with
   * `audience=<audience>` (Auth0) or `resource=<audience>` (RFC 8707) returns a JWT access
   * token for that API. `scopes` default to `apiScopes`.
   */
  extraApis?: Array<{ audience: string; scopes?: string }>
  clients: DevIdpClient[]
  /** Default: one user, {@link DEFAULT_USER}. */
  users?: DevUser[]
  /** Private signing JWKs, so a restarted IdP keeps its keys; default: generated once per process. */
  keys?: JWK[]
  /** Serve `/__dev/*` test hooks over HTTP; default true. */
  testHooks?: boolean
  /** Where server errors and failed back-channel deliveries are reported; default console.error. */
  log?: (message: string) => void
  /**
   * Refuse authorization requests that were not pushed first (RFC 9126 PAR at `/request`,
   * advertised in discovery either way); default false.
   */
  requirePushedAuthorizationRequests?: boolean
  /**
   * Authorization request parameters the IdP pretends not to have received (e.g. `max_age`,
   * `prompt`), as an IdP that ignores them would; front-channel requests only. Default none.
   */
  ignoreAuthorizationParameters?: string[]
  /**
   * The token and pushed authorization request endpoints demand a server-issued nonce in every DPoP proof (RFC 9449 section 8):
   * a proof without one is answered 400 `use_dpop_nonce` with a `DPoP-Nonce` header; default
   * false (no nonces at all).
   */
  requireDpopNonce?: boolean
  /**
   * Send back-channel logout also to private-network addresses, e.g. `http://bffgate:8080` on a
   * compose network (loopback always works); default false. Development only.
   */
  allowPrivateNetwork?: boolean
  /**
   * Put IPSIE SL1 `session_expiry` (a NumericDate: when the IdP session ends, auth time +
   * `sessionAbsoluteSeconds`) in every ID token, as Auth0 does for tenants that declare it;
   * default false. {@link DevIdp.declareSessionExpiry} lowers it for a user.
   */
  sessionExpiryClaim?: boolean
  /** Also start a Shared Signals transmitter (dev/ssf) whose SETs carry this `aud` and name this IdP's users. */
  ssfAudience?: string
}

/** A running development IdP. */
export interface DevIdp {
  /** `http://127.0.0.1:<port>` unless overridden; no trailing slash. */
  issuer: string
  /** The Shared Signals transmitter, with `ssfAudience`: its own port, key and issuer. */
  transmitter?: DevTransmitter
  port: number
  /**
   * Ends every IdP session of `sub` server-side (Auth0's "revoke session"): its online refresh
   * tokens then get invalid_grant, and clients with a back-channel logout URI are notified.
   * Resolves with the number of sessions ended, after the notifications were answered.
   */
  revokeSessions(sub: string): Promise<number>
  /**
   * The query of every request the authorization endpoint received, oldest first: what a
   * client sent, including parameters this IdP ignores (Auth0's `organization`, `invitation`).
   */
  authorizationRequests(): URLSearchParams[]
  /**
   * Number of POST /token requests by grant_type, failures included. A request is counted on
   * arrival, before an injected delay.
   */
  stats(): { tokenRequests: Record<string, number> }
  /** Number of POST /request (pushed authorization requests), failures included; reset with {@link resetStats}. */
  pushedAuthorizationRequests(): number
  resetStats(): void
  /**
   * Every token request waits `ms` before being handled (0 = off); requests answered by
   * {@link failTokenRequests} wait too. A request whose client disconnects during the delay
   * (or that stop()/close() cut off) is dropped without being processed.
   */
  setTokenDelay(ms: number): void
  /**
   * The next `count` token requests are answered `status` with `{"error":"temporarily_unavailable"}`
   * (and `Retry-After: retryAfter` when given) without being processed; they are still
   * counted in {@link stats}. Replaces failures still pending; `count: 0` cancels them.
   */
  failTokenRequests(options: TokenFailure): void
  /**
   * Test-only misbehaviour: the next successful authorization_code token response carries an
   * ID token corrupted as `kind` says (see {@link ID_TOKEN_MISBEHAVIOURS}); claim changes are
   * re-signed with the IdP's real key, so only the named check fails. One-shot; other grants
   * and failed exchanges leave it armed; arming again replaces it; 'none' disarms.
   */
  misbehaveNextTokenResponse(
    kind: IdTokenMisbehaviour | 'none',
    options?: { grant?: 'authorization_code' | 'refresh_token' },
  ): void
  /** The misbehaviour still armed, if any. */
  pendingMisbehaviour(): IdTokenMisbehaviour | undefined
  /**
   * Every access, refresh and ID token value the token endpoint has issued, oldest first, as
   * the clients received them (for tests that scan logs for leaked tokens).
   */
  issuedTokens(): string[]
  /**
   * Registers one more client at runtime (as dynamic registration would), e.g. once the
   * redirect URI of a relying party started after the IdP is known. The metadata is
   * validated as for static clients; a static client's id cannot be registered again.
   * Registering an id again replaces the earlier registration.
   */
  registerClient(client: DevIdpClient): Promise<void>
  /**
   * The `session_expiry` the ID tokens of `sub` issued from now on declare (epoch seconds),
   * instead of the session's own end; `undefined` goes back to that. Needs `sessionExpiryClaim`.
   */
  declareSessionExpiry(sub: string, epochSeconds: number | undefined): void
  /** Stops listening (the IdP is "down") and keeps all state. */
  stop(): Promise<void>
  /** Listens again on the same port with the same state. */
  start(): Promise<void>
  close(): Promise<void>
}

/** oidc-provider's default path of the authorization endpoint (the discovery document names it). */
const AUTHORIZATION_PATH = '/auth'

const DEFAULTS = {
  host: '127.0.0.1',
  accessTokenTtlSeconds: 300,
  idTokenTtlSeconds: 36_000,
  sessionIdleSeconds: 259_200,
  sessionAbsoluteSeconds: 2_592_000,
  refreshTokenTtlSeconds: 2_592_000,
  clockToleranceSeconds: 0,
  apiAudience: 'https://api.bffgate.test',
  apiScopes: 'openid profile email offline_access online_access read:data write:data',
} as const

/** The extra APIs with defaults applied; an audience must be an absolute URI without fragment, and unique. */
function extraApisOf(
  options: DevIdpOptions,
  apiAudience: string,
  apiScopes: string,
): Array<{ audience: string; scopes: string }> {
  const seen = new Set([apiAudience])
  return (options.extraApis ?? []).map(({ audience, scopes }) => {
    if (URL.parse(audience) === null || audience.includes('#'))
      throw new TypeError(`extra API audience must be an absolute URI without fragment, got ${audience}`)
    if (seen.has(audience)) throw new TypeError(`API audience ${audience} is configured twice`)
    seen.add(audience)
    return { audience, scopes: scopes ?? apiScopes }
  })
}

function positiveInteger(name: string, value: number): number {
  if (!Number.isInteger(value) || value <= 0) throw new TypeError(`${name} must be a positive integer, got ${value}`)
  return value
}

function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error) => reject(error)
    server.once('error', onError)
    server.listen(port, host, () => {
      server.off('error', onError)
      resolve((server.address() as AddressInfo).port)
    })
  })
}

function stopListening(server: Server): Promise<void> {
  if (!server.listening) return Promise.resolve()
  return new Promise((resolve, reject) => {
    server.close((error) => (error ? reject(error) : resolve()))
    // close() alone waits for keep-alive connections; a stopped IdP must drop them now.
    server.closeAllConnections()
  })
}

/** Starts the development IdP and resolves once it is listening. */
export async function startDevIdp(options: DevIdpOptions): Promise<DevIdp> {
  const host = options.host ?? DEFAULTS.host
  const log = options.log ?? ((message: string) => console.error(`[dev-idp] ${message}`))
  const lifetimes = {
    idleSeconds: positiveInteger('sessionIdleSeconds', options.sessionIdleSeconds ?? DEFAULTS.sessionIdleSeconds),
    absoluteSeconds: positiveInteger(
      'sessionAbsoluteSeconds',
      options.sessionAbsoluteSeconds ?? DEFAULTS.sessionAbsoluteSeconds,
    ),
  }
  const clockToleranceSeconds = options.clockToleranceSeconds ?? DEFAULTS.clockToleranceSeconds
  const apiAudience = options.apiAudience ?? DEFAULTS.apiAudience
  const apiScopes = options.apiScopes ?? DEFAULTS.apiScopes
  const extraApis = extraApisOf(options, apiAudience, apiScopes)
  const store = new DevStore(clockToleranceSeconds)
  const stats = new TokenStats()
  const faults = new TokenFaults()
  const idTokenFaults = new IdTokenFaults()
  const issuedTokens = new IssuedTokens()
  const requireDpopNonce = options.requireDpopNonce ?? false
  const explicitAuthMethods = new Map<string, string>()
  for (const client of options.clients) {
    if (client.token_endpoint_auth_method !== undefined)
      explicitAuthMethods.set(client.client_id, client.token_endpoint_auth_method)
  }
  const users = new UserDirectory(options.users ?? [{ ...DEFAULT_USER }])
  const sessionExpiry = { enabled: options.sessionExpiryClaim ?? false, overrides: new Map<string, number>() }

  let dispatch: (req: IncomingMessage, res: ServerResponse) => Promise<void> = async (_req, res) => {
    res.writeHead(503).end()
  }
  const server = createServer((req, res) => {
    dispatch(req, res).catch((error: unknown) => {
      log(`request ${req.method} ${req.url?.split('?')[0]} failed: ${(error as Error).stack ?? String(error)}`)
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' }).end('internal error')
      else if (!res.writableEnded) res.destroy()
    })
  })

  const port = await listen(server, options.port ?? 0, host)
  const issuer = options.issuer ?? `http://${isIPv6(host) ? `[${host}]` : host}:${port}`
  const transmitter =
    options.ssfAudience === undefined
      ? undefined
      : await startDevTransmitter({ audience: options.ssfAudience, userIssuer: issuer, host })

  const provider = createDevProvider({
    issuer,
    clients: options.clients,
    users,
    store,
    keys: options.keys ?? (await processSigningKeys()),
    // Non-production cookie signing keys, new for every IdP instance.
    cookieKeys: [randomBytes(32).toString('base64url')],
    apiAudience,
    apiScopes,
    extraApis,
    accessTokenTtlSeconds: positiveInteger(
      'accessTokenTtlSeconds',
      options.accessTokenTtlSeconds ?? DEFAULTS.accessTokenTtlSeconds,
    ),
    idTokenTtlSeconds: positiveInteger('idTokenTtlSeconds', options.idTokenTtlSeconds ?? DEFAULTS.idTokenTtlSeconds),
    offlineRefreshTokenTtlSeconds: positiveInteger(
      'refreshTokenTtlSeconds',
      options.refreshTokenTtlSeconds ?? DEFAULTS.refreshTokenTtlSeconds,
    ),
    clockToleranceSeconds,
    lifetimes,
    stats,
    faults,
    idTokenFaults,
    requirePushedAuthorizationRequests: options.requirePushedAuthorizationRequests ?? false,
    ignoreAuthorizationParameters: options.ignoreAuthorizationParameters ?? [],
    requireDpopNonce,
    dpopNonceSecret: requireDpopNonce ? randomBytes(32) : undefined,
    issuedTokens,
    explicitAuthMethods,
    allowPrivateNetwork: options.allowPrivateNetwork ?? false,
    sessionExpiry,
  })
  provider.on('server_error', (_ctx: unknown, error: Error) => log(`server_error: ${error.stack ?? error.message}`))
  provider.on('backchannel.error', (_ctx: unknown, error: Error, client: { clientId: string }) => {
    log(`back-channel logout to client ${client.clientId} failed: ${error.message}`)
  })

  const revokeSessions = (sub: string) => revokeSessionsOf(provider, store, sub, log)
  const handleInteraction = createInteractionHandler(provider, users)
  const handleHook =
    options.testHooks === false ? undefined : createHookHandler({ revokeSessions, stats, faults, idTokenFaults })
  const providerCallback = provider.callback()
  const staticClientIds = new Set(options.clients.map((client) => client.client_id))

  const registerClient = async (client: DevIdpClient): Promise<void> => {
    if (staticClientIds.has(client.client_id))
      throw new TypeError(`client ${client.client_id} is configured statically`)
    // oidc-provider looks clients up in the adapter when they are not static ones, and
    // validates the stored metadata on first use; a find() right away surfaces bad metadata.
    store.set('Client', client.client_id, clientMetadata(client), undefined)
    try {
      await provider.Client.find(client.client_id)
    } catch (error) {
      store.delete(`Client:${client.client_id}`)
      explicitAuthMethods.delete(client.client_id)
      throw error
    }
    if (client.token_endpoint_auth_method === undefined) explicitAuthMethods.delete(client.client_id)
    else explicitAuthMethods.set(client.client_id, client.token_endpoint_auth_method)
  }

  const authorizationQueries: URLSearchParams[] = []
  dispatch = async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://dev-idp.invalid')
    if (url.pathname === AUTHORIZATION_PATH && req.method === 'GET')
      authorizationQueries.push(new URLSearchParams(url.search))
    if (await handleInteraction(req, res, url)) return
    if (handleHook && (await handleHook(req, res, url))) return
    providerCallback(req, res)
  }

  return {
    issuer,
    port,
    revokeSessions,
    authorizationRequests: () => authorizationQueries.map((query) => new URLSearchParams(query)),
    stats: () => stats.snapshot(),
    pushedAuthorizationRequests: () => stats.pushedAuthorizationRequests(),
    resetStats: () => stats.reset(),
    setTokenDelay: (ms) => faults.setDelay(ms),
    failTokenRequests: (failure) => faults.fail(failure),
    misbehaveNextTokenResponse: (kind, { grant } = {}) => idTokenFaults.arm(kind, grant),
    pendingMisbehaviour: () => idTokenFaults.pending,
    issuedTokens: () => issuedTokens.list(),
    registerClient,
    declareSessionExpiry: (sub, epochSeconds) => {
      if (!sessionExpiry.enabled) throw new TypeError('declareSessionExpiry needs the sessionExpiryClaim option')
      if (epochSeconds === undefined) sessionExpiry.overrides.delete(sub)
      else sessionExpiry.overrides.set(sub, epochSeconds)
    },
    stop: () => stopListening(server),
    start: async () => {
      if (!server.listening) await listen(server, port, host)
    },
    close: async () => {
      await transmitter?.close()
      await stopListening(server)
    },
    ...(transmitter !== undefined && { transmitter }),
  }
}
