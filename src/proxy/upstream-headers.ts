import type { FastifyRequest } from 'fastify'
import type { IncomingHttpHeaders } from 'node:http'
import { isIP } from 'node:net'
import type { StoredAccessToken } from '../session/types.ts'

/**
 * The upstream header policy, both ways, in one place:
 * - to the upstream: the browser's headers without its credentials for bffgate, without
 *   hop-by-hop headers and without forwarding headers; bffgate's credentials (access token,
 *   DPoP proof), the request id and bffgate's own forwarding headers added
 *   ({@link upstreamRequestHeaders}, {@link clientForwardingHeaders});
 * - to the browser: hop-by-hop headers removed and bad characters stripped
 *   ({@link responseHeadersOf}), bffgate's cookies never set by an upstream
 *   ({@link withoutCookies}), and answers fetched with a user's token private to that user
 *   ({@link privateForSharedCaches}).
 * Pure functions of headers; the proxy routes (routes.ts) decide when each applies.
 */

// ---- To the upstream ----------------------------------------------------------------------

/** Where a route's requests go, and how bffgate presents itself there. */
export interface UpstreamTarget {
  /** The upstream's `host` (the `Host` header it gets). */
  readonly host: string
  /** Host and scheme of `BFF_PUBLIC_URL`: what the forwarding headers say the browser asked for. */
  readonly publicHost: string
  readonly publicProto: string
}

/** The credentials bffgate attaches for the upstream: none without a token. */
export interface UpstreamCredentials {
  authorization?: string
  dpop?: string
}

/** `Authorization` (`DPoP` or `Bearer` after the token's type) and the `DPoP` proof when there is one. */
export function upstreamCredentials(token: StoredAccessToken, dpopProof: string | null): UpstreamCredentials {
  return {
    authorization: `${isDpopToken(token) ? 'DPoP' : 'Bearer'} ${token.access_token}`,
    ...(dpopProof !== null && { dpop: dpopProof }),
  }
}

export function isDpopToken(token: StoredAccessToken): boolean {
  return token.token_type.toLowerCase() === 'dpop'
}

/** Browser headers that never reach an upstream: its credentials for bffgate, and ours. */
const BROWSER_CREDENTIALS = new Set(['cookie', 'authorization', 'x-csrf', 'dpop', 'proxy-authorization', 'host'])

/**
 * The headers an upstream gets: the browser's, without hop-by-hop headers, without its
 * credentials and without forwarding headers (only bffgate's own reach the upstream); the
 * access token (and DPoP proof) when the route carries one; the request id (the same as in
 * our logs, so upstream logs correlate) and bffgate's forwarding headers.
 */
export function upstreamRequestHeaders(
  request: FastifyRequest,
  credentials: UpstreamCredentials | undefined,
  target: UpstreamTarget,
): IncomingHttpHeaders {
  const incoming = request.headers
  const listed = connectionListed(incoming)
  const out: IncomingHttpHeaders = {}
  for (const name in incoming) {
    if (!BROWSER_CREDENTIALS.has(name) && !isHopByHop(name, listed) && !isForwardingHeader(name))
      out[name] = incoming[name]
  }
  out.host = target.host
  if (credentials !== undefined) Object.assign(out, credentials)
  out['x-request-id'] = request.id
  Object.assign(out, clientForwardingHeaders(request, target))
  return out
}

/**
 * The forwarding headers bffgate writes for a request: the client is the connection's peer,
 * or, behind proxies named in `BFF_TRUSTED_PROXIES`, the rightmost untrusted address of their
 * `X-Forwarded-For` (fastify's `trustProxy`: `request.ips` is that path, peer first).
 */
export function clientForwardingHeaders(request: FastifyRequest, target: UpstreamTarget): Record<string, string> {
  const chain = request.ips === undefined ? [request.ip] : request.ips.toReversed()
  return forwardingHeaders(chain, target.publicHost, target.publicProto)
}

/**
 * Forwarding headers: what the hop in front tells an upstream about the client and the
 * original request. Upstreams believe them because they assume their proxy wrote them, so
 * bffgate never relays one a client sent (on any route, trusted proxy or not) and writes its
 * own instead ({@link forwardingHeaders}).
 *
 * The class, by convention written only by a proxy or the platform in front: the client's
 * address (`X-Forwarded-For`, `X-Real-IP`, `True-Client-IP`, `CF-Connecting-IP` ...), the
 * original host, scheme, port, prefix, URL or method (`Forwarded`, `X-Forwarded-Host`,
 * `X-Original-URL`, `X-HTTP-Method-Override` ...), the client's TLS certificate
 * (`X-SSL-Client-Verify`, `X-Forwarded-Client-Cert` ...), identity asserted by an
 * authenticating proxy (`X-Forwarded-User`, `X-Auth-Request-User`, `X-Remote-User`,
 * `X-Amzn-OIDC-*`, `X-MS-Client-Principal*`, `X-Goog-Authenticated-User-*`, `Cf-Access-*`)
 * and platform-internal markers (`X-Envoy-*`, `X-Azure-FDID`, `X-Middleware-Subrequest`).
 * Names are compared with `_` read as `-`: CGI, WSGI, PHP and others map both to the same
 * variable (`HTTP_X_FORWARDED_FOR`).
 */
export function isForwardingHeader(name: string): boolean {
  const normal = name.includes('_') ? name.replaceAll('_', '-') : name
  return FORWARDING_HEADERS.has(normal) || FORWARDING_PREFIX.test(normal)
}

const FORWARDING_HEADERS = new Set([
  'forwarded',
  'forwarded-for',
  'x-forwarded',
  'x-forward-for',
  'x-real-ip',
  'x-client-ip',
  'client-ip',
  'x-cluster-client-ip',
  'true-client-ip',
  'x-originating-ip',
  'x-proxyuser-ip',
  'wl-proxy-client-ip',
  'proxy-client-ip',
  'x-nf-client-connection-ip',
  'fly-client-ip',
  'x-host',
  'x-http-host-override',
  'x-rewrite-url',
  'front-end-https',
  'x-url-scheme',
  'x-scheme',
  'x-http-method-override',
  'x-http-method',
  'x-method-override',
  'x-client-cert',
  'x-client-verify',
  'x-client-dn',
  'ssl-client-cert',
  'ssl-client-verify',
  'remote-user',
  'x-middleware-subrequest',
  'x-goog-authenticated-user-email',
  'x-goog-authenticated-user-id',
  'x-goog-iap-jwt-assertion',
])

const FORWARDING_PREFIXES = [
  'x-forwarded-',
  'x-original-',
  'x-real-',
  'x-remote-',
  'x-ssl-',
  'x-arr-',
  'x-envoy-',
  'x-istio-',
  'x-amzn-',
  'x-amz-cf-',
  'cf-',
  'fastly-',
  'akamai-',
  'x-akamai-',
  'x-azure-',
  'x-appengine-',
  'x-vercel-',
  'fly-forwarded-',
  'x-ms-client-principal',
  'x-ms-token-',
  'x-auth-request-',
  'x-webauth-',
]
/** One anchored alternation: a header name is tested once, not once per prefix. */
const FORWARDING_PREFIX = new RegExp(`^(?:${FORWARDING_PREFIXES.join('|')})`)

/**
 * The forwarding headers bffgate writes. `chain` is the path of the request, client first:
 * the client, then each trusted proxy it passed, then the peer bffgate saw (just the peer when
 * no proxy is trusted). Host and scheme are those of `BFF_PUBLIC_URL`, never the request's.
 *
 * `Forwarded` (RFC 7239) says the same as the `X-Forwarded-*` trio, one element per hop: the
 * first, `for=<client>;host=...;proto=...`, describes the request as the browser made it (the
 * element frameworks such as Spring read), each further one `for=<hop>`. It is written rather
 * than only dropped because an upstream that prefers `Forwarded` (Spring's
 * ForwardedHeaderFilter does) then reads bffgate's values, not whatever a proxy between
 * bffgate and it might add.
 */
export function forwardingHeaders(
  chain: readonly string[],
  publicHost: string,
  publicProto: string,
): Record<'x-forwarded-for' | 'x-forwarded-host' | 'x-forwarded-proto' | 'forwarded', string> {
  const hops = chain.map((address) => (isIP(address) === 0 ? 'unknown' : address))
  return {
    'x-forwarded-for': hops.join(', '),
    'x-forwarded-host': publicHost,
    'x-forwarded-proto': publicProto,
    forwarded: hops
      .map(
        (address, i) =>
          `for=${forwardedNode(address)}${i === 0 ? `;host=${quoted(publicHost)};proto=${publicProto}` : ''}`,
      )
      .join(', '),
  }
}

/** RFC 7239 §6: an IPv6 node is bracketed and, holding `:`, quoted. */
function forwardedNode(address: string): string {
  return isIP(address) === 6 ? `"[${address}]"` : address
}

function quoted(value: string): string {
  return `"${value.replace(/["\\]/g, '\\$&')}"`
}

// ---- Both ways: hop-by-hop ----------------------------------------------------------------

/**
 * Hop-by-hop headers (RFC 9110 §7.6.1) and `expect`: they describe one connection, never the
 * next one, so they are not forwarded in either direction (undici refuses most of them).
 */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'expect',
  'http2-settings',
])

/** The header names a message's `Connection` header lists: hop-by-hop for that message too. */
export function connectionListed(headers: IncomingHttpHeaders): ReadonlySet<string> | undefined {
  const connection = headers.connection
  // The usual values name no other header (`keep-alive` is hop-by-hop anyway).
  if (connection === undefined || connection === '' || connection === 'keep-alive' || connection === 'close')
    return undefined
  return new Set(
    connection
      .toLowerCase()
      .split(',')
      .map((name) => name.trim())
      .filter((name) => name !== ''),
  )
}

/** True for a header that must not cross the proxy (hop-by-hop, or listed in `Connection`). */
export function isHopByHop(name: string, listed: ReadonlySet<string> | undefined): boolean {
  return HOP_BY_HOP.has(name) || (listed !== undefined && listed.has(name))
}

// ---- To the browser -----------------------------------------------------------------------

/** Characters that are not valid in a header value (HTAB, SP–~ and obs-text are). */
const INVALID_HEADER_VALUE = /[^\t\x20-\x7E\x80-\xFF]/g

/**
 * The upstream response's headers as the client gets them: hop-by-hop ones removed, and
 * characters a header value cannot hold stripped (an upstream's bad header must not fail
 * the answer).
 */
export function responseHeadersOf(upstream: IncomingHttpHeaders): IncomingHttpHeaders {
  const listed = connectionListed(upstream)
  const out: IncomingHttpHeaders = {}
  for (const name in upstream) {
    if (isHopByHop(name, listed)) continue
    const value = upstream[name]
    if (typeof value === 'string') out[name] = sanitize(value)
    else if (Array.isArray(value)) out[name] = value.map(sanitize)
  }
  return out
}

function sanitize(value: string): string {
  INVALID_HEADER_VALUE.lastIndex = 0
  return INVALID_HEADER_VALUE.test(value) ? value.replace(INVALID_HEADER_VALUE, '') : value
}

/**
 * The cookie name a browser stores for a `Set-Cookie` line, as the server will read it back:
 * RFC 6265bis §5.7 ("Parse and Store a Set-Cookie header"). The name-value pair ends at the
 * first `;`; the name is what precedes the first `=`, with spaces and tabs trimmed
 * (`__Host-Http-bff =x` is the cookie `__Host-Http-bff`). Without `=`, or with nothing before
 * it, the cookie has an empty name and the line is its value; a browser sends such a cookie
 * back as its bare value, so `=__Host-Http-bff=x` (or `__Host-Http-bff` alone) comes back as
 * `Cookie: __Host-Http-bff=x`: its name as a server reads it is the value's name part.
 *
 * Names are compared case-sensitively: browsers store and send `__HOST-HTTP-BFF` as a cookie
 * of its own, and bffgate's cookie reader looks up the exact name, so a case variant never
 * replaces bffgate's cookie.
 *
 * Trimming takes every space and control character, more than browsers do: a name wrongly
 * taken for ours only costs the upstream a cookie it should not set anyway.
 */
export function setCookieName(line: string): string {
  const pair = line.split(';', 1)[0]!
  const equals = pair.indexOf('=')
  const name = equals === -1 ? '' : trim(pair.slice(0, equals))
  if (name !== '') return name
  const value = trim(equals === -1 ? pair : pair.slice(equals + 1))
  const inner = value.indexOf('=')
  return trim(inner === -1 ? value : value.slice(0, inner))
}

// oxlint-disable-next-line no-control-regex
const EDGE_SPACE = /^[\s\u0000-\u001f\u007f]+|[\s\u0000-\u001f\u007f]+$/gu

function trim(text: string): string {
  return text.replace(EDGE_SPACE, '')
}

/**
 * An upstream must not set (or overwrite) bffgate's own cookies on the app's origin: the
 * `Set-Cookie` lines whose name, read as a browser reads it ({@link setCookieName}), is ours
 * are removed. Returns the headers (the same object, changed).
 */
export function withoutCookies(headers: IncomingHttpHeaders, isOurs: (name: string) => boolean): IncomingHttpHeaders {
  const cookies = headers['set-cookie']
  if (cookies === undefined) return headers
  headers['set-cookie'] = cookies.filter((line) => !isOurs(setCookieName(line)))
  return headers
}

/**
 * Keeps shared caches from storing an answer fetched with a user's access token.
 *
 * A cache in front of bffgate sees a request with a cookie, not with `Authorization`, so the
 * rule that protects authenticated answers (RFC 9111 §3.5) does not apply there: an upstream
 * answer marked `public` or just `max-age=60` could be served to the next user. So such answers
 * get `Cache-Control: private` (RFC 9111 §5.2.2.7), and the upstream's other directives stay
 * (the browser's own cache may still use `max-age`):
 * - left as they are when the upstream already said `private` (unqualified, and not contradicted
 *   by `public` or `s-maxage`) or `no-store`;
 *   `no-store` next to `must-understand` does not count, because a cache that understands the
 *   status code may then store the answer (§5.2.2.3);
 * - `public` goes (it contradicts `private`), and so do the shared-cache-only `s-maxage` and
 *   `proxy-revalidate`; a qualified `private="field"` (only some fields private) becomes `private`;
 * - targeted cache fields that CDNs obey instead of `Cache-Control` (`CDN-Cache-Control` and
 *   `<vendor>-CDN-Cache-Control` of RFC 9213, `Surrogate-Control`, Akamai's `Edge-Control`)
 *   are removed, so the CDN falls back to `Cache-Control`. `Expires` stays: `private` outranks it.
 *
 * Pure: returns the headers to send (the same object, changed).
 */
export function privateForSharedCaches<Headers extends NodeJS.Dict<string | string[]>>(headers: Headers): Headers {
  // Every targeted field's name ends in `control` (checked first: this runs on every proxied answer).
  for (const name in headers) if (name.endsWith('control') && TARGETED_CACHE_FIELD.test(name)) delete headers[name]
  const value = headers['cache-control']
  const cacheControl = Array.isArray(value) ? value.join(',') : (value ?? '')
  // An upstream sends few distinct values (often none): each is worked out once.
  let rewritten = privateCacheControls.get(cacheControl)
  if (rewritten === undefined) {
    rewritten = privateCacheControl(cacheControl)
    if (privateCacheControls.size >= PRIVATE_CACHE_CONTROLS_MAX) privateCacheControls.clear()
    privateCacheControls.set(cacheControl, rewritten)
  }
  if (rewritten !== null) (headers as NodeJS.Dict<string | string[]>)['cache-control'] = rewritten
  return headers
}

/** `Cache-Control` values already worked out: the value to send instead, or null to keep it. */
const privateCacheControls = new Map<string, string | null>()
const PRIVATE_CACHE_CONTROLS_MAX = 256

/** The `Cache-Control` that keeps an answer out of shared caches, or null when `value` already does. */
function privateCacheControl(value: string): string | null {
  const directives = splitDirectives(value)
  const names = directives.map(directiveName)
  // `private` next to `public` or `s-maxage` contradicts itself: caches differ on which wins.
  const saysPrivate =
    directives.some((directive) => directive.toLowerCase() === 'private') &&
    !names.includes('public') &&
    !names.includes('s-maxage')
  const saysNoStore = names.includes('no-store') && !names.includes('must-understand')
  if (saysPrivate || saysNoStore) return null
  return ['private', ...directives.filter((_, i) => !SHARED_ONLY.has(names[i]!))].join(', ')
}

const TARGETED_CACHE_FIELD = /^(?:[a-z0-9-]+-)?cdn-cache-control$|^surrogate-control$|^edge-control$/
/** Directives that are dropped or replaced once the answer is `private`. */
const SHARED_ONLY = new Set(['public', 'private', 's-maxage', 'proxy-revalidate'])

function directiveName(directive: string): string {
  const equals = directive.indexOf('=')
  return (equals === -1 ? directive : directive.slice(0, equals)).trim().toLowerCase()
}

/** The comma-separated directives, trimmed, commas inside quoted strings kept (`no-cache="a, b"`). */
function splitDirectives(value: string): string[] {
  const directives: string[] = []
  let start = 0
  let inQuotes = false
  for (let i = 0; i < value.length; i++) {
    const c = value[i]
    if (inQuotes && c === '\\') i++
    else if (c === '"') inQuotes = !inQuotes
    else if (c === ',' && !inQuotes) {
      directives.push(value.slice(start, i))
      start = i + 1
    }
  }
  directives.push(value.slice(start))
  return directives.map((d) => d.trim()).filter((d) => d !== '')
}
