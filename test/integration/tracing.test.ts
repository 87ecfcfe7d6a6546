import assert from 'node:assert/strict'
import { channel } from 'node:diagnostics_channel'
import { createServer, type Server } from 'node:http'
import { after, before, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { decodeJwt } from 'jose'
import { startReplica } from '../helpers/replica.ts'
import { startTestRedis, type TestRedis } from '../helpers/redis.ts'
import { cookieHeader, startStack } from '../helpers/stack.ts'

interface OtlpSpan {
  traceId: string
  spanId: string
  parentSpanId?: string
  name: string
  kind: number
  attributes?: Array<{ key: string; value: Record<string, unknown> }>
}

/** A real OTLP/HTTP (JSON) receiver: what an OpenTelemetry Collector's otlphttp receiver accepts. */
async function startReceiver(): Promise<{ url: string; spans: OtlpSpan[]; resources: unknown[]; server: Server }> {
  const spans: OtlpSpan[] = []
  const resources: unknown[] = []
  const server = createServer((request, response) => {
    const chunks: Buffer[] = []
    request.on('data', (c: Buffer) => chunks.push(c))
    request.on('end', () => {
      if (
        request.method === 'POST' &&
        request.url === '/v1/traces' &&
        request.headers['content-type']?.startsWith('application/json')
      ) {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
          resourceSpans: Array<{ resource: unknown; scopeSpans: Array<{ spans: OtlpSpan[] }> }>
        }
        for (const rs of body.resourceSpans) {
          resources.push(rs.resource)
          for (const ss of rs.scopeSpans) spans.push(...ss.spans)
        }
        response.writeHead(200, { 'content-type': 'application/json' }).end('{}')
      } else {
        response.writeHead(415).end()
      }
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, spans, resources, server }
}

const attribute = (span: OtlpSpan, key: string): unknown => {
  const value = span.attributes?.find((a) => a.key === key)?.value
  return value === undefined ? undefined : Object.values(value)[0]
}

let redis: TestRedis
before(async () => {
  redis = await startTestRedis()
})
after(() => redis.stop())

test('tracing is off by default and then costs nothing: no outgoing-request subscriber, no span', async (t) => {
  const stack = await startStack({ redis })
  t.after(() => stack.close())
  assert.equal(channel('undici:request:create').hasSubscribers, false)
  const { browser } = await stack.login()
  const cookie = cookieHeader(stack, browser)
  const echoed = (await (await fetch(`${stack.url}/api/hello`, { headers: { 'x-csrf': '1', cookie } })).json()) as {
    headers: Record<string, string>
  }
  assert.equal(echoed.headers.traceparent, undefined, 'no trace context invented')
})

test('with OTEL_EXPORTER_OTLP_ENDPOINT, a real process exports spans for the request, the session read, the token-endpoint call and the upstream hop, and the upstream gets the trace context', async (t) => {
  const receiver = await startReceiver()
  t.after(() => new Promise<void>((resolve) => receiver.server.close(() => resolve())))
  const stack = await startStack({ redis, idp: { accessTokenTtlSeconds: 3 }, env: { BFF_REFRESH_SKEW_SECONDS: '1' } })
  t.after(() => stack.close())
  // 127.0.0.1 plays the load balancer that starts traces: its trace context is continued.
  const replica = await startReplica({
    ...stack.env,
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    OTEL_SERVICE_NAME: 'bffgate-under-test',
    BFF_TRUSTED_PROXIES: '127.0.0.1',
  })
  t.after(() => replica.stop())

  // Log in through the in-process gateway; the session lives in the shared Redis and the
  // cookie (host-scoped, not port-scoped) works on the traced replica too.
  const { browser } = await stack.login()
  const cookies = browser.cookies(stack.url)
  const cookie = cookies.map((c) => `${c.name}=${c.value}`).join('; ')
  const first = (await (await fetch(`${replica.url}/api/hello`, { headers: { 'x-csrf': '1', cookie } })).json()) as {
    headers: Record<string, string>
  }
  const { exp } = decodeJwt(first.headers.authorization!.replace(/^Bearer /, ''))
  await sleep(Math.max(0, exp! * 1000 - Date.now()) + 200)

  // The caller's own trace context: bffgate's server span must join it.
  const traceId = '4bf92f3577b34da6a3ce929d0e0e4736'
  const callerSpanId = '00f067aa0ba902b7'
  const response = await fetch(`${replica.url}/api/hello`, {
    headers: { 'x-csrf': '1', cookie, traceparent: `00-${traceId}-${callerSpanId}-01` },
  })
  assert.equal(response.status, 200)
  const echoed = (await response.json()) as { headers: Record<string, string> }
  const upstreamParent = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/.exec(echoed.headers.traceparent ?? '')
  assert.ok(upstreamParent, `the upstream got no traceparent: ${echoed.headers.traceparent}`)
  assert.equal(upstreamParent[1], traceId, "the upstream call continues the caller's trace")

  const deadline = Date.now() + 15_000
  const inTrace = () => receiver.spans.filter((s) => s.traceId === traceId)
  while (
    !inTrace().some((s) => s.name === 'GET /api/*' && s.kind === 2) ||
    !inTrace().some((s) => s.spanId === upstreamParent![2])
  ) {
    assert.ok(Date.now() < deadline, `spans did not arrive: ${JSON.stringify(inTrace().map((s) => s.name))}`)
    await sleep(200)
  }
  const spans = inTrace()
  const byId = new Map(spans.map((s) => [s.spanId, s]))
  const server = spans.find((s) => s.name === 'GET /api/*' && s.kind === 2)!
  assert.equal(server.parentSpanId, callerSpanId, "the server span is the caller's child")
  assert.equal(attribute(server, 'http.route'), '/api/*')
  assert.equal(attribute(server, 'http.response.status_code'), 200)
  const isUnder = (span: OtlpSpan, ancestor: OtlpSpan): boolean => {
    for (let s: OtlpSpan | undefined = span; s !== undefined; s = s.parentSpanId ? byId.get(s.parentSpanId) : undefined)
      if (s.spanId === ancestor.spanId) return true
    return false
  }
  const sessionRead = spans.find((s) => s.name === 'session.read')
  assert.ok(sessionRead && sessionRead.parentSpanId === server.spanId, 'the session read is a child of the request')
  const tokenCall = spans.find((s) => s.name === 'idp.token')
  assert.ok(tokenCall && isUnder(tokenCall, server), 'the refresh at the token endpoint is inside the request')
  assert.ok(
    spans.some(
      (s) => s.kind === 3 && s.parentSpanId === tokenCall.spanId && attribute(s, 'http.request.method') === 'POST',
    ),
    "the token call's wire request is a client span",
  )
  const upstream = byId.get(upstreamParent[2]!)!
  assert.equal(upstream.kind, 3, 'the upstream hop is a client span')
  assert.ok(isUnder(upstream, server))
  assert.equal(attribute(upstream, 'url.path'), '/hello')
  assert.equal(attribute(upstream, 'http.response.status_code'), 200)
  assert.ok(JSON.stringify(receiver.resources).includes('bffgate-under-test'), 'OTEL_SERVICE_NAME names the service')

  // No secret in any exported span: cookie values, tokens, the client secret.
  const exported = JSON.stringify(receiver.spans)
  const secrets = [
    ...cookies.map((c) => c.value),
    echoed.headers.authorization!.replace(/^Bearer /, ''),
    first.headers.authorization!.replace(/^Bearer /, ''),
    stack.env.BFF_OIDC_CLIENT_SECRET!,
    ...stack.idp.issuedTokens(),
  ]
  for (const secret of secrets)
    assert.ok(secret === undefined || !exported.includes(secret), 'a secret reached a span attribute')
})

test('with tracing on, the browser port keeps its configured timeouts (the traced server is made by bffgate, not fastify)', async (t) => {
  const receiver = await startReceiver()
  t.after(() => new Promise<void>((resolve) => receiver.server.close(() => resolve())))
  const stack = await startStack({ redis })
  t.after(() => stack.close())
  const replica = await startReplica({
    ...stack.env,
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    BFF_KEEP_ALIVE_TIMEOUT_SECONDS: '61',
  })
  t.after(() => replica.stop())
  // Node announces the server's keep-alive timeout on every keep-alive answer; its default is 5 s.
  const response = await fetch(`${replica.url}/healthz`)
  assert.equal(response.status, 200)
  assert.equal(response.headers.get('keep-alive'), 'timeout=61')
})

test('a traceparent from a peer outside BFF_TRUSTED_PROXIES is not continued: a browser cannot choose the trace id or force sampling', async (t) => {
  const receiver = await startReceiver()
  t.after(() => new Promise<void>((resolve) => receiver.server.close(() => resolve())))
  const stack = await startStack({ redis })
  t.after(() => stack.close())
  const replica = await startReplica({ ...stack.env, OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url })
  t.after(() => replica.stop())
  const { browser } = await stack.login()
  const cookie = cookieHeader(stack, browser)
  const chosen = '0af7651916cd43dd8448eb211c80319c'
  const echoed = (await (
    await fetch(`${replica.url}/api/hello`, {
      headers: { 'x-csrf': '1', cookie, traceparent: `00-${chosen}-b7ad6b7169203331-01` },
    })
  ).json()) as { headers: Record<string, string> }
  const upstream = /^00-([0-9a-f]{32})-[0-9a-f]{16}-0[01]$/.exec(echoed.headers.traceparent ?? '')
  assert.ok(upstream, `the upstream got no traceparent of bffgate's: ${echoed.headers.traceparent}`)
  assert.notEqual(upstream[1], chosen, "a trace of bffgate's own, not the caller's")
  const deadline = Date.now() + 15_000
  while (!receiver.spans.some((s) => s.traceId === upstream[1])) {
    assert.ok(Date.now() < deadline, "the request's spans did not arrive")
    await sleep(200)
  }
  assert.equal(
    receiver.spans.some((s) => s.traceId === chosen),
    false,
    'no span in the chosen trace',
  )
})
