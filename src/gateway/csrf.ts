/**
 * CSRF defence for proxied and state-changing calls (design §3): the request must carry
 * `x-csrf: 1` (a custom header forces a CORS preflight cross-site, which bffgate never
 * grants), and a present `Origin` must be ours and a present `Sec-Fetch-Site` must say
 * same-origin or same-site.
 */
export type CsrfVerdict = 'ok' | 'header_missing' | 'cross_site'

export function checkCsrf (headers: Readonly<Record<string, string | string[] | undefined>>, publicOrigin: string): CsrfVerdict {
  const origin = headers.origin
  if (origin !== undefined && origin !== publicOrigin) return 'cross_site'
  const site = headers['sec-fetch-site']
  if (site !== undefined && site !== 'same-origin' && site !== 'same-site') return 'cross_site'
  return headers['x-csrf'] === '1' ? 'ok' : 'header_missing'
}
