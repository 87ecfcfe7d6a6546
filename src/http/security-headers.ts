import type { FastifyInstance } from 'fastify'

/**
 * Security headers on every response bffgate sends (its own endpoints, static files, error
 * answers), and on proxied answers where the upstream set none of its own:
 * HSTS when served over https, no MIME sniffing, no framing (clickjacking), no referrer
 * leaking paths to other sites. `/bff/*` answers are never cached: they carry user data or
 * one-time redirects.
 */
export function registerSecurityHeaders(
  app: FastifyInstance,
  options: {
    readonly publicUrl: string
    /** Where bffgate's own endpoints are, e.g. `/bff/` (a frontend's prefix before it): never cached. */
    readonly bffPrefixes: readonly string[]
  },
): void {
  const { bffPrefixes } = options
  const isOwnEndpoint =
    bffPrefixes.length === 1
      ? (url: string) => url.startsWith(bffPrefixes[0]!)
      : (url: string) => bffPrefixes.some((prefix) => url.startsWith(prefix))
  const https = options.publicUrl.startsWith('https:')
  const defaults: Array<[string, string]> = [
    ['x-content-type-options', 'nosniff'],
    ['x-frame-options', 'DENY'],
    ['content-security-policy', "frame-ancestors 'none'"],
    ['referrer-policy', 'no-referrer'],
    ['cross-origin-opener-policy', 'same-origin'],
  ]
  if (https) defaults.push(['strict-transport-security', 'max-age=31536000; includeSubDomains'])

  app.addHook('onSend', (request, reply, payload, done) => {
    for (const [name, value] of defaults) if (!reply.hasHeader(name)) reply.header(name, value)
    if (isOwnEndpoint(request.url)) reply.header('cache-control', 'no-store')
    done(null, payload)
  })
}
