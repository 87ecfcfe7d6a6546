/** Why sessions end; the label of `bff_sessions_ended_total`. */
export type TeardownCause =
  | 'invalid_grant'
  | 'logout'
  | 'expired'
  | 'backchannel'
  | 'security_event'
  | 'global_revocation'

/** Outcomes of a refresh-token exchange at the token endpoint. */
export type ExchangeOutcome = 'success' | 'invalid_grant' | 'transient' | 'rejected'

/** Told the duration in seconds and outcome of one session-store operation (`read`, `write` ...). */
export type StoreOperationObserver = (operation: string, seconds: number, outcome: 'ok' | 'error') => void

/**
 * What the core reports as it works. The core depends on this interface only, never on
 * prom-client; `metrics.ts` counts the events, tests may record them.
 */
export interface GatewayEvents {
  sessionsEnded(cause: TeardownCause, count: number): void
  tokenExchange(outcome: ExchangeOutcome, reason: string): void
  backchannelLogout(outcome: 'accepted' | 'rejected' | 'failed'): void
  /** A refresh found another replica (or process) holding the session's lock and waited for its result. */
  refreshLockWaited(): void
  /** A request joined a refresh already running for its session in this process instead of starting one. */
  refreshJoined(): void
  /** An early refresh started in the background of a request that went on with its still-valid token. */
  backgroundRefreshStarted(): void
  /** A refresh took a session's lock after waiting for a holder that left no result (it died, or lost Redis). */
  refreshLockTakenOver(): void
  /** A refresh lost its lock's lease while exchanging (its result is then stored by compare-and-set). */
  refreshLeaseLost(): void
  /** The configured refresh skew is longer than a share of the tokens the IdP issues, so it was capped (reported once per process). */
  refreshSkewCapped(configuredSeconds: number, issuedLifetimeSeconds: number): void
}

/** Reports nothing (tests of the core that do not look at events). */
export const noEvents: GatewayEvents = {
  sessionsEnded() {},
  tokenExchange() {},
  backchannelLogout() {},
  refreshLockWaited() {},
  refreshJoined() {},
  backgroundRefreshStarted() {},
  refreshLockTakenOver() {},
  refreshLeaseLost() {},
  refreshSkewCapped() {},
}
