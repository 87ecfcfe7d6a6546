import type { FastifyBaseLogger } from 'fastify'
import type { SessionEnding } from '../session/ending.ts'
import type { SessionStore } from '../session/types.ts'
import { endSessionsOf } from './end-sessions.ts'
import { interpretSet, SetError, type VerifiedSet } from './security-event.ts'
import type { SubjectContext } from './subject.ts'

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
 * {@link SetError} for a SET to refuse (nothing ended). A store failure propagates: the SET is
 * then neither claimed nor acknowledged, so the transmitter delivers it again. As with
 * back-channel logout, the `jti` is checked before anything ends but claimed only after the
 * sessions are gone.
 */
export function createSetProcessor (options: SetProcessorOptions): (token: string) => Promise<SetOutcome> {
  const { store, log } = options
  return async (token) => {
    const set = await options.verify(token)
    const criticalMembers = options.criticalMembers === undefined ? [] : await options.criticalMembers()
    const actions = interpretSet(set, { ...options.subjects, criticalMembers })
    const replayKey = `${set.iss}\u0000${set.jti}`
    if (await store.isClaimed(JTI_NAMESPACE, replayKey)) return { kind: 'replayed' }
    let ended = 0
    for (const action of actions) {
      if (action.kind === 'verification') {
        log.info({ event: 'ssf.verification', jti: set.jti }, 'SSF verification event received')
      } else if (action.kind === 'ignore') {
        log.debug({ event: 'ssf.event_ignored', type: action.event.slice(0, 200), reason: action.reason }, 'security event ignored')
      } else if (action.target.kind === 'unmappable' || action.target.kind === 'foreign') {
        log.info({ event: 'ssf.subject_ignored', type: action.event, reason: action.target.reason }, 'security event names no subject bffgate can map; nothing ended')
      } else {
        log.debug({ event: 'ssf.event', type: action.event, by: action.target.kind === 'session' ? 'sid' : 'sub' }, 'security event names sessions to end')
        ended += await endSessionsOf(options.ending, options.oidcIssuer, action.target, 'security_event', log, options.frontends)
      }
    }
    await store.claimOnce(JTI_NAMESPACE, replayKey, set.rememberSeconds)
    return { kind: 'processed', ended }
  }
}

export { SetError }
