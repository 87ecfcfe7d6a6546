/**
 * The pure parts of `GET /bff/session-events` (server-sent events telling a page that its
 * session ended or is about to): who may open a stream, what an event looks like on the
 * wire, and when the stream must look at its session again. No I/O.
 */
import type { SessionEndReason } from '../session/end-reason.ts'

/**
 * An `EventSource` cannot send the `x-csrf` header, so the stream relies on the browser's own
 * signals, as a route with `"csrf": "same-origin"` does (http/csrf-policy.ts): `Sec-Fetch-Site`
 * must say same-origin (not even same-site: only the app's own pages listen), or, from a
 * browser without Fetch Metadata, `Origin` must be bffgate's. A request with neither signal is
 * refused (fails closed). A present `Origin` must be bffgate's in any case. The
 * `SameSite=Strict` cookie is the authentication; a cross-site page could not read the stream
 * anyway (no CORS).
 */
export function isSameOriginStream(
  headers: Readonly<Record<string, string | string[] | undefined>>,
  publicOrigin: string,
): boolean {
  const origin = headers.origin
  if (origin !== undefined && origin !== publicOrigin) return false
  const site = headers['sec-fetch-site']
  return site === undefined ? origin === publicOrigin : site === 'same-origin'
}

/** One server-sent event: `event: <name>` and one line of JSON (never a token). */
function formatEvent(name: 'session-ended' | 'session-expiring', data: object): string {
  return `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`
}

/** What a page is told when its session has ended. */
export function sessionEndedEvent(reason: SessionEndReason): string {
  return formatEvent('session-ended', { reason })
}

/** What a page is told `warningSeconds` before the absolute end. Times are epoch seconds. */
export function sessionExpiringEvent(absoluteExpiresAt: number, nowMs: number): string {
  return formatEvent('session-expiring', {
    absoluteExpiresAt,
    secondsLeft: Math.max(0, Math.round(absoluteExpiresAt - nowMs / 1000)),
  })
}

/** Longest a stream goes without re-reading its session (catches an announcement Redis lost). */
export const RECHECK_MAX_MS = 60_000
/** Shortest wait between two reads of the session, so a deadline rounding never spins. */
export const RECHECK_MIN_MS = 200

/** What a stream knows of its session after a read. Times are epoch milliseconds. */
export interface StreamDeadlines {
  /** When the session ends without activity: the earlier of the idle and absolute deadlines. */
  readonly endsAtMs: number
  readonly absoluteEndsAtMs: number
  /** When to send `session-expiring`; undefined: never (off, or already sent). */
  readonly warnAtMs?: number
}

/** When the stream should next read its session: at the next deadline, but at least once a minute. */
export function nextCheckDelayMs(deadlines: StreamDeadlines, nowMs: number): number {
  const due = Math.min(deadlines.endsAtMs, deadlines.warnAtMs ?? Infinity)
  return Math.min(RECHECK_MAX_MS, Math.max(RECHECK_MIN_MS, due - nowMs))
}

/**
 * Why a session a stream watched is gone when nobody announced its end: its absolute or idle
 * deadline passed (Redis expires keys silently), or something this replica did not hear.
 */
export function silentEndReason(deadlines: StreamDeadlines, nowMs: number): SessionEndReason {
  // A deadline is met within a small tolerance: Redis and this timer measure time apart.
  const TOLERANCE_MS = 1000
  if (nowMs + TOLERANCE_MS >= deadlines.absoluteEndsAtMs) return 'absolute_timeout'
  if (nowMs + TOLERANCE_MS >= deadlines.endsAtMs) return 'idle_timeout'
  return 'ended'
}
