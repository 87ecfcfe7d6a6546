import { isIP } from 'node:net'

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
export function isForwardingHeader (name: string): boolean {
  const normal = name.includes('_') ? name.replaceAll('_', '-') : name
  return FORWARDING_HEADERS.has(normal) || FORWARDING_PREFIX.test(normal)
}

const FORWARDING_HEADERS = new Set([
  'forwarded', 'forwarded-for', 'x-forwarded', 'x-forward-for',
  'x-real-ip', 'x-client-ip', 'client-ip', 'x-cluster-client-ip', 'true-client-ip', 'x-originating-ip', 'x-proxyuser-ip',
  'wl-proxy-client-ip', 'proxy-client-ip', 'x-nf-client-connection-ip', 'fly-client-ip',
  'x-host', 'x-http-host-override', 'x-rewrite-url', 'front-end-https', 'x-url-scheme', 'x-scheme',
  'x-http-method-override', 'x-http-method', 'x-method-override',
  'x-client-cert', 'x-client-verify', 'x-client-dn', 'ssl-client-cert', 'ssl-client-verify',
  'remote-user', 'x-middleware-subrequest',
  'x-goog-authenticated-user-email', 'x-goog-authenticated-user-id', 'x-goog-iap-jwt-assertion',
])

const FORWARDING_PREFIXES = [
  'x-forwarded-', 'x-original-', 'x-real-', 'x-remote-', 'x-ssl-', 'x-arr-', 'x-envoy-', 'x-istio-', 'x-amzn-', 'x-amz-cf-',
  'cf-', 'fastly-', 'akamai-', 'x-akamai-', 'x-azure-', 'x-appengine-', 'x-vercel-', 'fly-forwarded-',
  'x-ms-client-principal', 'x-ms-token-', 'x-auth-request-', 'x-webauth-',
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
export function forwardingHeaders (chain: readonly string[], publicHost: string, publicProto: string): Record<'x-forwarded-for' | 'x-forwarded-host' | 'x-forwarded-proto' | 'forwarded', string> {
  const hops = chain.map((address) => (isIP(address) === 0 ? 'unknown' : address))
  return {
    'x-forwarded-for': hops.join(', '),
    'x-forwarded-host': publicHost,
    'x-forwarded-proto': publicProto,
    forwarded: hops.map((address, i) => `for=${forwardedNode(address)}${i === 0 ? `;host=${quoted(publicHost)};proto=${publicProto}` : ''}`).join(', '),
  }
}

/** RFC 7239 §6: an IPv6 node is bracketed and, holding `:`, quoted. */
function forwardedNode (address: string): string {
  return isIP(address) === 6 ? `"[${address}]"` : address
}

function quoted (value: string): string {
  return `"${value.replace(/["\\]/g, '\\$&')}"`
}
