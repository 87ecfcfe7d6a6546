import type { RouteCsrfPolicy } from '../config/types.ts'

/**
 * CSRF defence for proxied and state-changing calls (docs/security.md): the request must carry
 * `x-csrf: 1` (a custom header forces a CORS preflight cross-site, which bffgate never
 * grants), and a present `Origin` must be ours and a present `Sec-Fetch-Site` must say
 * same-origin or same-site.
 */
export type CsrfVerdict = 'ok' | 'header_missing' | 'cross_site'

type Headers = Readonly<Record<string, string | string[] | undefined>>

export function checkCsrf(headers: Headers, publicOrigin: string): CsrfVerdict {
  const origin = headers.origin
  if (origin !== undefined && origin !== publicOrigin) return 'cross_site'
  const site = headers['sec-fetch-site']
  if (site !== undefined && site !== 'same-origin' && site !== 'same-site') return 'cross_site'
  return headers['x-csrf'] === '1' ? 'ok' : 'header_missing'
}

/** Methods that must not change state (RFC 9110 §9.2.1): the only ones a `same-origin` route takes without the header. */
const SAFE_METHODS = new Set(['GET', 'HEAD'])

/**
 * The CSRF check of a proxied route, under its policy. `header` is {@link checkCsrf}.
 * `same-origin` accepts a GET or HEAD without `x-csrf` when the browser itself says the
 * request comes from our origin, so that `EventSource`, `<img>`, `<a download>` and
 * `<video>` (which cannot set headers) work:
 * - `Sec-Fetch-Site: same-origin` (Fetch Metadata; a page of another site, even a sibling
 *   subdomain, gets `same-site` or `cross-site`, which are refused), or `none` (the user
 *   opened the URL from the address bar or a bookmark: no page caused it);
 * - without Fetch Metadata, an `Origin` equal to ours.
 * With neither signal (a browser older than Fetch Metadata loading an image) the request is
 * refused: this fails closed rather than trusting a request whose origin nobody vouches for.
 * A present `Origin` of another origin is refused whatever else the request says.
 */
export function checkRouteCsrf(
  policy: RouteCsrfPolicy,
  method: string,
  headers: Headers,
  publicOrigin: string,
): CsrfVerdict {
  if (policy !== 'same-origin' || !SAFE_METHODS.has(method)) return checkCsrf(headers, publicOrigin)
  const origin = headers.origin
  if (origin !== undefined && origin !== publicOrigin) return 'cross_site'
  const site = headers['sec-fetch-site']
  if (site === 'same-origin' || site === 'none') return 'ok'
  if (site === undefined && origin === publicOrigin) return 'ok'
  // Another site's page (or no signal at all): only the header, as on a `header` route.
  return checkCsrf(headers, publicOrigin)
}
