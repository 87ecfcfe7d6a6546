/**
 * Where to send the browser after login: only a same-origin relative path. Anything else
 * (absolute URLs, protocol-relative `//host`, backslash tricks, control characters,
 * over-long values) falls back to `/`, so `/bff/login` can never become an open redirect.
 *
 * The input is checked, then resolved as a browser would (WHATWG URL: dot segments removed,
 * `\` read as `/`, tabs and newlines dropped), and the *result* is checked again: dot segments
 * can turn a harmless input into a protocol-relative path (`/.//evil.example` resolves to the
 * path `//evil.example`, which a browser reads as another host in `Location`). A result that
 * starts with `//` falls back to `/` too.
 */
export function safeReturnTo(value: unknown, publicOrigin: string, fallback = '/'): string {
  const path = safeReturnPath(value, publicOrigin)
  return path === undefined ? fallback : path
}

function safeReturnPath(value: unknown, publicOrigin: string): string | undefined {
  if (typeof value !== 'string' || value.length === 0 || value.length > 2048) return undefined
  if (!value.startsWith('/') || value.startsWith('//') || value.startsWith('/\\')) return undefined
  // Browsers strip tabs and newlines from URLs and treat `\` like `/`: refuse them outright.
  // oxlint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f\\]/.test(value)) return undefined
  let url: URL
  try {
    url = new URL(value, publicOrigin)
  } catch {
    return undefined
  }
  if (url.origin !== publicOrigin) return undefined
  const path = `${url.pathname}${url.search}${url.hash}`
  return isOriginRelativePath(path, publicOrigin) ? path : undefined
}

/**
 * True when `path` is a path-absolute reference (`/x`, never `//x` or `/\x`) that stays on
 * `origin` wherever it is resolved from on that origin: what a `Location` may safely carry.
 */
function isOriginRelativePath(path: string, origin: string): boolean {
  if (!path.startsWith('/') || path[1] === '/' || path[1] === '\\') return false
  try {
    return new URL(path, `${origin}/bff/callback`).origin === origin
  } catch {
    return false
  }
}
