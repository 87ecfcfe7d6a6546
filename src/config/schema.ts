/**
 * The configuration contract: every setting bffgate reads, declared once.
 *
 * `loadConfig()` validates against this table and `docs/configuration.md` is generated
 * from it (`npm run docs:config`; a test fails when the two disagree).
 */

import { DEFAULT_CONTENT_SECURITY_POLICY } from './csp.ts'
import { DEFAULT_LOGIN_PARAMETERS } from './login.ts'

/** How a raw value (a string from the environment, or any JSON value from `BFF_CONFIG`) is read. */
export type SettingKind = 'string' | 'url' | 'integer' | 'boolean' | 'enum' | 'list' | 'json'

export interface SettingSpec {
  /** Environment variable name. */
  readonly name: string
  readonly kind: SettingKind
  /** One sentence for the reference; say the unit in words where there is one. */
  readonly description: string
  /** Used when the setting is absent. Secrets never have one. */
  readonly default?: string
  readonly required?: boolean
  /** May be given as `<name>_FILE` (Docker/Kubernetes secrets); never logged. */
  readonly secret?: boolean
  /** Allowed values for `enum`. */
  readonly values?: readonly string[]
  /** Lower bound for `integer`. */
  readonly min?: number
  /** Upper bound for `integer`. */
  readonly max?: number
  /**
   * With a `frontends` list (docs/frontends.md): the frontend key that takes this setting's
   * place. `default`: the setting is the default of every frontend's key; `own`: each frontend
   * gives its own, and setting it here too is an error.
   */
  readonly frontend?: { readonly key: string; readonly role: 'default' | 'own' }
}

export const settings = [
  {
    name: 'BFF_PORT',
    kind: 'integer',
    min: 0,
    max: 65535,
    default: '8080',
    description:
      'TCP port of the browser-facing listener (the SPA, `/bff/*`, the proxied routes, and `/healthz` and `/readyz` for load balancers).',
  },
  { name: 'BFF_HOST', kind: 'string', default: '0.0.0.0', description: 'Address of the browser-facing listener.' },
  {
    name: 'BFF_ADMIN_PORT',
    kind: 'integer',
    min: 0,
    max: 65535,
    default: '9090',
    description:
      'TCP port of the admin listener, which serves `/metrics`, `/healthz` and `/readyz` and nothing else; never publish it through an Ingress or load balancer. Must differ from `BFF_PORT`.',
  },
  {
    name: 'BFF_ADMIN_HOST',
    kind: 'string',
    default: '0.0.0.0',
    description:
      "Address of the admin listener. All interfaces by default, so that in-cluster Prometheus and the kubelet's probes reach it at the pod IP; `127.0.0.1` keeps it to the host (then probe the browser port).",
  },
  {
    name: 'BFF_PUBLIC_URL',
    kind: 'url',
    required: true,
    frontend: { key: 'publicUrl', role: 'default' },
    description:
      'The external origin the browser uses, e.g. `https://app.example.com`. Redirect URIs derive from it. Must be https, except on a loopback host (localhost, 127.0.0.0/8, ::1) for development.',
  },
  {
    name: 'BFF_OIDC_ISSUER',
    kind: 'url',
    required: true,
    frontend: { key: 'issuer', role: 'default' },
    description:
      'Issuer URL, discovered via `.well-known/openid-configuration`. Compared exactly with the discovered `issuer`, trailing slash included (Auth0 issuers end with `/`).',
  },
  {
    name: 'BFF_OIDC_CLIENT_ID',
    kind: 'string',
    required: true,
    frontend: { key: 'clientId', role: 'own' },
    description: 'OAuth client id of this confidential client.',
  },
  {
    name: 'BFF_OIDC_CLIENT_SECRET',
    kind: 'string',
    secret: true,
    frontend: { key: 'clientSecretFile', role: 'own' },
    description: 'Client secret. Either this or `BFF_OIDC_CLIENT_PRIVATE_KEY` is required.',
  },
  {
    name: 'BFF_OIDC_CLIENT_PRIVATE_KEY',
    kind: 'string',
    secret: true,
    frontend: { key: 'clientPrivateKeyFile', role: 'own' },
    description:
      'Private key (JWK JSON or PKCS#8 PEM) for `private_key_jwt` client authentication, instead of the client secret.',
  },
  {
    name: 'BFF_OIDC_TOKEN_ENDPOINT_AUTH_METHOD',
    kind: 'enum',
    values: ['client_secret_basic', 'client_secret_post', 'private_key_jwt'],
    frontend: { key: 'tokenEndpointAuthMethod', role: 'default' },
    description:
      'Client authentication at the token endpoint. Defaults to `client_secret_post` with a secret (what Auth0 uses) and `private_key_jwt` with a private key.',
  },
  {
    name: 'BFF_OIDC_SCOPES',
    kind: 'list',
    default: 'openid profile email online_access',
    frontend: { key: 'scopes', role: 'default' },
    description:
      'Space-separated scopes to request. `online_access` (Auth0 Online Refresh Tokens) and `offline_access` (classic refresh tokens) exclude each other.',
  },
  {
    name: 'BFF_OIDC_PAR',
    kind: 'boolean',
    default: 'false',
    frontend: { key: 'par', role: 'default' },
    description:
      'Send the authorization request by Pushed Authorization Request (RFC 9126): its parameters go to the IdP over the back channel, authenticated, and the browser carries only a reference. Refused at start if the IdP advertises no PAR endpoint.',
  },
  {
    name: 'BFF_OIDC_AUDIENCE',
    kind: 'string',
    frontend: { key: 'audience', role: 'default' },
    description: 'Auth0 `audience` authorization parameter, selecting the API the access token is for.',
  },
  {
    name: 'BFF_OIDC_TIMEOUT_SECONDS',
    kind: 'integer',
    min: 1,
    default: '5',
    description:
      'Timeout in seconds of each call to the identity provider (discovery, token, revocation); a timeout counts as a transient failure.',
  },
  {
    name: 'BFF_ALLOW_INSECURE_HTTP',
    kind: 'boolean',
    default: 'false',
    description: 'Development only: allow a plain-http issuer. Warns loudly at start.',
  },
  {
    name: 'BFF_POST_LOGOUT_REDIRECT_URL',
    kind: 'url',
    frontend: { key: 'postLogoutRedirectUrl', role: 'own' },
    description:
      'Where the identity provider sends the browser after logout (`post_logout_redirect_uri`; register it at the IdP). Defaults to `BFF_PUBLIC_URL` + `/bff/logged-out`, which clears any leftover cookie and redirects to `/`.',
  },
  {
    name: 'BFF_LOGOUT_REVOKE_REFRESH_TOKEN',
    kind: 'boolean',
    default: 'false',
    frontend: { key: 'revokeRefreshTokenOnLogout', role: 'default' },
    description:
      'Revoke the refresh token at the IdP (RFC 7009) on `POST /bff/logout`. For an Auth0 Online Refresh Token this ends the whole IdP session, for every application of that login, even if the browser never follows the end-session URL.',
  },
  {
    name: 'BFF_DPOP',
    kind: 'boolean',
    default: 'false',
    frontend: { key: 'dpop', role: 'default' },
    description:
      'Sender-constrain every access token with DPoP (RFC 9449): a key pair per session, `dpop_jkt` at login, proofs at the token endpoint and on every upstream call. A route can ask for DPoP on its own with `"dpop": true`.',
  },
  {
    name: 'BFF_LOGIN_PARAMETERS',
    kind: 'list',
    default: DEFAULT_LOGIN_PARAMETERS.join(' '),
    frontend: { key: 'loginParameters', role: 'default' },
    description:
      'Space- or comma-separated names of the query parameters of `/bff/login` forwarded to the authorization request (e.g. `/bff/login?screen_hint=signup`, Auth0 `organization` and `invitation`); `none` forwards none. Values are checked (length, characters; `prompt`, `max_age`, `ui_locales` by their grammar): a malformed one is a 400 (a navigation goes to `BFF_LOGIN_ERROR_PATH`). Other parameters are dropped and logged by name, never by value. Protocol parameters (`redirect_uri`, `scope`, `state`, `audience` ...) cannot be listed.',
  },
  {
    name: 'BFF_LOGIN_ERROR_PATH',
    kind: 'string',
    default: '/',
    frontend: { key: 'loginErrorPath', role: 'default' },
    description:
      "Page of the SPA a navigating browser is sent to when a login fails (at `/bff/login` or `/bff/callback`), with bffgate's error code in `login_error` (and a registered OAuth error of the IdP, like `login_required`, in `login_error_reason`). Programmatic callers still get the JSON error. A same-origin path outside `/bff/`.",
  },
  {
    name: 'BFF_REDIS_URL',
    kind: 'url',
    default: 'redis://127.0.0.1:6379',
    secret: true,
    description: '`redis://` or `rediss://` URL of the Redis that holds sessions; may carry an ACL user and password.',
  },
  {
    name: 'BFF_REDIS_USERNAME',
    kind: 'string',
    description:
      'Redis ACL user, for standalone, Sentinel-managed and Cluster nodes alike; overrides a user in `BFF_REDIS_URL`.',
  },
  {
    name: 'BFF_REDIS_PASSWORD',
    kind: 'string',
    secret: true,
    description:
      'Redis password (of the ACL user, or `requirepass`), for standalone, Sentinel-managed and Cluster nodes alike; overrides a password in `BFF_REDIS_URL`.',
  },
  {
    name: 'BFF_REDIS_SENTINELS',
    kind: 'list',
    description:
      'Comma-separated `host:port` list of Redis Sentinels; when set, the master is found through them (and followed across failovers) instead of `BFF_REDIS_URL`. Needs `BFF_REDIS_SENTINEL_MASTER_NAME`. With a `rediss://` `BFF_REDIS_URL`, TLS is used to the master and the sentinels.',
  },
  {
    name: 'BFF_REDIS_SENTINEL_MASTER_NAME',
    kind: 'string',
    description: 'Name of the master the sentinels monitor (`sentinel monitor <name> ...`).',
  },
  {
    name: 'BFF_REDIS_SENTINEL_PASSWORD',
    kind: 'string',
    secret: true,
    description: 'Password of the sentinels themselves (`requirepass` in sentinel.conf), when they have one.',
  },
  {
    name: 'BFF_REDIS_CLUSTER_NODES',
    kind: 'list',
    description:
      'Comma-separated `host:port` seed list of a Redis Cluster; when set, bffgate runs in cluster mode instead of `BFF_REDIS_URL` (the rest of the cluster is discovered). With a `rediss://` `BFF_REDIS_URL`, TLS is used to every node.',
  },
  {
    name: 'BFF_REDIS_KEY_PREFIX',
    kind: 'string',
    default: 'bff:',
    description: 'Prefix of every Redis key bffgate writes.',
  },
  {
    name: 'BFF_SESSION_STORE',
    kind: 'enum',
    values: ['redis', 'memory'],
    default: 'redis',
    description:
      '`redis`, or `memory` for a single development process (sessions are lost on restart and not shared; warns at start).',
  },
  {
    name: 'BFF_SESSION_SECRET',
    kind: 'list',
    required: true,
    secret: true,
    description:
      'At least 32 characters of high entropy; a comma-separated list for rotation: the first protects new sessions and login state, all are accepted.',
  },
  {
    name: 'BFF_SESSION_COOKIE_NAME',
    kind: 'string',
    default: '__Host-Http-bff',
    frontend: { key: 'cookieName', role: 'own' },
    description:
      'Name of the session cookie. Must start with `__Host-` (the `__Host-Http-` prefix of the IETF browser-based-apps BCP is preferred).',
  },
  {
    name: 'BFF_SESSION_IDLE_SECONDS',
    kind: 'integer',
    min: 1,
    default: '259200',
    description:
      'Idle timeout of the identity provider session in seconds (Auth0 tenant setting "Idle Session Lifetime"); the local session ends after this long without activity. Activity moves the deadline at most once per hundredth of it (1 s to 15 minutes), so a session may end up to that much earlier, never later.',
  },
  {
    name: 'BFF_SESSION_ABSOLUTE_SECONDS',
    kind: 'integer',
    min: 1,
    default: '2592000',
    description:
      'Absolute lifetime of the identity provider session in seconds (Auth0 "Maximum Session Lifetime"); the local session never outlives it.',
  },
  {
    name: 'BFF_REFRESH_SKEW_SECONDS',
    kind: 'integer',
    min: 0,
    default: '30',
    description:
      'Refresh an access token this many seconds before it expires, in the background of a request that still uses it; never more than a third of the lifetime the IdP issued the token with (a longer setting is capped, and reported once in the log and the `bff_refresh_skew_capped` metric).',
  },
  {
    name: 'BFF_REFRESH_LOCK_SECONDS',
    kind: 'integer',
    min: 1,
    default: '2',
    description:
      "Lease in seconds of the lock that lets one replica at a time exchange a session's refresh token. The holder renews it every third of that while its exchange runs (however long), so a crashed holder, or one cut off from Redis, blocks a session whose access token has expired no longer than this; a request whose token is still valid never waits for it.",
  },
  {
    name: 'BFF_SESSION_CHECK_SECONDS',
    kind: 'integer',
    min: 1,
    description:
      'When set, an active session exchanges its refresh token at least this often, bounding how long a revoked IdP session goes unnoticed without back-channel logout.',
  },
  {
    name: 'BFF_SESSION_WARNING_SECONDS',
    kind: 'integer',
    min: 0,
    default: '300',
    description:
      "How many seconds before a session's absolute end `GET /bff/session-events` sends the page a `session-expiring` event (time to save work); 0 sends none.",
  },
  {
    name: 'BFF_SESSION_EVENTS_MAX_STREAMS',
    kind: 'integer',
    min: 0,
    default: '10000',
    description:
      'Most `GET /bff/session-events` streams one process keeps open at once (further ones get 429 `too_many_streams`); 0 turns the endpoint off (404).',
  },
  {
    name: 'BFF_SESSION_EVENTS_MAX_PER_SESSION',
    kind: 'integer',
    min: 1,
    default: '10',
    description:
      'Most `GET /bff/session-events` streams one session may hold open on one process (one per open tab); further ones get 429 `too_many_streams`.',
  },
  {
    name: 'BFF_SESSION_EVENTS_HEARTBEAT_SECONDS',
    kind: 'integer',
    min: 1,
    default: '15',
    description:
      'Interval in seconds of the comment lines that keep an idle `GET /bff/session-events` stream from being cut by proxies and by `BFF_CONNECTION_TIMEOUT_SECONDS`.',
  },
  {
    name: 'BFF_BACKCHANNEL_LOGOUT',
    kind: 'boolean',
    default: 'true',
    description: 'Accept OpenID Connect back-channel logout at `/bff/backchannel-logout`.',
  },
  {
    name: 'BFF_SSF_DELIVERY',
    kind: 'enum',
    values: ['none', 'push', 'poll'],
    default: 'none',
    description:
      'Shared Signals (SSF 1.0, CAEP 1.0) receiver: `push` accepts Security Event Tokens at `POST /bff/ssf/events` (RFC 8935), `poll` fetches them from `BFF_SSF_POLL_URL` (RFC 8936, one replica at a time); CAEP `session-revoked` and `credential-change` end the matching sessions. `none` turns the receiver off. Needs `BFF_SSF_ISSUER`.',
  },
  {
    name: 'BFF_SSF_ISSUER',
    kind: 'url',
    description:
      'Issuer of the SSF transmitter: the `iss` every Security Event Token must carry; its keys are found through `<issuer host>/.well-known/ssf-configuration<issuer path>` unless `BFF_SSF_JWKS_URI` is set.',
  },
  {
    name: 'BFF_SSF_JWKS_URI',
    kind: 'url',
    description: "The transmitter's JWKS, instead of the `jwks_uri` of its SSF configuration document.",
  },
  {
    name: 'BFF_SSF_AUDIENCE',
    kind: 'string',
    description:
      "The `aud` every Security Event Token must carry (the audience of the stream at the transmitter). Defaults to the origin of `BFF_PUBLIC_URL`, or with a `frontends` list and no `BFF_PUBLIC_URL` the first frontend's origin (its `publicUrl` without any `pathPrefix`).",
  },
  {
    name: 'BFF_SSF_PUSH_AUTHORIZATION',
    kind: 'string',
    secret: true,
    description:
      "With push delivery: the exact `Authorization` header value the transmitter sends with every SET (the stream's `authorization_header`, e.g. `Bearer <random>`), compared in constant time; at least 32 characters.",
  },
  {
    name: 'BFF_SSF_POLL_URL',
    kind: 'url',
    description:
      "With poll delivery: the transmitter's poll endpoint for this stream (the stream's `delivery.endpoint_url`).",
  },
  {
    name: 'BFF_SSF_POLL_AUTHORIZATION',
    kind: 'string',
    secret: true,
    description:
      'With poll delivery: the `Authorization` header value sent to `BFF_SSF_POLL_URL` (e.g. `Bearer <token>`).',
  },
  {
    name: 'BFF_SSF_MAX_AGE_SECONDS',
    kind: 'integer',
    min: 60,
    default: '3600',
    description:
      'Oldest Security Event Token accepted, in seconds since its `iat`; its `jti` is remembered (in Redis, for every replica) this long, so a replay is refused. Cover how long events may wait in a poll queue or in push retries.',
  },
  {
    name: 'BFF_GLOBAL_REVOCATION_ISSUER',
    kind: 'url',
    description:
      "Turns on Global Token Revocation (draft-parecki-oauth-global-token-revocation) at `POST /bff/global-token-revocation`: a caller (e.g. Okta Universal Logout) authenticated by a signed JWT bearer token from this issuer ends every session of a user. Keys from `BFF_GLOBAL_REVOCATION_JWKS_URI` or the issuer's discovery document.",
  },
  {
    name: 'BFF_GLOBAL_REVOCATION_JWKS_URI',
    kind: 'url',
    description:
      'JWKS of `BFF_GLOBAL_REVOCATION_ISSUER`, instead of the `jwks_uri` of its `.well-known/openid-configuration` (or `oauth-authorization-server`).',
  },
  {
    name: 'BFF_GLOBAL_REVOCATION_AUDIENCE',
    kind: 'string',
    description:
      "The `aud` the caller's bearer JWT must carry. Defaults to the origin of `BFF_PUBLIC_URL`, or with a `frontends` list and no `BFF_PUBLIC_URL` the first frontend's origin, + `/bff/global-token-revocation` (the endpoint's URL, what Okta puts there; the endpoint answers at the root of every host).",
  },
  {
    name: 'BFF_ROUTES',
    kind: 'json',
    default: '[]',
    frontend: { key: 'routes', role: 'own' },
    description:
      'JSON array of proxied routes: `{"path":"/api","upstream":"http://api:9000"}` plus optional `rewritePrefix`, `audience`, `scope`, `token` (`required`, `optional`, `none`), `csrf` (`header`, the default: every request needs `x-csrf: 1`; `same-origin`: GET and HEAD are also accepted on the browser\'s own same-origin signal, for `EventSource`, images and downloads; see docs/spa.md), `websocket`, `dpop`.',
  },
  {
    name: 'BFF_TRUSTED_PROXIES',
    kind: 'list',
    description:
      "Comma-separated IP addresses or CIDR ranges (`10.0.0.0/8`, `2001:db8::/32`) of the proxies in front of bffgate (load balancer, ingress). Only when the connection comes from one of them is the client address taken from its `X-Forwarded-For`: the rightmost address there that is not itself a trusted proxy. Unset: the client address is the connection's peer. Either way, forwarding headers a client sends (`Forwarded`, `X-Forwarded-*`, `X-Real-IP` and kin) never reach an upstream; bffgate writes its own.",
  },
  {
    name: 'BFF_UPSTREAM_TIMEOUT_SECONDS',
    kind: 'integer',
    min: 1,
    default: '30',
    description:
      "How long, in seconds, a proxied request waits for the upstream's response headers before answering 504.",
  },
  {
    name: 'BFF_CONNECTION_TIMEOUT_SECONDS',
    kind: 'integer',
    min: 0,
    default: '60',
    description: 'Socket inactivity timeout in seconds of browser connections (node `server.timeout`); 0 disables it.',
  },
  {
    name: 'BFF_REQUEST_TIMEOUT_SECONDS',
    kind: 'integer',
    min: 0,
    default: '120',
    description:
      'Longest time in seconds to receive a whole request from the browser (node `server.requestTimeout`, against slow-loris); 0 disables it.',
  },
  {
    name: 'BFF_KEEP_ALIVE_TIMEOUT_SECONDS',
    kind: 'integer',
    min: 1,
    default: '72',
    description:
      'How long in seconds an idle keep-alive connection stays open; keep it above the idle timeout of the load balancer in front (AWS ALB: 60).',
  },
  {
    name: 'BFF_MAX_HEADER_BYTES',
    kind: 'integer',
    min: 1024,
    default: '16384',
    description: 'Largest request head (request line and headers) accepted, in bytes; larger heads get 431.',
  },
  {
    name: 'BFF_MAX_EVENT_LOOP_DELAY_MS',
    kind: 'integer',
    min: 0,
    default: '1000',
    description:
      'Answer 503 with `Retry-After` (load shedding, probes exempt) while the event loop lags more than this many milliseconds; 0 disables the check.',
  },
  {
    name: 'BFF_RATE_LIMIT_WINDOW_SECONDS',
    kind: 'integer',
    min: 1,
    default: '60',
    description:
      'Length in seconds of the window the rate limits of `/bff/login`, `/bff/callback`, `/bff/backchannel-logout`, `/bff/global-token-revocation` and `/bff/ssf/events` count in. The counts live in Redis (with the Redis store), so every replica shares them.',
  },
  {
    name: 'BFF_RATE_LIMIT_LOGIN',
    kind: 'integer',
    min: 0,
    default: '60',
    description:
      'Requests to `/bff/login` allowed per client IP per window; more get 429 with `Retry-After`. Raise it when many users share one address (an office behind NAT); 0 disables the limit.',
  },
  {
    name: 'BFF_RATE_LIMIT_CALLBACK',
    kind: 'integer',
    min: 0,
    default: '60',
    description: 'Requests to `/bff/callback` allowed per client IP per window; 0 disables the limit.',
  },
  {
    name: 'BFF_RATE_LIMIT_BACKCHANNEL_LOGOUT',
    kind: 'integer',
    min: 0,
    default: '600',
    description:
      "Requests to `/bff/backchannel-logout` allowed per client IP per window. They come from the identity provider's few addresses, one per ended session, so keep it well above your logout rate; 0 disables the limit.",
  },
  {
    name: 'BFF_RATE_LIMIT_REVOCATION',
    kind: 'integer',
    min: 0,
    default: '600',
    description:
      "Requests to `/bff/global-token-revocation` and to `/bff/ssf/events` (each endpoint counted apart) allowed per client IP per window. Each verifies a JWT and may fetch the caller's keys; they come from the identity provider or transmitter, one per revoked user or security event, so keep it well above that rate; 0 disables the limit.",
  },
  {
    name: 'BFF_STARTUP_TIMEOUT_SECONDS',
    kind: 'integer',
    min: 0,
    default: '60',
    description:
      'How long, in seconds, the start waits for an unreachable identity provider (discovery) or Redis, retrying with backoff, before it exits with status 1; meanwhile the admin port answers `/healthz` 200 and `/readyz` 503. 0 gives up at the first failure. A wrong issuer or a refused client is not waited for.',
  },
  {
    name: 'BFF_STATIC_DIR',
    kind: 'string',
    frontend: { key: 'staticDir', role: 'own' },
    description: 'A folder of static files (the SPA) served at `/`; nothing is served there when unset.',
  },
  {
    name: 'BFF_CONTENT_SECURITY_POLICY',
    kind: 'string',
    default: DEFAULT_CONTENT_SECURITY_POLICY,
    frontend: { key: 'contentSecurityPolicy', role: 'default' },
    description:
      "Content-Security-Policy sent with the SPA's files from `BFF_STATIC_DIR`. The default is strict: scripts, styles, fonts and API calls from this origin only (no inline script or style, no `eval`), images also as `data:`, no plugins, no `<base>`, no framing. Checked at start: one policy of known directives, none repeated; a script directive allowing inline code, `eval` or any host is warned about. Add hashes (`'sha256-...'`) for inline scripts you cannot move to files (docs/spa.md).",
  },
  {
    name: 'BFF_LOG_LEVEL',
    kind: 'enum',
    values: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
    default: 'info',
    description: 'pino log level.',
  },
  {
    name: 'BFF_CONFIG',
    kind: 'string',
    description:
      'Path of a YAML or JSON file whose keys are these variable names; the environment wins over the file. The file may also hold a `frontends` list: several SPAs, each with its own client, cookie and routes (docs/frontends.md).',
  },
] as const satisfies readonly SettingSpec[]

export type SettingName = (typeof settings)[number]['name']

/** One key of a frontend in the `frontends` list of the `BFF_CONFIG` file (docs/frontends.md). */
export interface FrontendKeySpec {
  readonly key: string
  /** How the value is written in the file. */
  readonly type: string
  readonly description: string
  readonly required?: boolean
  /** The default, in words, when it is not a setting's value. */
  readonly default?: string
}

/**
 * The keys of one frontend. A key that takes a setting's place (`frontend` in {@link settings})
 * defaults to that setting's value; the docs name it.
 */
export const frontendKeys: readonly FrontendKeySpec[] = [
  {
    key: 'name',
    type: 'string',
    required: true,
    description:
      'Lowercase letters, digits and `-`, at most 32, starting with a letter; unique. Names the frontend in errors, logs and metrics.',
  },
  {
    key: 'publicUrl',
    type: 'url',
    description:
      'The origin the browser uses for this frontend; its host selects the frontend (port ignored, as cookies ignore ports).',
  },
  {
    key: 'pathPrefix',
    type: 'path',
    default: 'none',
    description:
      'Mounts the frontend under this path on its host, e.g. `/admin`: its `/bff/*` endpoints, routes, static files and login error page are then under `/admin`, and its cookie is scoped to it (`Path=/admin`, a `__Secure-` name).',
  },
  { key: 'issuer', type: 'url', description: "Issuer URL of this frontend's identity provider." },
  {
    key: 'clientId',
    type: 'string',
    required: true,
    description: "OAuth client id; unique per issuer (a back-channel logout token's audience names one frontend).",
  },
  {
    key: 'clientSecretFile',
    type: 'path',
    description:
      'File holding the client secret (a mounted Kubernetes or Docker secret). The secret itself never goes in this file. This or `clientPrivateKeyFile` is required.',
  },
  {
    key: 'clientPrivateKeyFile',
    type: 'path',
    description: 'File holding the private key (JWK JSON or PKCS#8 PEM) for `private_key_jwt`, instead of a secret.',
  },
  { key: 'tokenEndpointAuthMethod', type: 'enum', description: 'Client authentication at the token endpoint.' },
  { key: 'scopes', type: 'list or string', description: 'Scopes to request.' },
  { key: 'audience', type: 'string', description: 'Auth0 `audience` of the access token.' },
  { key: 'par', type: 'boolean', description: 'Pushed Authorization Requests.' },
  { key: 'dpop', type: 'boolean', description: 'DPoP for every token of this frontend.' },
  { key: 'revokeRefreshTokenOnLogout', type: 'boolean', description: 'Revoke the refresh token on logout.' },
  {
    key: 'postLogoutRedirectUrl',
    type: 'url',
    default: 'publicUrl + pathPrefix + `/bff/logged-out`',
    description: 'Where the identity provider sends the browser after logout.',
  },
  {
    key: 'cookieName',
    type: 'string',
    default: '`__Host-Http-bff-<name>`, or `__Secure-bff-<name>` with a pathPrefix',
    description:
      'Session cookie name, unique. `__Host-` without a pathPrefix, `__Secure-` with one (`__Host-` forbids a Path).',
  },
  {
    key: 'routes',
    type: 'list of routes',
    default: 'none',
    description: 'Proxied routes, as in `BFF_ROUTES`; paths are relative to the pathPrefix.',
  },
  {
    key: 'staticDir',
    type: 'path',
    default: 'none',
    description: "Folder of this frontend's static files (the SPA), served at its pathPrefix.",
  },
  { key: 'contentSecurityPolicy', type: 'string', description: 'Content-Security-Policy of the static files.' },
  {
    key: 'loginParameters',
    type: 'list or string',
    description: 'Query parameters of `/bff/login` forwarded to the IdP; `none` for none.',
  },
  { key: 'loginErrorPath', type: 'path', description: 'Page a failed login lands on, relative to the pathPrefix.' },
]
