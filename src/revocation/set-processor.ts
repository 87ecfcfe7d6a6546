import type { FastifyBaseLogger } from 'fastify'
import type { SessionEnding } from '../session/ending.ts'
import type { SessionStore } from '../session/types.ts'
import { endSessionsOf } from './end-sessions.ts'
import { interpretSet, SetError, type VerifiedSet } from './security-event.ts'
import type { SubjectContext } from './subject.ts'
import { carryOutClaimed } from '../session/claim.ts'

/** What became of one SET. */
export type SetOutcome =
  | { readonly kind: 'processed'; readonly ended: number }
  /** Its `jti` was processed before: nothing was done again. */
  | { readonly kind: 'replayed' }

export interface SetProcessorOptions {
  readonly verify: (token: string) => Promise<VerifiedSet>
  readonly store: SessionStore
  readonly oidcIssuer: string
  /** The frontends whose sessions are indexed under `oidcIssuer` (every one of that issuer ends); absent: the one frontend. */
  readonly frontends?: readonly string[]
  readonly subjects: SubjectContext
  /** The transmitter's `critical_subject_members` (SSF configuration); none when absent. */
  readonly criticalMembers?: () => Promise<readonly string[]>
  readonly ending: SessionEnding
  readonly log: FastifyBaseLogger
}

/** Namespace of remembered SET ids in the store's one-time markers. */
const JTI_NAMESPACE = 'set-jti'

/**
 * Verifies a SET and carries out its events; the same for push and poll delivery. Throws
 * {@link SetError} for a SET to refuse (nothing ended). The `jti` is claimed atomically
 * (SET NX) before anything ends, so a SET pushed several times at once is carried out once
 * (the others are `replayed`); ending sessions twice would be harmless (idempotent), but it
 * would log and count the event twice. A store failure propagates with the claim dropped
 * again: the SET is then not acknowledged, and the transmitter's redelivery is carried out.
 */
export function createSetProcessor(options: SetProcessorOptions): (token: string) => Promise<SetOutcome> {
  const { store, log } = options
  return async (token) => {
    const set = await options.verify(token)
    const criticalMembers = options.criticalMembers === undefined ? [] : await options.criticalMembers()
    const actions = interpretSet(set, { ...options.subjects, criticalMembers })
    const replayKey = `${set.iss}\u0000${set.jti}`
    const claim = await store.claim(JTI_NAMESPACE, replayKey, set.rememberSeconds)
    if (claim === undefined) return { kind: 'replayed' }
    const ended = await carryOutClaimed(
      claim,
      async () => carryOut(set, actions),
      (releaseErr) =>
        log.warn(
          { event: 'ssf.release_failed', jti: set.jti, err: releaseErr },
          "the SET's claim could not be dropped; its redelivery will be taken for a replay",
        ),
    )
    return { kind: 'processed', ended }
  }

  async function carryOut(set: VerifiedSet, actions: ReturnType<typeof interpretSet>): Promise<number> {
    let ended = 0
    for (const action of actions) {
      if (action.kind === 'verification') {
        log.info({ event: 'ssf.verification', jti: set.jti }, 'SSF verification event received')
      } else if (action.kind === 'ignore') {
        log.debug(
          { event: 'ssf.event_ignored', type: action.event.slice(0, 200), reason: action.reason },
          'security event ignored',
        )
      } else if (action.target.kind === 'unmappable' || action.target.kind === 'foreign') {
        log.info(
          { event: 'ssf.subject_ignored', type: action.event, reason: action.target.reason },
          'security event names no subject bffgate can map; nothing ended',
        )
      } else {
        log.debug(
          { event: 'ssf.event', type: action.event, by: action.target.kind === 'session' ? 'sid' : 'sub' },
          'security event names sessions to end',
        )
        ended += await endSessionsOf(
          options.ending,
          options.oidcIssuer,
          action.target,
          'security_event',
          log,
          options.frontends,
        )
      }
    }
    return ended
  }
}

export { SetError }
