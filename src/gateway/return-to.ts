/**
 * Where to send the browser after login: only a same-origin relative path. Anything else
 * (absolute URLs, protocol-relative `//host`, backslash tricks, control characters,
 * over-long values) falls back to `/`, so `/bff/login` can never become an open redirect.
 */
export function safeReturnTo (value: unknown, publicOrigin: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > 2048) return '/'
  if (!value.startsWith('/') || value.startsWith('//') || value.startsWith('/\\')) return '/'
  // Browsers strip tabs and newlines from URLs and treat `\` like `/`: refuse them outright.
  // oxlint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f\\]/.test(value)) return '/'
  let url: URL
  try {
    url = new URL(value, publicOrigin)
  } catch {
    return '/'
  }
  if (url.origin !== publicOrigin) return '/'
  return `${url.pathname}${url.search}${url.hash}`
}
