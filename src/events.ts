/** Why sessions end; the label of `bff_sessions_ended_total`. */
export type TeardownCause = 'invalid_grant' | 'logout' | 'expired' | 'backchannel'

/** Outcomes of a refresh-token exchange at the token endpoint. */
export type ExchangeOutcome = 'success' | 'invalid_grant' | 'transient' | 'rejected'

/** Told the duration in seconds and outcome of one session-store operation (`read`, `write` ...). */
export type StoreOperationObserver = (operation: string, seconds: number, outcome: 'ok' | 'error') => void

/**
 * What the core reports as it works. The core depends on this interface only, never on
 * prom-client; `metrics.ts` counts the events, tests may record them.
 */
export interface GatewayEvents {
  sessionsEnded (cause: TeardownCause, count: number): void
  tokenExchange (outcome: ExchangeOutcome, reason: string): void
  backchannelLogout (outcome: 'accepted' | 'rejected' | 'failed'): void
  /** A refresh found another replica (or process) holding the session's lock and waited for its result. */
  refreshLockWaited (): void
  /** A request joined a refresh already running for its session in this process instead of starting one. */
  refreshJoined (): void
}

/** Reports nothing (tests of the core that do not look at events). */
export const noEvents: GatewayEvents = {
  sessionsEnded () {},
  tokenExchange () {},
  backchannelLogout () {},
  refreshLockWaited () {},
  refreshJoined () {},
}
