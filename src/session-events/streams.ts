import type { ServerResponse } from 'node:http'
import type { SessionEventsConfig } from '../config/types.ts'
import {
  nextCheckDelayMs,
  sessionEndedEvent,
  sessionExpiringEvent,
  silentEndReason,
  type StreamDeadlines,
} from './messages.ts'
import type { SessionEndReason } from '../session/end-reason.ts'
import type { LoadedSession, SessionStore } from '../session/types.ts'

/** Reconnection delay the stream asks `EventSource` for, in ms (after a replica restarts). */
const RETRY_MS = 3000
/** After a failed read of the session (Redis away), look again this much later; the stream stays. */
const STORE_RETRY_MS = 5000

interface Stream {
  readonly key: string
  session: LoadedSession
  readonly res: ServerResponse
  deadlines: StreamDeadlines
  timer?: NodeJS.Timeout
  heartbeat?: NodeJS.Timeout
  done: boolean
}

export interface SessionStreamsLog {
  info(obj: object, msg: string): void
  warn(obj: object, msg: string): void
}

/** Told every event a stream sends (metrics). */
export type SessionStreamObserver = (event: 'session-ended' | 'session-expiring', reason?: SessionEndReason) => void

/**
 * The `GET /bff/session-events` streams this replica holds, by session. A session ended
 * anywhere (the store announces it over Redis pub/sub with its reason) ends its streams here
 * with `session-ended`; a session that simply expires (Redis says nothing) is caught by each
 * stream's own timer at the deadline it knows, re-checked against the store. Reads never
 * slide the session and never exchange a token: an open page must not keep a session alive.
 */
export function createSessionStreams(
  store: SessionStore,
  config: SessionEventsConfig,
  log: SessionStreamsLog,
  observe: SessionStreamObserver = () => {},
  clock: () => number = Date.now,
) {
  const bySession = new Map<string, Set<Stream>>()
  let count = 0
  /** Whether the last re-read failed: an outage is logged once, not once per stream. */
  let storeDown = false

  const deadlinesOf = (session: LoadedSession, nowMs: number, warned: boolean): StreamDeadlines => {
    const absoluteEndsAtMs = session.record.absolute_expires_at * 1000
    const warnAtMs = absoluteEndsAtMs - config.warningSeconds * 1000
    return {
      endsAtMs: nowMs + (session.expiresInMs ?? session.expiresIn * 1000),
      absoluteEndsAtMs,
      ...(config.warningSeconds > 0 && !warned && { warnAtMs }),
    }
  }

  const remove = (stream: Stream): void => {
    if (stream.done) return
    stream.done = true
    clearTimeout(stream.timer)
    clearInterval(stream.heartbeat)
    const set = bySession.get(stream.key)
    if (set?.delete(stream) === true) {
      count--
      if (set.size === 0) bySession.delete(stream.key)
    }
  }

  const end = (stream: Stream, reason: SessionEndReason): void => {
    if (stream.done) return
    stream.res.end(sessionEndedEvent(reason))
    observe('session-ended', reason)
    log.info({ event: 'session_events.ended', reason }, 'told a page its session ended')
    remove(stream)
  }

  const schedule = (stream: Stream, delayMs: number): void => {
    clearTimeout(stream.timer)
    stream.timer = setTimeout(() => {
      check(stream)
    }, delayMs)
  }

  /** Sends the warning when it is due, then waits for the next deadline. */
  const plan = (stream: Stream): void => {
    const now = clock()
    const { warnAtMs } = stream.deadlines
    if (warnAtMs !== undefined && warnAtMs <= now) {
      stream.res.write(sessionExpiringEvent(stream.session.record.absolute_expires_at, now))
      observe('session-expiring')
      const { warnAtMs: _sent, ...rest } = stream.deadlines
      stream.deadlines = rest
    }
    schedule(stream, nextCheckDelayMs(stream.deadlines, now))
  }

  const check = (stream: Stream): void => {
    store.reload(stream.session.handle).then(
      (current) => {
        storeDown = false
        if (stream.done) return
        if (current === undefined) return end(stream, silentEndReason(stream.deadlines, clock()))
        const warned = stream.deadlines.warnAtMs === undefined && config.warningSeconds > 0
        // The IdP may have lowered the absolute end since (session_expiry in a refreshed ID token).
        const lowered = current.record.absolute_expires_at < stream.session.record.absolute_expires_at
        stream.session = current
        stream.deadlines = deadlinesOf(current, clock(), warned && !lowered)
        plan(stream)
      },
      (err: unknown) => {
        if (stream.done) return
        if (!storeDown)
          log.warn(
            { event: 'session_events.store_unavailable', err },
            'could not re-read a streamed session; the streams stay open and try again',
          )
        storeDown = true
        // Jittered, so that thousands of streams do not come back at once.
        schedule(stream, STORE_RETRY_MS + Math.floor(Math.random() * STORE_RETRY_MS))
      },
    )
  }

  store.onSessionsEnded((keys, reason) => {
    for (const key of keys) {
      const streams = bySession.get(key)
      if (streams === undefined) continue
      for (const stream of [...streams]) end(stream, reason)
    }
  })

  return {
    /** Why a new stream for this session cannot be opened now, if it cannot. */
    refusal(session: LoadedSession): 'disabled' | 'too_many' | undefined {
      if (config.maxStreams === 0) return 'disabled'
      if (count >= config.maxStreams) return 'too_many'
      if ((bySession.get(session.handle.storageKey)?.size ?? 0) >= config.maxPerSession) return 'too_many'
      return undefined
    },

    /**
     * Answers `res` with the event stream of `session` (the caller checked {@link refusal}).
     * Registered before the head is written: once the page sees the stream open, an end is heard.
     */
    open(session: LoadedSession, res: ServerResponse): void {
      const key = session.handle.storageKey
      const stream: Stream = { key, session, res, deadlines: deadlinesOf(session, clock(), false), done: false }
      const set = bySession.get(key) ?? new Set<Stream>()
      set.add(stream)
      bySession.set(key, set)
      count++
      res.once('close', () => remove(stream))
      res.on('error', () => remove(stream))
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        'x-content-type-options': 'nosniff',
        // nginx and others buffer responses unless told not to.
        'x-accel-buffering': 'no',
      })
      res.write(`retry: ${RETRY_MS}\n\n`)
      stream.heartbeat = setInterval(() => res.write(': heartbeat\n\n'), config.heartbeatSeconds * 1000)
      plan(stream)
    },

    /** Streams open on this replica. */
    size: () => count,

    /** Ends every stream without an event (shutdown): the pages reconnect to another replica. */
    close(): void {
      for (const set of [...bySession.values()]) {
        for (const stream of [...set]) {
          stream.res.end()
          remove(stream)
        }
      }
    },
  }
}

export type SessionStreams = ReturnType<typeof createSessionStreams>
