import { normalizeHost } from '../config/host.ts'
import type { FrontendConfig } from '../config/types.ts'
import { hasDotSegment } from '../proxy/dot-segments.ts'

/**
 * Which frontend a request is for (docs/frontends.md): the one whose hosts hold the request's
 * host and whose path prefix starts the path at a segment boundary (`/app` takes `/app` and
 * `/app/x`, never `/apple`). Pure.
 *
 * `host` is the host fastify reports (`request.host`: the `Host` header, or the last
 * `X-Forwarded-Host` entry when the peer is a trusted proxy, `BFF_TRUSTED_PROXIES`), read by
 * {@link normalizeHost}: port and one trailing dot dropped, case folded; a malformed host
 * matches only a frontend that answers every host. `path` is the request target (a query is
 * cut off). A path that some server on the way could read as another one gives `undefined`:
 * any dot segment in any of its forms ({@link hasDotSegment}: `..`, `%2e%2e`, `..;`, `%252e` ...).
 * Percent-encoded unreserved characters are read as what they encode (`/%61pp` is `/app`, RFC
 * 3986 §6.2.2.2), as routers do; an encoded slash (`%2F`) is no segment boundary. When no
 * frontend, or (never with a configuration loadConfig accepted) more than one, matches: `undefined`.
 */
export function selectFrontend<F extends Pick<FrontendConfig, 'hosts' | 'pathPrefix'>>(
  frontends: readonly F[],
  host: string | undefined,
  path: string,
): F | undefined {
  const target = path.split(/[?#]/, 1)[0]!
  if (!target.startsWith('/') || hasDotSegment(target)) return undefined
  const normalHost = normalizeHost(host)
  const normalPath = decodeUnreserved(target)
  let found: F | undefined
  for (const frontend of frontends) {
    if (frontend.hosts !== undefined && (normalHost === undefined || !frontend.hosts.includes(normalHost))) continue
    const prefix = frontend.pathPrefix
    if (prefix !== '' && normalPath !== prefix && !normalPath.startsWith(`${prefix}/`)) continue
    if (found !== undefined) return undefined
    found = frontend
  }
  return found
}

/** `%XX` of an unreserved character (letters, digits, `-._~`) decoded; every other escape kept as written. */
function decodeUnreserved(path: string): string {
  return path.includes('%')
    ? path.replace(/%([0-9a-fA-F]{2})/g, (escape, hex: string) => {
        const char = String.fromCharCode(Number.parseInt(hex, 16))
        return /^[A-Za-z0-9._~-]$/.test(char) ? char : escape
      })
    : path
}
