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
export function privateForSharedCaches<Headers extends NodeJS.Dict<string | string[]>> (headers: Headers): Headers {
  // Every targeted field's name ends in `control` (checked first: this runs on every proxied answer).
  for (const name of Object.keys(headers)) if (name.endsWith('control') && TARGETED_CACHE_FIELD.test(name)) delete headers[name]
  const value = headers['cache-control']
  const directives = splitDirectives(Array.isArray(value) ? value.join(',') : value ?? '')
  const names = directives.map(directiveName)
  // `private` next to `public` or `s-maxage` contradicts itself: caches differ on which wins.
  const saysPrivate = directives.some((directive) => directive.toLowerCase() === 'private') && !names.includes('public') && !names.includes('s-maxage')
  const saysNoStore = names.includes('no-store') && !names.includes('must-understand')
  if (saysPrivate || saysNoStore) return headers
  Object.assign(headers, { 'cache-control': ['private', ...directives.filter((_, i) => !SHARED_ONLY.has(names[i]!))].join(', ') })
  return headers
}

const TARGETED_CACHE_FIELD = /^(?:[a-z0-9-]+-)?cdn-cache-control$|^surrogate-control$|^edge-control$/
/** Directives that are dropped or replaced once the answer is `private`. */
const SHARED_ONLY = new Set(['public', 'private', 's-maxage', 'proxy-revalidate'])

function directiveName (directive: string): string {
  const equals = directive.indexOf('=')
  return (equals === -1 ? directive : directive.slice(0, equals)).trim().toLowerCase()
}

/** The comma-separated directives, trimmed, commas inside quoted strings kept (`no-cache="a, b"`). */
function splitDirectives (value: string): string[] {
  const directives: string[] = []
  let start = 0
  let quoted = false
  for (let i = 0; i < value.length; i++) {
    const c = value[i]
    if (quoted && c === '\\') i++
    else if (c === '"') quoted = !quoted
    else if (c === ',' && !quoted) {
      directives.push(value.slice(start, i))
      start = i + 1
    }
  }
  directives.push(value.slice(start))
  return directives.map((d) => d.trim()).filter((d) => d !== '')
}
