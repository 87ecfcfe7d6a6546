import { readFileSync } from 'node:fs'
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { GatewayEvents, StoreOperationObserver } from './events.ts'
import { LabelledCounter, LabelledHistogram } from './labelled-metrics.ts'
import type { IdpRequestObserver } from './oidc/client.ts'

/** How a browser's login ended at `/bff/callback`; the label of `bff_logins_total`. */
export type LoginOutcome =
  | 'success'
  | 'state_invalid'
  | 'rejected'
  | 'idp_unreachable'
  | 'idp_response_invalid'
  | 'error'

export interface GatewayMetrics extends GatewayEvents {
  readonly registry: Registry
  /** The session store's operations on Redis (duration and outcome). */
  readonly storeOperation: StoreOperationObserver
  /**
   * One answered request. `route` is a bounded name (a configured route's path, a `/bff/*`
   * endpoint, a probe, or `unmatched`), never the raw URL.
   */
  httpRequest(route: string, method: string, statusCode: number, seconds: number, frontend: string): void
  /** An upstream's response headers arrived (or it failed: status 502/504) after `seconds`. */
  upstreamResponse(route: string, statusCode: number, seconds: number): void
  /** One HTTP call to the identity provider (discovery, token, PAR, JWKS ...). */
  readonly idpRequest: IdpRequestObserver
  /** A login finished at `/bff/callback`, one way or another. */
  login(outcome: LoginOutcome): void
  /** A request to a rate-limited endpoint was refused with 429. */
  rateLimited(route: string): void
  /** A request was refused with 503 because the event loop lagged (load shedding). */
  loadShed(): void
  /** An event sent to an open page on `GET /bff/session-events` (`reason` only for session-ended). */
  sessionEvent(event: 'session-ended' | 'session-expiring', reason: string | undefined): void
  /** Where `bff_session_event_streams` reads the number of open streams from, at each scrape. */
  countSessionStreams(count: () => number): void
}

/** This package's version, read once from its package.json (beside `src/` and `dist/`). */
export function packageVersion(): string {
  for (const path of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(path, import.meta.url), 'utf8')) as {
        name?: string
        version?: string
      }
      if (pkg.name === 'bffgate' && typeof pkg.version === 'string') return pkg.version
    } catch {}
  }
  return 'unknown'
}

/** `2xx` ... `5xx`: status classes keep label cardinality bounded. */
function statusClass(statusCode: number): string {
  return statusCode >= 100 && statusCode < 600 ? `${Math.floor(statusCode / 100)}xx` : 'other'
}

const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'])
const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]
const REDIS_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 2.5]
const IDP_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

/** Prometheus metrics (prom-client), in a registry of their own. Labels are bounded enums. */
export function createMetrics(): GatewayMetrics {
  const registry = new Registry()
  // Standard names (process_cpu_seconds_total, nodejs_heap_size_used_bytes ...), which stock
  // Node.js dashboards query; the job/instance labels tell bffgate's apart.
  collectDefaultMetrics({ register: registry })
  new Gauge({
    name: 'bff_build_info',
    help: 'Always 1; the labels name the running bffgate version and Node.js version.',
    labelNames: ['version', 'node_version'] as const,
    registers: [registry],
  }).set({ version: packageVersion(), node_version: process.versions.node }, 1)
  const idpDuration = new Histogram({
    name: 'bff_idp_request_duration_seconds',
    help: 'Time from sending a request to the identity provider to its response headers (or its failure), in seconds, by endpoint and outcome.',
    labelNames: ['endpoint', 'outcome'] as const,
    buckets: IDP_BUCKETS,
    registers: [registry],
  })
  const sessionEvents = new Counter({
    name: 'bff_session_events_total',
    help: 'Events sent on GET /bff/session-events streams, by event and (for session-ended) reason.',
    labelNames: ['event', 'reason'] as const,
    registers: [registry],
  })
  let openSessionStreams = (): number => 0
  registry.registerMetric(
    new Gauge({
      name: 'bff_session_event_streams',
      help: 'GET /bff/session-events streams open on this process.',
      registers: [],
      collect() {
        this.set(openSessionStreams())
      },
    }),
  )
  const rateLimited = new Counter({
    name: 'bff_rate_limited_total',
    help: 'Requests refused with 429 by the per-client-IP rate limits, by route.',
    labelNames: ['route'] as const,
    registers: [registry],
  })
  const loadShed = new Counter({
    name: 'bff_load_shed_total',
    help: 'Requests refused with 503 overloaded while the event loop lagged beyond BFF_MAX_EVENT_LOOP_DELAY_MS.',
    registers: [registry],
  })
  const logins = new Counter({
    name: 'bff_logins_total',
    help: 'Logins finished at /bff/callback, by outcome.',
    labelNames: ['outcome'] as const,
    registers: [registry],
  })
  const sessionsEnded = new Counter({
    name: 'bff_sessions_ended_total',
    help: 'Sessions ended by bffgate, by cause (invalid_grant, logout, expired, backchannel, security_event, global_revocation).',
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
  const lockWaits = new Counter({
    name: 'bff_refresh_lock_waits_total',
    help: "Refreshes that found the session's refresh lock held (by another replica or process) and waited for its result.",
    registers: [registry],
  })
  const joins = new Counter({
    name: 'bff_refresh_single_flight_joins_total',
    help: 'Requests that joined a refresh already running for their session in this process.',
    registers: [registry],
  })
  const backgroundRefreshes = new Counter({
    name: 'bff_refresh_background_total',
    help: 'Early refreshes started in the background of a request that went on with its still-valid access token.',
    registers: [registry],
  })
  const lockTakeovers = new Counter({
    name: 'bff_refresh_lock_takeovers_total',
    help: 'Refresh locks taken after waiting for a holder that left no result (it died, or lost Redis, and its lease lapsed).',
    registers: [registry],
  })
  const leasesLost = new Counter({
    name: 'bff_refresh_lock_leases_lost_total',
    help: 'Refreshes whose lock lease could not be renewed while exchanging (the result is then stored by compare-and-set on the refresh token).',
    registers: [registry],
  })
  const skewCapped = new Gauge({
    name: 'bff_refresh_skew_capped',
    help: '1 once the configured BFF_REFRESH_SKEW_SECONDS was found longer than a third of the access-token lifetime the IdP issues (the skew is capped to fit).',
    registers: [registry],
  })
  // The four metrics every request touches are our own, cheaper to observe (labelled-metrics.ts).
  const requests = new LabelledCounter({
    name: 'bff_http_requests_total',
    help: "Answered requests, by frontend (a configured frontend's name, or none: deployment-wide endpoints and requests no frontend answers), route (configured route path or bffgate endpoint), method and status class.",
    labelNames: ['frontend', 'route', 'method', 'status_class'] as const,
    registers: [registry],
  })
  const requestDuration = new LabelledHistogram({
    name: 'bff_http_request_duration_seconds',
    help: 'Time from request to response, in seconds, by frontend, route and status class.',
    labelNames: ['frontend', 'route', 'status_class'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  })
  const upstreamDuration = new LabelledHistogram({
    name: 'bff_upstream_duration_seconds',
    help: "Time from sending a proxied request to the upstream's response headers (or its failure), in seconds, by route and status class.",
    labelNames: ['route', 'status_class'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  })
  const redisDuration = new LabelledHistogram({
    name: 'bff_redis_operation_duration_seconds',
    help: 'Duration of session-store operations on Redis (each one or a few commands), in seconds, by operation and outcome.',
    labelNames: ['operation', 'outcome'] as const,
    buckets: REDIS_BUCKETS,
    registers: [registry],
  })
  const redisErrors = new Counter({
    name: 'bff_redis_errors_total',
    help: 'Session-store operations on Redis that failed (connection lost, timeout, error reply), by operation.',
    labelNames: ['operation'] as const,
    registers: [registry],
  })
  return {
    registry,
    sessionsEnded: (cause, count) => {
      if (count > 0) sessionsEnded.inc({ cause }, count)
    },
    tokenExchange: (outcome, reason) => exchanges.inc({ outcome, reason }),
    backchannelLogout: (outcome) => backchannel.inc({ outcome }),
    refreshLockWaited: () => lockWaits.inc(),
    refreshJoined: () => joins.inc(),
    backgroundRefreshStarted: () => backgroundRefreshes.inc(),
    refreshLockTakenOver: () => lockTakeovers.inc(),
    refreshLeaseLost: () => leasesLost.inc(),
    refreshSkewCapped: () => skewCapped.set(1),
    storeOperation(operation, seconds, outcome) {
      redisDuration.observe([operation, outcome], seconds)
      if (outcome === 'error') redisErrors.inc({ operation })
    },
    httpRequest(route, method, statusCode, seconds, frontend) {
      const status = statusClass(statusCode)
      requests.inc([frontend, route, KNOWN_METHODS.has(method) ? method : 'other', status])
      requestDuration.observe([frontend, route, status], seconds)
    },
    upstreamResponse(route, statusCode, seconds) {
      upstreamDuration.observe([route, statusClass(statusCode)], seconds)
    },
    idpRequest: (endpoint, outcome, seconds) => idpDuration.observe({ endpoint, outcome }, seconds),
    login: (outcome) => logins.inc({ outcome }),
    rateLimited: (route) => rateLimited.inc({ route }),
    sessionEvent: (event, reason) => sessionEvents.inc({ event, reason: reason ?? '' }),
    countSessionStreams: (count) => {
      openSessionStreams = count
    },
    loadShed: () => loadShed.inc(),
  }
}
