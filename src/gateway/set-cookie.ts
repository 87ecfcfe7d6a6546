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
export function setCookieName (line: string): string {
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

function trim (text: string): string {
  return text.replace(EDGE_SPACE, '')
}
