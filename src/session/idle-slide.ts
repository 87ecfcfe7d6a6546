/** The longest a session's idle deadline goes unmoved while it is in use. */
export const MAX_SLIDE_INTERVAL_MS = 15 * 60_000

/**
 * How often activity moves a session's idle deadline: a hundredth of the idle timeout, at
 * least a second and at most {@link MAX_SLIDE_INTERVAL_MS}. A slide is a write, a second Redis
 * round trip for the request that makes it, so a session in use slides once per interval, not
 * per request; in exchange it may end up to one interval before the idle deadline its last
 * request would have given it (at most 1 % of the idle timeout: 15 minutes of the 3-day
 * default). Pure.
 */
export function slideIntervalMs(idleMs: number): number {
  return Math.min(MAX_SLIDE_INTERVAL_MS, Math.max(1000, idleMs / 100))
}
