import type { FastifyBaseLogger } from 'fastify'
import { setTimeout as sleep } from 'node:timers/promises'
import type { SessionHandle, SessionLock, SessionStore } from '../session/types.ts'
import { SetError, type SetErrorCode } from './security-event.ts'
import type { SetOutcome } from './set-processor.ts'

/** What the poller needs of a lock: the store's fenced lease (`SET NX PX`, renew and release only by its holder). */
type Lease = Pick<SessionStore, 'lock' | 'renewLock' | 'unlock'>

export interface SsfPollerOptions {
  readonly pollUrl: string
  readonly authorization: string
  readonly process: (token: string) => Promise<SetOutcome>
  readonly lease: Lease
  /** Full key name of the lease, shared by every replica. */
  readonly leaseKey: string
  readonly log: FastifyBaseLogger
  /** How long the transmitter may hold a poll open (RFC 8936 long polling), ms. */
  readonly requestTimeoutMs?: number
  /** Most SETs asked for per poll. */
  readonly maxEvents?: number
}

export interface SsfPoller {
  stop(): Promise<void>
}

/** Lease length: a replica that dies leaves the polling to another within this. */
const LEASE_MS = 10_000
/** Pause after a failed poll or when another replica holds the lease. */
const RETRY_MS = 1000

/** The RFC 8936 request body: acknowledgements and errors of the last batch. Pure. */
export function buildPollRequest(
  ack: readonly string[],
  setErrs: Readonly<Record<string, { err: SetErrorCode; description: string }>>,
  maxEvents: number,
  returnImmediately: boolean,
): Record<string, unknown> {
  return {
    ack,
    ...(Object.keys(setErrs).length > 0 && { setErrs }),
    maxEvents,
    returnImmediately,
  }
}

/** The SETs of an RFC 8936 poll response (`{"sets": {jti: SET}, "moreAvailable"}`); throws on another shape. Pure. */
export function readPollResponse(body: unknown): { sets: Array<[string, string]>; moreAvailable: boolean } {
  if (body === null || typeof body !== 'object' || Array.isArray(body))
    throw new TypeError('poll response is not a JSON object')
  const { sets, moreAvailable } = body as { sets?: unknown; moreAvailable?: unknown }
  if (sets === null || typeof sets !== 'object' || Array.isArray(sets))
    throw new TypeError('poll response has no "sets" object')
  const entries = Object.entries(sets as Record<string, unknown>).filter(
    (entry): entry is [string, string] => typeof entry[1] === 'string',
  )
  return { sets: entries, moreAvailable: moreAvailable === true }
}

/**
 * Poll delivery (RFC 8936): one replica at a time, the holder of a lease in the shared store,
 * long-polls the transmitter, carries out each SET, and acknowledges it in its next request
 * (`ack`), or reports it in `setErrs` with RFC 8935's error code when it fails validation. A
 * SET whose processing hit a store outage is neither acknowledged nor reported: the
 * transmitter delivers it again. A SET already processed (its `jti` claimed, e.g. by a holder
 * that died before acknowledging) is acknowledged without being carried out again.
 */
export function startSsfPoller(options: SsfPollerOptions): SsfPoller {
  const { log } = options
  const stopping = new AbortController()
  const requestTimeoutMs = options.requestTimeoutMs ?? 30_000
  const maxEvents = options.maxEvents ?? 25
  // The store's lock needs only a lock key; the lease has no session record.
  const leaseHandle = { storageKey: options.leaseKey, lockKey: options.leaseKey } as unknown as SessionHandle

  const pollWhileHolding = async (lease: SessionLock): Promise<void> => {
    // Renewed in the background (a long poll outlasts a third of the lease); lost means stop.
    const state = { held: true }
    const renewal = setInterval(() => {
      options.lease.renewLock(lease, LEASE_MS).then(
        (ok) => {
          if (!ok) state.held = false
        },
        () => {
          state.held = false
        },
      )
    }, LEASE_MS / 3)
    let ack: string[] = []
    let setErrs: Record<string, { err: SetErrorCode; description: string }> = {}
    let returnImmediately = false
    try {
      while (state.held && !stopping.signal.aborted) {
        const response = await fetch(options.pollUrl, {
          method: 'POST',
          headers: {
            authorization: options.authorization,
            'content-type': 'application/json',
            accept: 'application/json',
          },
          body: JSON.stringify(buildPollRequest(ack, setErrs, maxEvents, returnImmediately)),
          signal: AbortSignal.any([stopping.signal, AbortSignal.timeout(requestTimeoutMs + 5000)]),
        })
        if (!response.ok) throw new Error(`poll endpoint answered ${response.status}`)
        // Delivered: the transmitter has them now.
        ack = []
        setErrs = {}
        const { sets, moreAvailable } = readPollResponse(await response.json())
        for (const [jti, token] of sets) {
          try {
            const outcome = await options.process(token)
            ack.push(jti)
            if (outcome.kind === 'replayed')
              log.info(
                { event: 'ssf.replayed', jti: jti.slice(0, 100) },
                'security event already processed; acknowledged again',
              )
          } catch (err) {
            if (!(err instanceof SetError)) throw err
            setErrs[jti] = { err: err.err, description: err.description }
            log.warn({ event: 'ssf.rejected', err: err.err, reason: err.description }, 'polled security event refused')
          }
        }
        // Acknowledge at once when there is more, or something to acknowledge; else wait for events.
        returnImmediately = moreAvailable || ack.length > 0 || Object.keys(setErrs).length > 0
      }
    } finally {
      clearInterval(renewal)
      await options.lease.unlock(lease).catch(() => {})
    }
  }

  const run = async (): Promise<void> => {
    while (!stopping.signal.aborted) {
      try {
        const lease = await options.lease.lock(leaseHandle, LEASE_MS)
        if (lease === undefined) {
          await sleep(RETRY_MS, undefined, { signal: stopping.signal })
          continue
        }
        log.debug({ event: 'ssf.poll_lease' }, 'this replica polls the SSF transmitter')
        await pollWhileHolding(lease)
      } catch (err) {
        if (stopping.signal.aborted) break
        log.warn(
          { event: 'ssf.poll_failed', reason: (err as Error).message },
          'polling the SSF transmitter failed; retrying',
        )
        await sleep(RETRY_MS, undefined, { signal: stopping.signal }).catch(() => {})
      }
    }
  }
  const running = run().catch(() => {})
  return {
    async stop() {
      stopping.abort()
      await running
    },
  }
}
