import { Counter, Registry, collectDefaultMetrics } from 'prom-client'
import type { GatewayEvents } from './events.ts'

export interface GatewayMetrics extends GatewayEvents {
  readonly registry: Registry
}

/** Prometheus metrics (prom-client), in a registry of their own. Labels are bounded enums. */
export function createMetrics (): GatewayMetrics {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, prefix: 'bff_process_' })
  const sessionsEnded = new Counter({
    name: 'bff_sessions_ended_total',
    help: 'Sessions ended by bffgate, by cause (invalid_grant, logout, expired, backchannel).',
    labelNames: ['cause'] as const,
    registers: [registry],
  })
  const exchanges = new Counter({
    name: 'bff_token_exchanges_total',
    help: 'Refresh-token exchanges at the token endpoint, by outcome and by why they were needed.',
    labelNames: ['outcome', 'reason'] as const,
    registers: [registry],
  })
  const backchannel = new Counter({
    name: 'bff_backchannel_logouts_total',
    help: 'Back-channel logout requests, by outcome.',
    labelNames: ['outcome'] as const,
    registers: [registry],
  })
  return {
    registry,
    sessionsEnded: (cause, count) => { if (count > 0) sessionsEnded.inc({ cause }, count) },
    tokenExchange: (outcome, reason) => exchanges.inc({ outcome, reason }),
    backchannelLogout: (outcome) => backchannel.inc({ outcome }),
  }
}
