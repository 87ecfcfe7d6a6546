/**
 * `node dev/idp/main.ts`: runs the development IdP standalone.
 *
 * Environment (lists are separated by commas or spaces; lifetimes are in seconds):
 * - IDP_PORT (default 4000), IDP_HOST (default 127.0.0.1), IDP_ISSUER (default http://<host>:<port>)
 * - IDP_CLIENT_ID (default bffgate-dev), IDP_CLIENT_SECRET (default: random for each run and
 *   never printed; set it when another process, such as bffgate, needs it)
 * - IDP_CLIENT_AUTH_METHOD: client_secret_basic, client_secret_post or private_key_jwt, enforced
 *   strictly; unset, the client is registered for client_secret_basic and may also send its
 *   secret in the body
 * - IDP_CLIENT_JWKS: the client's public JWKS (JSON) for private_key_jwt
 * - IDP_REQUIRE_PAR (default false): refuse authorization requests not pushed first (PAR)
 * - IDP_REQUIRE_DPOP_NONCE (default false): the token and PAR endpoints demand DPoP nonces
 * - IDP_ALLOW_PRIVATE_NETWORK (default false): send back-channel logout to private addresses
 * - IDP_SESSION_EXPIRY_CLAIM (default false): ID tokens declare IPSIE SL1 `session_expiry`
 *   too (a compose network); loopback always works
 * - IDP_REDIRECT_URIS (default http://localhost:8080/bff/callback)
 * - IDP_POST_LOGOUT_REDIRECT_URIS (default http://localhost:8080/), IDP_BACKCHANNEL_LOGOUT_URI
 * - A second client, so that two SPAs can share one gateway (docs/frontends.md):
 *   IDP_ADMIN_CLIENT_ID (default bffgate-admin), IDP_ADMIN_CLIENT_SECRET (default: random, as
 *   above), IDP_ADMIN_CLIENT_AUTH_METHOD (as IDP_CLIENT_AUTH_METHOD, secrets only),
 *   IDP_ADMIN_REDIRECT_URIS (default http://localhost:8080/admin/bff/callback),
 *   IDP_ADMIN_POST_LOGOUT_REDIRECT_URIS (default http://localhost:8080/admin/bff/logged-out),
 *   IDP_ADMIN_BACKCHANNEL_LOGOUT_URI
 * - IDP_API_AUDIENCE (default https://api.bffgate.test)
 * - IDP_ACCESS_TOKEN_TTL, IDP_SESSION_IDLE, IDP_SESSION_ABSOLUTE, IDP_REFRESH_TOKEN_TTL
 * - IDP_JWKS_FILE: private JWKS file; created on first start so restarts keep the signing keys
 * - IDP_TEST_HOOKS (default true): serve the /__dev/ test hooks (revoke-sessions, stats,
 *   token-delay, token-failures, misbehave-next-token-response)
 */
import { randomBytes } from 'node:crypto'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import type { JWK } from 'jose'
import { DEFAULT_USER, generateSigningKeys, startDevIdp } from './index.ts'

function list(value: string | undefined, fallback: string[]): string[] {
  if (value === undefined || value.trim() === '') return fallback
  return value.split(/[\s,]+/).filter(Boolean)
}

function seconds(name: string): number | undefined {
  const value = process.env[name]
  if (value === undefined || value === '') return undefined
  const parsed = Number(value)
  if (!Number.isInteger(parsed) || parsed <= 0) throw new Error(`${name} must be a positive integer number of seconds`)
  return parsed
}

/** Keys from IDP_JWKS_FILE, generating and saving them the first time. */
async function loadKeys(file: string | undefined): Promise<JWK[] | undefined> {
  if (!file) return undefined
  if (existsSync(file)) return (JSON.parse(readFileSync(file, 'utf8')) as { keys: JWK[] }).keys
  const keys = await generateSigningKeys()
  writeFileSync(file, JSON.stringify({ keys }, null, 2), { mode: 0o600 })
  return keys
}

const env = process.env
const clientSecretGenerated = !env.IDP_CLIENT_SECRET
const keys = await loadKeys(env.IDP_JWKS_FILE)
const options = {
  port: Number(env.IDP_PORT ?? 4000),
  host: env.IDP_HOST ?? '127.0.0.1',
  ...(env.IDP_ISSUER ? { issuer: env.IDP_ISSUER } : {}),
  ...(env.IDP_API_AUDIENCE ? { apiAudience: env.IDP_API_AUDIENCE } : {}),
  ...(keys ? { keys } : {}),
  testHooks: env.IDP_TEST_HOOKS !== 'false',
  requirePushedAuthorizationRequests: env.IDP_REQUIRE_PAR === 'true',
  requireDpopNonce: env.IDP_REQUIRE_DPOP_NONCE === 'true',
  allowPrivateNetwork: env.IDP_ALLOW_PRIVATE_NETWORK === 'true',
  sessionExpiryClaim: env.IDP_SESSION_EXPIRY_CLAIM === 'true',
  clients: [
    {
      client_id: env.IDP_CLIENT_ID ?? 'bffgate-dev',
      client_secret: env.IDP_CLIENT_SECRET || randomBytes(24).toString('base64url'),
      redirect_uris: list(env.IDP_REDIRECT_URIS, ['http://localhost:8080/bff/callback']),
      post_logout_redirect_uris: list(env.IDP_POST_LOGOUT_REDIRECT_URIS, ['http://localhost:8080/']),
      ...(env.IDP_BACKCHANNEL_LOGOUT_URI ? { backchannel_logout_uri: env.IDP_BACKCHANNEL_LOGOUT_URI } : {}),
      ...(env.IDP_CLIENT_AUTH_METHOD ? { token_endpoint_auth_method: env.IDP_CLIENT_AUTH_METHOD } : {}),
      ...(env.IDP_CLIENT_JWKS ? { jwks: JSON.parse(env.IDP_CLIENT_JWKS) as { keys: JWK[] } } : {}),
    },
    {
      client_id: env.IDP_ADMIN_CLIENT_ID ?? 'bffgate-admin',
      client_secret: env.IDP_ADMIN_CLIENT_SECRET || randomBytes(24).toString('base64url'),
      redirect_uris: list(env.IDP_ADMIN_REDIRECT_URIS, ['http://localhost:8080/admin/bff/callback']),
      post_logout_redirect_uris: list(env.IDP_ADMIN_POST_LOGOUT_REDIRECT_URIS, [
        'http://localhost:8080/admin/bff/logged-out',
      ]),
      ...(env.IDP_ADMIN_BACKCHANNEL_LOGOUT_URI ? { backchannel_logout_uri: env.IDP_ADMIN_BACKCHANNEL_LOGOUT_URI } : {}),
      ...(env.IDP_ADMIN_CLIENT_AUTH_METHOD ? { token_endpoint_auth_method: env.IDP_ADMIN_CLIENT_AUTH_METHOD } : {}),
    },
  ],
}
const lifetimes = {
  accessTokenTtlSeconds: seconds('IDP_ACCESS_TOKEN_TTL'),
  sessionIdleSeconds: seconds('IDP_SESSION_IDLE'),
  sessionAbsoluteSeconds: seconds('IDP_SESSION_ABSOLUTE'),
  refreshTokenTtlSeconds: seconds('IDP_REFRESH_TOKEN_TTL'),
}
const idp = await startDevIdp({
  ...options,
  ...Object.fromEntries(Object.entries(lifetimes).filter(([, value]) => value !== undefined)),
})

const [client, adminClient] = options.clients
process.stdout.write(`dev IdP (Auth0-like, online refresh tokens) listening
  issuer      ${idp.issuer}
  client      ${client?.client_id}${clientSecretGenerated ? ' (secret generated for this run; set IDP_CLIENT_SECRET to share one)' : ''}
  client      ${adminClient?.client_id}${env.IDP_ADMIN_CLIENT_SECRET ? '' : ' (secret generated for this run; set IDP_ADMIN_CLIENT_SECRET to share one)'}
  test user   ${DEFAULT_USER.username} / ${DEFAULT_USER.password}
`)

const stop = async () => {
  await idp.close()
  process.exit(0)
}
process.once('SIGINT', stop)
process.once('SIGTERM', stop)
