import {
  SpanKind,
  SpanStatusCode,
  ROOT_CONTEXT,
  context,
  propagation,
  trace,
  type Span,
  type Tracer,
} from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { W3CTraceContextPropagator } from '@opentelemetry/core'
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http'
import { detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources'
import { BatchSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace'
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { BlockList, isIPv6 } from 'node:net'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { tracesEndpoint, type Env } from './span.ts'

/**
 * OpenTelemetry traces, off unless an OTLP endpoint is configured by the standard variables
 * (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT`; `OTEL_SDK_DISABLED`,
 * `OTEL_TRACES_EXPORTER=none` turn it off; `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`,
 * `OTEL_EXPORTER_OTLP_HEADERS` as usual). When off, nothing here is loaded into the request
 * path: no hooks, no wrappers, no diagnostics-channel subscribers.
 *
 * Spans: the browser request (server), the session read, each call to the IdP (by endpoint),
 * and every outgoing HTTP request (client: the upstream hop and the IdP's wire call), which
 * carries a W3C `traceparent`. Attributes hold methods, routes, paths without their query,
 * hosts and status codes: never a header, cookie or token.
 */
export interface Tracing {
  readonly tracer: Tracer
  /** Runs `handler` for one browser request inside its server span. */
  serveRequest(request: IncomingMessage, response: ServerResponse, handler: () => void): void
  /** Flushes and stops the exporter. */
  shutdown(): Promise<void>
}

/** Parses `OTEL_EXPORTER_OTLP_HEADERS` (`key=value,key2=value2`, values URL-encoded). */
function otlpHeaders(env: Env): Record<string, string> {
  const text = env.OTEL_EXPORTER_OTLP_TRACES_HEADERS ?? env.OTEL_EXPORTER_OTLP_HEADERS ?? ''
  const headers: Record<string, string> = {}
  for (const pair of text.split(',')) {
    const at = pair.indexOf('=')
    if (at > 0) headers[decodeURIComponent(pair.slice(0, at).trim())] = decodeURIComponent(pair.slice(at + 1).trim())
  }
  return headers
}

/** The path of a URL or request target, without its query (which can carry codes and state). */
function pathOnly(target: string): string {
  const question = target.indexOf('?')
  return question === -1 ? target : target.slice(0, question)
}

interface UndiciRequest {
  readonly origin: string | URL
  readonly method: string
  readonly path: string
  addHeader(name: string, value: string): unknown
}

/**
 * The peers whose trace context is continued: those of `BFF_TRUSTED_PROXIES` (a load balancer
 * or mesh that starts traces). Anyone else's `traceparent` is dropped, so a browser can neither
 * choose bffgate's trace ids nor force every request to be sampled.
 */
function trustedPeers(ranges: readonly string[]): (address: string | undefined) => boolean {
  const list = new BlockList()
  for (const range of ranges) {
    const [address, bits] = range.split('/') as [string, string | undefined]
    const family = isIPv6(address) ? 'ipv6' : 'ipv4'
    if (bits === undefined) list.addAddress(address, family)
    else list.addSubnet(address, Number(bits), family)
  }
  return (address) => {
    if (address === undefined || ranges.length === 0) return false
    // An IPv4 peer on a dual-stack socket reads as ::ffff:a.b.c.d.
    const plain = address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address
    return list.check(plain, isIPv6(plain) ? 'ipv6' : 'ipv4')
  }
}

/** Starts tracing when the environment asks for it; undefined (and nothing set up) otherwise. */
export function startTracing(
  env: Env,
  version: string,
  options: { trustedProxies?: readonly string[] } = {},
): Tracing | undefined {
  const url = tracesEndpoint(env)
  if (url === undefined) return undefined
  const exporter = new OTLPTraceExporter({ url, headers: otlpHeaders(env) })
  const resource = resourceFromAttributes({
    'service.name': env.OTEL_SERVICE_NAME ?? 'bffgate',
    'service.version': version,
  }).merge(detectResources({ detectors: [envDetector] }))
  const provider = new TracerProvider({
    resource,
    spanProcessors: [new BatchSpanProcessor({ exporter, scheduledDelayMillis: 1000 })],
  })
  const contextManager = new AsyncLocalStorageContextManager().enable()
  context.setGlobalContextManager(contextManager)
  propagation.setGlobalPropagator(new W3CTraceContextPropagator())
  trace.setGlobalTracerProvider(provider)
  const tracer = provider.getTracer('bffgate', version)
  const isTrustedPeer = trustedPeers(options.trustedProxies ?? [])

  // Outgoing HTTP through undici (node's fetch and @fastify/reply-from alike): a client span
  // per request, child of whatever span is active, and its traceparent on the wire.
  const outgoing = new WeakMap<object, Span>()
  const onCreate = (message: unknown) => {
    const { request } = message as { request: UndiciRequest }
    const origin = new URL(String(request.origin))
    const span = tracer.startSpan(
      `${request.method}`,
      {
        kind: SpanKind.CLIENT,
        attributes: {
          'http.request.method': request.method,
          'server.address': origin.hostname,
          'server.port': Number(origin.port || (origin.protocol === 'https:' ? 443 : 80)),
          'url.path': pathOnly(request.path),
        },
      },
      context.active(),
    )
    outgoing.set(request, span)
    const carrier: Record<string, string> = {}
    propagation.inject(trace.setSpan(context.active(), span), carrier)
    for (const [name, value] of Object.entries(carrier)) request.addHeader(name, value)
  }
  const onHeaders = (message: unknown) => {
    const { request, response } = message as { request: object; response: { statusCode: number } }
    const span = outgoing.get(request)
    if (span === undefined) return
    outgoing.delete(request)
    span.setAttribute('http.response.status_code', response.statusCode)
    if (response.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR })
    span.end()
  }
  const onError = (message: unknown) => {
    const { request, error } = message as { request: object; error: Error }
    const span = outgoing.get(request)
    if (span === undefined) return
    outgoing.delete(request)
    span.setStatus({ code: SpanStatusCode.ERROR, message: (error as NodeJS.ErrnoException).code ?? error.name })
    span.end()
  }
  subscribe('undici:request:create', onCreate)
  subscribe('undici:request:headers', onHeaders)
  subscribe('undici:request:error', onError)

  return {
    tracer,
    serveRequest(request, response, handler) {
      const parent = isTrustedPeer(request.socket.remoteAddress)
        ? propagation.extract(ROOT_CONTEXT, request.headers)
        : ROOT_CONTEXT
      // The caller's context is consumed here (or refused); the upstream hop gets bffgate's own (one traceparent, not two).
      delete request.headers.traceparent
      delete request.headers.tracestate
      const method = request.method ?? 'GET'
      const span = tracer.startSpan(
        method,
        {
          kind: SpanKind.SERVER,
          attributes: { 'http.request.method': method, 'url.path': pathOnly(request.url ?? '/') },
        },
        parent,
      )
      response.once('close', () => {
        span.setAttribute('http.response.status_code', response.statusCode)
        if (response.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR })
        span.end()
      })
      context.with(trace.setSpan(parent, span), handler)
    },
    async shutdown() {
      unsubscribe('undici:request:create', onCreate)
      unsubscribe('undici:request:headers', onHeaders)
      unsubscribe('undici:request:error', onError)
      await provider.shutdown()
      contextManager.disable()
    },
  }
}
