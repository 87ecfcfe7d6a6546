import type { FastifyServerOptions } from 'fastify'

/**
 * pino options: JSON lines, secrets redacted. Request URLs are logged without their query
 * string, which can carry an authorization code, state or anything an SPA put there.
 */
export function loggerOptions (level: string): NonNullable<FastifyServerOptions['logger']> {
  return {
    level,
    redact: {
      paths: [
        'req.headers.cookie',
        'req.headers.authorization',
        'res.headers["set-cookie"]',
        '*.access_token',
        '*.refresh_token',
        '*.id_token',
        '*.code',
        '*.client_secret',
      ],
      censor: '[redacted]',
    },
    serializers: {
      req (request: { method: string; url: string; id: string; ip?: string }) {
        const question = request.url.indexOf('?')
        return { id: request.id, method: request.method, url: question === -1 ? request.url : request.url.slice(0, question) }
      },
    },
  }
}
