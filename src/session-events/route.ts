import type { FastifyInstance } from 'fastify'
import { BffError } from '../errors.ts'
import { isSameOriginStream } from './messages.ts'
import type { SessionStreams } from './streams.ts'
import type { Config } from '../config/types.ts'
import type { RequestSessions } from '../http/request-session.ts'

/**
 * `GET /bff/session-events` (`text/event-stream`): stays open while the session lives and
 * tells the page, within a second and without polling, when it ends (`session-ended` with a
 * reason: logout in any tab or on any replica, back-channel logout, revocation found at a
 * refresh, idle or absolute expiry) and `BFF_SESSION_WARNING_SECONDS` before its absolute end
 * (`session-expiring`). Same-origin pages only; the cookie authenticates; never a token; it
 * does not slide the session (an open tab must not keep it alive).
 */
export function registerSessionEventsRoute(
  app: FastifyInstance,
  deps: {
    readonly config: Pick<Config, 'publicUrl'>
    /** The process's one registry of open streams (`BFF_SESSION_EVENTS_MAX_STREAMS` bounds them all). */
    readonly streams: SessionStreams
    readonly sessions: RequestSessions
    /** The frontend's path prefix (docs/frontends.md). */
    readonly pathPrefix: string
  },
): void {
  const { streams } = deps

  // No HEAD twin: a HEAD request would hold a stream open with no body to carry it.
  app.get(`${deps.pathPrefix}/bff/session-events`, { exposeHeadRoute: false }, async (request, reply) => {
    if (!isSameOriginStream(request.headers, deps.config.publicUrl)) {
      request.log.warn(
        { event: 'csrf.rejected', reason: 'session_events_origin' },
        'session-events stream from another origin refused',
      )
      throw new BffError('BFF_ERR_CSRF_ORIGIN_MISMATCH')
    }
    const session = await deps.sessions.find(request, { slide: false })
    if ('missing' in session) throw deps.sessions.missingError(request, reply, session)
    const refusal = streams.refusal(session)
    if (refusal === 'disabled') throw new BffError('BFF_ERR_NOT_FOUND')
    if (refusal === 'too_many') {
      request.log.warn({ event: 'session_events.refused', open: streams.size() }, 'too many session-event streams')
      throw new BffError('BFF_ERR_TOO_MANY_STREAMS')
    }
    // The stream is written straight to the socket: no hook may buffer or compress it.
    reply.hijack()
    streams.open(session, reply.raw)
  })
}
