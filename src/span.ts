import { SpanStatusCode, trace, type Tracer } from '@opentelemetry/api'

/**
 * The light half of tracing, safe to import anywhere: whether the standard `OTEL_*`
 * variables turn tracing on, and a helper to run work in a span. The SDK (`tracing.ts`) is
 * loaded only when tracing is on.
 */

export type Env = Readonly<Record<string, string | undefined>>

/** The OTLP/HTTP traces URL the standard variables name, or undefined when tracing is off. */
export function tracesEndpoint(env: Env): string | undefined {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return undefined
  const exporter = env.OTEL_TRACES_EXPORTER?.trim().toLowerCase()
  if (exporter !== undefined && exporter !== '' && exporter !== 'otlp') return undefined
  const traces = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim()
  if (traces) return traces
  const base = env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim()
  return base ? `${base.replace(/\/+$/, '')}/v1/traces` : undefined
}

/** Runs `work` in a span named `name` (a child of the active one), ending it when `work` settles. */
export async function inSpan<T>(
  tracer: Tracer,
  name: string,
  attributes: Record<string, string>,
  work: () => Promise<T>,
): Promise<T> {
  return tracer.startActiveSpan(name, { attributes }, async (span) => {
    try {
      return await work()
    } catch (err) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).name })
      throw err
    } finally {
      span.end()
    }
  })
}

/** Names the active server span after the route fastify matched (`GET /api/*`), once it is known. */
export function nameServerSpan(method: string, route: string | undefined): void {
  const span = trace.getActiveSpan()
  if (span === undefined || route === undefined) return
  span.updateName(`${method} ${route}`)
  span.setAttribute('http.route', route)
}
