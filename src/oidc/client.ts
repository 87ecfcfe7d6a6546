import { AsyncLocalStorage } from 'node:async_hooks'
import { createPrivateKey } from 'node:crypto'
import { importJWK, importPKCS8, type JWK } from 'jose'
import * as oidc from 'openid-client'
import type { OidcConfig } from '../config/types.ts'
import type { Tracer } from '@opentelemetry/api'
import { describeNetworkCause } from '../net-error.ts'
import { inSpan } from '../span.ts'
import { importDpopKey, type DpopKey } from '../dpop.ts'
import { createDpopNonceCache } from './dpop-nonces.ts'

/** Tokens from one token-endpoint answer. Times are epoch seconds. */
export interface TokenSet {
  readonly access_token: string
  readonly token_type: string
  readonly expires_at: number
  readonly refresh_token?: string
  readonly id_token?: string
  readonly scope?: string
  /** Validated ID-token claims, when an ID token came with the answer. */
  readonly claims?: Readonly<Record<string, unknown>>
}

/** The per-login secrets that must come back with the browser (state, nonce, PKCE verifier). */
export interface LoginChecks {
  readonly state: string
  readonly nonce: string
  readonly codeVerifier: string
}

/** Why a call to the identity provider failed, as callers must branch on it. */
export type OidcFailureKind =
  /** The grant is dead (`invalid_grant`): the IdP session ended. Tear down. */
  | 'invalid_grant'
  /** Network error, timeout, 5xx or 429: try again later, never tear down. */
  | 'transient'
  /** The IdP refused the request with an OAuth error other than `invalid_grant`. */
  | 'rejected'
  /** The answer failed validation (signature, issuer, audience, nonce, state ...). */
  | 'invalid_response'

/** The one error type that leaves this module (openid-client's `errorHandler` pattern). */
export class OidcError extends Error {
  readonly kind: OidcFailureKind
  /** The OAuth `error` code, when the IdP sent one. */
  readonly oauthError?: string
  constructor(kind: OidcFailureKind, message: string, options: { cause?: unknown; oauthError?: string } = {}) {
    super(message, { cause: options.cause })
    this.name = 'OidcError'
    this.kind = kind
    if (options.oauthError !== undefined) this.oauthError = options.oauthError
  }

  /**
   * A refresh token the IdP issued in an answer that then failed validation (e.g. its ID
   * token): the IdP has rotated, so the caller must keep it. Not enumerable: never logged.
   */
  declare readonly issuedRefreshToken?: string
}

export interface OidcClient {
  readonly issuer: string
  /** The IdP's signing keys and algorithms, for verifying logout tokens. */
  readonly jwksUri?: string
  readonly signingAlgorithms?: readonly string[]
  /** Fresh state, nonce and PKCE verifier for one login attempt. */
  createLoginChecks(): LoginChecks
  /**
   * The authorization request URL (code flow, PKCE S256; `dpop_jkt` binds the code to a DPoP
   * key). `maxAgeSeconds` is OIDC Core's `max_age` (§3.1.2.1): the IdP must authenticate the
   * user afresh when its session is older; `prompt: 'login'` asks for that unconditionally.
   * `parameters` are checked login options (`prompt`, `login_hint` ...); they can never
   * replace a protocol parameter, and bffgate's own `max_age` and `prompt` win over them.
   */
  buildLoginUrl(
    checks: LoginChecks,
    options?: {
      dpop?: DpopKey
      maxAgeSeconds?: number
      prompt?: 'login'
      parameters?: Readonly<Record<string, string>>
    },
  ): Promise<URL>
  /** Finishes the login: validates the authorization response and the ID token, redeems the code. */
  exchangeAuthorizationCode(
    callbackUrl: URL,
    checks: LoginChecks,
    options?: { dpop?: DpopKey },
  ): Promise<TokenSet & { claims: Readonly<Record<string, unknown>> }>
  /** Refresh token grant; with `dpop`, the new access token is bound to that key. */
  refresh(refreshToken: string, parameters?: Record<string, string>, options?: { dpop?: DpopKey }): Promise<TokenSet>
  /** Revokes a refresh token (RFC 7009). */
  revokeRefreshToken(refreshToken: string): Promise<void>
  /** RP-initiated logout URL. */
  buildEndSessionUrl(idTokenHint: string | undefined): string | undefined
}

/** Which of the IdP's endpoints a call went to; the `endpoint` label of its latency. */
export type IdpEndpoint = 'discovery' | 'token' | 'par' | 'jwks' | 'revocation' | 'userinfo' | 'other'

/** `success` (2xx/3xx), `client_error` (4xx), `server_error` (5xx), `network_error` (no answer: refused, DNS, TLS, timeout). */
export type IdpOutcome = 'success' | 'client_error' | 'server_error' | 'network_error'

/** Told the endpoint, outcome and duration in seconds (to the response headers) of every call to the IdP. */
export type IdpRequestObserver = (endpoint: IdpEndpoint, outcome: IdpOutcome, seconds: number) => void

export interface OidcClientOptions {
  readonly observe?: IdpRequestObserver
  /** With tracing: a span per IdP call, named by its endpoint (`idp.token` ...). */
  readonly tracer?: Tracer
  /** The clock, epoch milliseconds (`iat` checks, tokens' `expires_at`); `Date.now` by default. */
  readonly now?: () => number
}

/**
 * A fetch that times each call to the IdP and names its endpoint (`endpointOf`), and with a
 * tracer runs it in an `idp.<endpoint>` span.
 */
export function observedIdpFetch(
  observe: IdpRequestObserver,
  endpointOf: (url: string) => IdpEndpoint,
  tracer?: Tracer,
): (url: string, options?: RequestInit) => Promise<Response> {
  const call = async (url: string, options?: RequestInit): Promise<Response> => {
    const endpoint = endpointOf(url)
    const started = performance.now()
    try {
      const response = await fetch(url, options)
      const outcome = response.status >= 500 ? 'server_error' : response.status >= 400 ? 'client_error' : 'success'
      observe(endpoint, outcome, (performance.now() - started) / 1000)
      return response
    } catch (err) {
      observe(endpoint, 'network_error', (performance.now() - started) / 1000)
      throw err
    }
  }
  if (tracer === undefined) return call
  return (url, options) =>
    inSpan(tracer, `idp.${endpointOf(url)}`, { 'idp.endpoint': endpointOf(url) }, () => call(url, options))
}

/** openid-client's calls: the discovery until the metadata is known, then by the metadata's endpoint URLs. */
function endpointResolver(endpoints: {
  discovered: boolean
  byUrl: Map<string, IdpEndpoint>
}): (url: string) => IdpEndpoint {
  return (url) => (endpoints.discovered ? (endpoints.byUrl.get(url.split('?')[0]!) ?? 'other') : 'discovery')
}

/** Tolerated clock difference with the IdP, in seconds, for `iat` in the future. */
const CLOCK_TOLERANCE_SECONDS = 30

/** Discovers the IdP and returns the client bffgate uses for every exchange with it. */
export async function createOidcClient(config: OidcConfig, options: OidcClientOptions = {}): Promise<OidcClient> {
  const clientAuth = await createClientAuth(config)
  const now = options.now ?? Date.now
  const endpoints = { discovered: false, byUrl: new Map<string, IdpEndpoint>() }
  let configuration: oidc.Configuration
  try {
    configuration = await oidc.discovery(
      new URL(config.issuer),
      config.clientId,
      config.clientSecret !== undefined ? { client_secret: config.clientSecret } : {},
      clientAuth,
      {
        execute: config.allowInsecureHttp ? [oidc.allowInsecureRequests] : [],
        timeout: config.timeoutSeconds,
        ...(options.observe !== undefined && {
          [oidc.customFetch]: observedIdpFetch(
            options.observe,
            endpointResolver(endpoints),
            options.tracer,
          ) as oidc.CustomFetch,
        }),
      },
    )
  } catch (err) {
    const reported = reportedIssuer(err)
    if (reported !== undefined) {
      throw new OidcError(
        'invalid_response',
        `discovery of ${config.issuer} failed: the IdP reports the issuer ${JSON.stringify(reported.slice(0, 300))}; set "BFF_OIDC_ISSUER" to exactly that (compared character by character, trailing slash included)`,
        { cause: err },
      )
    }
    throw classifyOidcError(err, `discovery of ${config.issuer} failed`)
  }
  configuration.timeout = config.timeoutSeconds
  // openid-client trusts TLS for an ID token straight from the token endpoint (OIDC Core
  // allows it); a BFF verifies the signature anyway, as defence in depth.
  oidc.enableNonRepudiationChecks(configuration)
  // The refresh token of a token-endpoint answer, seen before openid-client validates the rest:
  // if the ID token then fails a check, a rotated refresh token must not be lost with it.
  const tokenAnswers = new AsyncLocalStorage<{ refreshToken?: string }>()
  const tokenEndpoint = metadataTokenEndpoint(configuration)
  // Wraps whatever fetch the configuration already has (e.g. an observed one).
  const fetchBefore = configuration[oidc.customFetch]
  configuration[oidc.customFetch] = async (url, init) => {
    const response = fetchBefore !== undefined ? await fetchBefore(url, init) : await fetch(url, init as RequestInit)
    const seen = tokenAnswers.getStore()
    if (seen !== undefined && response.ok && new URL(url).href === tokenEndpoint) {
      try {
        const body = (await response.clone().json()) as { refresh_token?: unknown }
        if (typeof body.refresh_token === 'string') seen.refreshToken = body.refresh_token
      } catch {}
    }
    return response
  }

  const metadata = configuration.serverMetadata()
  const named: Array<[string | undefined, IdpEndpoint]> = [
    [metadata.token_endpoint, 'token'],
    [metadata.pushed_authorization_request_endpoint, 'par'],
    [metadata.jwks_uri, 'jwks'],
    [metadata.revocation_endpoint, 'revocation'],
    [metadata.userinfo_endpoint, 'userinfo'],
  ]
  for (const [url, name] of named) if (url !== undefined) endpoints.byUrl.set(url, name)
  endpoints.discovered = true
  if (config.par && metadata.pushed_authorization_request_endpoint === undefined) {
    throw new OidcError(
      'rejected',
      `"BFF_OIDC_PAR" is on but ${config.issuer} advertises no pushed_authorization_request_endpoint`,
    )
  }

  // The IdP's DPoP nonces, per origin and across calls: a handle is made per call (keys
  // differ per session) and openid-client keeps nonces only inside a handle (RFC 9449 §8).
  const dpopNonces = createDpopNonceCache()
  // Wraps the observed fetch given to discovery (IdP metrics and traces), when there is one.
  const innerFetch = configuration[oidc.customFetch]
  configuration[oidc.customFetch] = async (url, init) => {
    // openid-client's request options are fetch's (its FetchBody type is only declared wider).
    const response = innerFetch !== undefined ? await innerFetch(url, init) : await fetch(url, init as RequestInit)
    dpopNonces.remember(url, response)
    return response
  }
  const withKnownNonce: oidc.ModifyAssertionFunction = (_header, payload) => {
    if (payload.nonce !== undefined || typeof payload.htu !== 'string') return
    const nonce = dpopNonces.get(new URL(payload.htu).origin)
    if (nonce !== undefined) payload.nonce = nonce
  }

  /** openid-client signs the token-endpoint proofs and retries once on `use_dpop_nonce`. */
  const dpopOptions = async (key: DpopKey | undefined): Promise<oidc.DPoPOptions | undefined> =>
    key === undefined
      ? undefined
      : {
          DPoP: oidc.getDPoPHandle(configuration, await importDpopKey(key), { [oidc.modifyAssertion]: withKnownNonce }),
        }

  return {
    issuer: metadata.issuer,
    ...(metadata.jwks_uri !== undefined && { jwksUri: metadata.jwks_uri }),
    ...(metadata.id_token_signing_alg_values_supported !== undefined && {
      signingAlgorithms: metadata.id_token_signing_alg_values_supported,
    }),

    createLoginChecks: () => ({
      state: oidc.randomState(),
      nonce: oidc.randomNonce(),
      codeVerifier: oidc.randomPKCECodeVerifier(),
    }),

    async buildLoginUrl(checks, { dpop, maxAgeSeconds, prompt, parameters: loginOptions = {} } = {}) {
      const parameters: Record<string, string> = {
        ...loginOptions,
        redirect_uri: config.redirectUri,
        scope: config.scopes.join(' '),
        state: checks.state,
        nonce: checks.nonce,
        code_challenge: await oidc.calculatePKCECodeChallenge(checks.codeVerifier),
        code_challenge_method: 'S256',
      }
      if (config.audience !== undefined) parameters.audience = config.audience
      if (dpop !== undefined) parameters.dpop_jkt = dpop.jkt
      if (maxAgeSeconds !== undefined) parameters.max_age = String(maxAgeSeconds)
      if (prompt !== undefined) parameters.prompt = prompt
      if (config.par) {
        try {
          // The parameters travel authenticated over the back channel; the browser gets a request_uri.
          return await oidc.buildAuthorizationUrlWithPAR(configuration, parameters, await dpopOptions(dpop))
        } catch (err) {
          throw classifyOidcError(err, 'pushed authorization request failed')
        }
      }
      return oidc.buildAuthorizationUrl(configuration, parameters)
    },

    async exchangeAuthorizationCode(callbackUrl, checks, { dpop } = {}) {
      let response: Awaited<ReturnType<typeof oidc.authorizationCodeGrant>>
      try {
        response = await oidc.authorizationCodeGrant(
          configuration,
          callbackUrl,
          {
            pkceCodeVerifier: checks.codeVerifier,
            expectedState: checks.state,
            expectedNonce: checks.nonce,
            idTokenExpected: true,
          },
          undefined,
          await dpopOptions(dpop),
        )
      } catch (err) {
        throw classifyOidcError(err, 'authorization code exchange failed')
      }
      const claims = response.claims()
      if (claims === undefined) throw new OidcError('invalid_response', 'the token endpoint returned no ID token')
      // openid-client accepts an `iat` in the future; a token from the future is not accepted here.
      if (typeof claims.iat !== 'number' || claims.iat > now() / 1000 + CLOCK_TOLERANCE_SECONDS) {
        throw new OidcError('invalid_response', 'the ID token was issued in the future')
      }
      return { ...toTokenSet(response, now()), claims: { ...claims } }
    },

    async refresh(refreshToken, parameters, { dpop } = {}) {
      const seen: { refreshToken?: string } = {}
      try {
        return await tokenAnswers.run(seen, async () =>
          toTokenSet(
            await oidc.refreshTokenGrant(configuration, refreshToken, parameters, await dpopOptions(dpop)),
            now(),
          ),
        )
      } catch (err) {
        const error = classifyOidcError(err, 'refresh token exchange failed')
        if (error.kind === 'invalid_response' && seen.refreshToken !== undefined) {
          Object.defineProperty(error, 'issuedRefreshToken', { value: seen.refreshToken, enumerable: false })
        }
        throw error
      }
    },

    async revokeRefreshToken(refreshToken) {
      if (metadata.revocation_endpoint === undefined)
        throw new OidcError('rejected', 'the IdP has no revocation endpoint')
      try {
        await oidc.tokenRevocation(configuration, refreshToken, { token_type_hint: 'refresh_token' })
      } catch (err) {
        throw classifyOidcError(err, 'refresh token revocation failed')
      }
    },

    buildEndSessionUrl(idTokenHint) {
      if (metadata.end_session_endpoint === undefined) return undefined
      return oidc.buildEndSessionUrl(configuration, {
        post_logout_redirect_uri: config.postLogoutRedirectUri,
        ...(idTokenHint !== undefined && { id_token_hint: idTokenHint }),
      }).href
    },
  }
}

function toTokenSet(response: oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers, nowMs: number): TokenSet {
  const expiresIn = response.expiresIn()
  const claims = response.claims()
  return {
    access_token: response.access_token,
    token_type: response.token_type,
    // No expires_in: assume a short life (5 min) rather than forever, so it gets refreshed.
    expires_at: Math.floor(nowMs / 1000) + (expiresIn ?? 300),
    ...(response.refresh_token !== undefined && { refresh_token: response.refresh_token }),
    ...(response.id_token !== undefined && { id_token: response.id_token }),
    ...(response.scope !== undefined && { scope: response.scope }),
    ...(claims !== undefined && { claims: { ...claims } }),
  }
}

/** The issuer the IdP's metadata names, when discovery failed because it differs from the configured one. */
function reportedIssuer(err: unknown): string | undefined {
  if (!(err instanceof oidc.ClientError) || err.code !== 'OAUTH_JSON_ATTRIBUTE_COMPARISON_FAILED') return undefined
  const detail = err.cause as { attribute?: unknown; body?: { issuer?: unknown } } | undefined
  return detail?.attribute === 'issuer' && typeof detail.body?.issuer === 'string' ? detail.body.issuer : undefined
}

function metadataTokenEndpoint(configuration: oidc.Configuration): string | undefined {
  const endpoint = configuration.serverMetadata().token_endpoint
  return endpoint === undefined ? undefined : new URL(endpoint).href
}

/** Turns whatever openid-client threw into an {@link OidcError}; the only place that does. */
function classifyOidcError(err: unknown, context: string): OidcError {
  if (err instanceof OidcError) return err
  if (err instanceof oidc.ResponseBodyError) {
    if (err.status >= 500 || err.status === 429)
      return new OidcError('transient', `${context}: the IdP answered ${err.status}`, {
        cause: err,
        oauthError: err.error,
      })
    if (err.error === 'invalid_grant')
      return new OidcError('invalid_grant', `${context}: invalid_grant`, { cause: err, oauthError: err.error })
    return new OidcError('rejected', `${context}: ${err.error}`, { cause: err, oauthError: err.error })
  }
  if (err instanceof oidc.WWWAuthenticateChallengeError) {
    // A 401 with a challenge (oidc-provider sends one for Basic client authentication).
    const status = err.response.status
    const oauthError = err.cause.find((challenge) => typeof challenge.parameters.error === 'string')?.parameters.error
    if (status >= 500 || status === 429)
      return new OidcError('transient', `${context}: the IdP answered ${status}`, {
        cause: err,
        ...(oauthError !== undefined && { oauthError }),
      })
    if (oauthError === 'invalid_grant')
      return new OidcError('invalid_grant', `${context}: invalid_grant`, { cause: err, oauthError })
    return new OidcError('rejected', `${context}: ${oauthError ?? `HTTP ${status}`}`, {
      cause: err,
      ...(oauthError !== undefined && { oauthError }),
    })
  }
  if (err instanceof oidc.AuthorizationResponseError) {
    return new OidcError('rejected', `${context}: the IdP answered ${err.error}`, { cause: err, oauthError: err.error })
  }
  if (err instanceof oidc.ClientError) {
    if (err.code === 'OAUTH_TIMEOUT' || err.code === 'OAUTH_ABORT')
      return new OidcError('transient', `${context}: timed out`, { cause: err })
    if (err.code === 'OAUTH_RESPONSE_IS_NOT_CONFORM' || err.code === 'OAUTH_RESPONSE_IS_NOT_JSON') {
      const status = err.cause instanceof Response ? err.cause.status : 0
      if (status >= 500 || status === 429 || status === 0)
        return new OidcError('transient', `${context}: unexpected answer (HTTP ${status})`, { cause: err })
    }
    return new OidcError('invalid_response', `${context}: ${err.message}`, { cause: err })
  }
  // fetch() failures (connection refused, DNS, TLS) surface as TypeError ("fetch failed"), the reason in its cause.
  if (err instanceof TypeError) {
    const reason = describeNetworkCause(err)
    return new OidcError('transient', `${context}: ${err.message}${reason !== undefined ? ` (${reason})` : ''}`, {
      cause: err,
    })
  }
  return new OidcError('invalid_response', `${context}: ${(err as Error)?.message ?? String(err)}`, { cause: err })
}

async function createClientAuth(config: OidcConfig): Promise<oidc.ClientAuth> {
  switch (config.tokenEndpointAuthMethod) {
    case 'client_secret_basic':
      return oidc.ClientSecretBasic(config.clientSecret)
    case 'client_secret_post':
      return oidc.ClientSecretPost(config.clientSecret)
    case 'private_key_jwt':
      return oidc.PrivateKeyJwt(await importClientPrivateKey(config.clientPrivateKey!))
  }
}

/** Reads a JWK (JSON) or a PKCS#8 PEM; the algorithm comes from the JWK or the key type. */
async function importClientPrivateKey(text: string): Promise<oidc.PrivateKey> {
  if (text.trim().startsWith('{')) {
    const jwk = JSON.parse(text) as JWK
    const alg = jwk.alg ?? (jwk.kty === 'EC' ? 'ES256' : jwk.kty === 'OKP' ? 'EdDSA' : 'RS256')
    const key = (await importJWK(jwk, alg)) as CryptoKey
    return jwk.kid !== undefined ? { key, kid: jwk.kid } : { key }
  }
  const type = createPrivateKey(text).asymmetricKeyType
  const alg = type === 'ec' ? 'ES256' : type === 'ed25519' ? 'EdDSA' : 'RS256'
  return { key: await importPKCS8(text, alg) }
}
