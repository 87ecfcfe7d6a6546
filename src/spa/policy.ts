/**
 * How bffgate serves a single-page app like a static host would (docs/spa.md): which
 * requests get `index.html` (history fallback) and how long each file may be cached. Pure.
 */

type Headers = Readonly<Record<string, string | string[] | undefined>>

/**
 * Whether the browser is loading a page (a top-level or frame navigation), as opposed to a
 * script's `fetch` or a subresource: `Sec-Fetch-Mode: navigate` where the browser sends Fetch
 * Metadata; without it, an `Accept` that asks for HTML.
 */
export function isNavigation(headers: Headers): boolean {
  const mode = headers['sec-fetch-mode']
  if (mode !== undefined) return mode === 'navigate'
  const accept = headers.accept
  return typeof accept === 'string' && /(^|,)\s*text\/html\s*(;|,|$)/i.test(accept)
}

/** True when the path's last segment ends in what looks like a file extension (`.js`, `.png`, `.map`). */
export function hasFileExtension(pathname: string): boolean {
  const last = pathname.slice(pathname.lastIndexOf('/') + 1)
  return /\.[A-Za-z0-9]{1,10}$/.test(last)
}

/**
 * Whether a request that found no file should get the SPA's `index.html`: a GET or HEAD
 * navigation to a deep link (`/orders/42`) that is not under bffgate's own endpoints or a
 * proxied route and does not look like an asset (a missing `/app.js` stays a 404, so a
 * broken deployment does not answer scripts with HTML).
 */
export function isHistoryFallback(
  method: string,
  pathname: string,
  headers: Headers,
  reservedPrefixes: readonly string[],
): boolean {
  if (method !== 'GET' && method !== 'HEAD') return false
  if (!isNavigation(headers) || hasFileExtension(pathname)) return false
  return !reservedPrefixes.some((prefix) => pathname === prefix || pathname.startsWith(`${prefix}/`))
}

/**
 * Whether a file name carries a content hash, as bundlers write them (`index-BXq3k9aF.js`,
 * `main.3f2a1b9c.css`): a last `-` or `.` part of at least 8 letters, digits or `_`, with a
 * digit and a letter among them, before the extension. A file named so changes its name
 * when it changes, so it can be cached for good. The rule errs towards "not hashed" (a
 * hash without a digit is missed and merely revalidated), never towards caching a file
 * whose content can change under the same name.
 */
export function isHashedAsset(fileName: string): boolean {
  const base = fileName.slice(fileName.lastIndexOf('/') + 1).replace(/\.(br|gz)$/, '')
  const hash = /[.-]([A-Za-z0-9_]{8,})\.[A-Za-z0-9]+$/.exec(base)?.[1]
  return hash !== undefined && /[0-9]/.test(hash) && /[A-Za-z]/.test(hash)
}

/** One year, the longest `max-age` caches honour in practice (RFC 9111 §5.2.2.1 suggests no more). */
const ONE_YEAR_SECONDS = 31_536_000

/**
 * `Cache-Control` of a static file: hashed assets for a year, immutable (browsers do not even
 * revalidate them on reload); everything else (`index.html` above all, which names the
 * current hashed assets) `no-cache`: stored, but revalidated (ETag) before every use.
 */
export function staticCacheControl(fileName: string): string {
  return isHashedAsset(fileName) && !/\.html?(\.(br|gz))?$/.test(fileName)
    ? `public, max-age=${ONE_YEAR_SECONDS}, immutable`
    : 'no-cache'
}
