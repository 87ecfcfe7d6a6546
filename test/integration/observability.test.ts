import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { decodeJwt } from 'jose'
import { freePort, startTestRedis, type TestRedis } from '../helpers/redis.ts'
import { startStack, type Stack, type StackOptions, cookieHeader } from '../helpers/stack.ts'

const CSRF = { 'x-csrf': '1' }

let redis: TestRedis
before(async () => {
  redis = await startTestRedis()
})
after(() => redis.stop())

async function stackWith(t: { after: (fn: () => Promise<void>) => void }, options: StackOptions = {}): Promise<Stack> {
  const stack = await startStack({ redis, ...options })
  t.after(() => stack.close())
  return stack
}

async function metricsText(stack: Stack): Promise<string> {
  return (await fetch(`${stack.adminUrl}/metrics`)).text()
}

/** The value of one sample line, e.g. `bff_http_requests_total{route="/api",...}`. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`)))
      return Number(line.slice(line.lastIndexOf(' ') + 1))
  }
  return undefined
}

describe('metrics', () => {
  test('/metrics is served on the admin listener only; both listeners answer the probes', async (t) => {
    const stack = await stackWith(t)
    const browserPort = await fetch(`${stack.url}/metrics`)
    assert.equal(browserPort.status, 404)
    assert.deepEqual(await browserPort.json(), { error: 'not_found', message: 'Not found' })
    const admin = await fetch(`${stack.adminUrl}/metrics`)
    assert.equal(admin.status, 200)
    assert.match(admin.headers.get('content-type') ?? '', /^text\/plain/)
    assert.match(await admin.text(), /# TYPE bff_http_requests_total counter/)
    for (const base of [stack.url, stack.adminUrl]) {
      assert.deepEqual(await (await fetch(`${base}/healthz`)).json(), { status: 'ok' })
      assert.deepEqual(await (await fetch(`${base}/readyz`)).json(), { status: 'ready' })
    }
    // Nothing else is reachable through the admin port.
    for (const path of ['/bff/login', '/api/hello', '/bff/user']) {
      assert.equal((await fetch(`${stack.adminUrl}${path}`, { redirect: 'manual' })).status, 404, path)
    }
    // Scrapes are not counted as browser requests.
    assert.equal(sample(await metricsText(stack), 'bff_http_requests_total', { route: '/metrics' }), undefined)
  })

  test('requests are counted by route pattern and status class, never by raw path; upstream and Redis latencies are recorded', async (t) => {
    const stack = await stackWith(t)
    const { browser } = await stack.login()
    const cookie = cookieHeader(stack, browser)
    for (const path of ['/api/hello', '/api/items/1', '/api/items/2']) {
      assert.equal((await fetch(`${stack.url}${path}`, { headers: { ...CSRF, cookie } })).status, 200)
    }
    assert.equal((await fetch(`${stack.url}/no/such/page-123`)).status, 404)
    assert.equal((await fetch(`${stack.url}/api/hello`)).status, 403)
    const text = await metricsText(stack)
    assert.equal(sample(text, 'bff_http_requests_total', { route: '/api', method: 'GET', status_class: '2xx' }), 3)
    assert.equal(sample(text, 'bff_http_requests_total', { route: '/api', status_class: '4xx' }), 1)
    assert.equal(sample(text, 'bff_http_requests_total', { route: 'unmatched', status_class: '4xx' }), 1)
    assert.ok(sample(text, 'bff_http_requests_total', { route: '/bff/callback' })! >= 1)
    assert.ok(!text.includes('/api/items') && !text.includes('page-123'), 'no raw path in any label')
    assert.equal(sample(text, 'bff_upstream_duration_seconds_count', { route: '/api', status_class: '2xx' }), 3)
    assert.ok(sample(text, 'bff_http_request_duration_seconds_count', { route: '/api', status_class: '2xx' }) === 3)
    assert.ok(sample(text, 'bff_redis_operation_duration_seconds_count', { operation: 'read', outcome: 'ok' })! >= 3)
    assert.ok(sample(text, 'bff_redis_operation_duration_seconds_count', { operation: 'write', outcome: 'ok' })! >= 1)
    assert.ok(text.includes('# TYPE bff_redis_errors_total counter'))
  })

  test("Node's default metrics keep their standard names; build info, IdP latency by endpoint and login outcomes are exported", async (t) => {
    const stack = await stackWith(t)
    await stack.login()
    // A callback with a state this browser never started.
    assert.equal((await fetch(`${stack.url}/bff/callback?state=forged&code=x`)).status, 400)
    const text = await metricsText(stack)
    assert.ok(!text.includes('bff_process_'), 'no doubled prefix')
    for (const name of [
      'process_cpu_seconds_total',
      'process_resident_memory_bytes',
      'nodejs_heap_size_used_bytes',
      'nodejs_eventloop_lag_p99_seconds',
      'nodejs_gc_duration_seconds',
    ]) {
      assert.match(text, new RegExp(`^# TYPE ${name} `, 'm'), name)
    }
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
    assert.equal(sample(text, 'bff_build_info', { version: pkg.version, node_version: process.versions.node }), 1)
    assert.ok(
      sample(text, 'bff_idp_request_duration_seconds_count', { endpoint: 'discovery', outcome: 'success' })! >= 1,
    )
    assert.equal(
      sample(text, 'bff_idp_request_duration_seconds_count', { endpoint: 'token', outcome: 'success' }),
      1,
      'one code exchange',
    )
    assert.equal(sample(text, 'bff_logins_total', { outcome: 'success' }), 1)
    assert.equal(sample(text, 'bff_logins_total', { outcome: 'state_invalid' }), 1)
  })

  test('an IdP that fails is recorded by endpoint and outcome', async (t) => {
    const stack = await stackWith(t, {
      idp: { accessTokenTtlSeconds: 3 },
      env: { BFF_REFRESH_SKEW_SECONDS: '1', BFF_OIDC_TIMEOUT_SECONDS: '2', BFF_REFRESH_LOCK_SECONDS: '5' },
    })
    const { browser } = await stack.login()
    const cookie = cookieHeader(stack, browser)
    await stack.idp.stop()
    await sleep(3500)
    assert.notEqual((await fetch(`${stack.url}/api/hello`, { headers: { ...CSRF, cookie } })).status, 200)
    const text = await metricsText(stack)
    assert.ok(
      sample(text, 'bff_idp_request_duration_seconds_count', { endpoint: 'token', outcome: 'network_error' })! >= 1,
      text
        .split('\n')
        .filter((l) => l.startsWith('bff_idp'))
        .join('\n'),
    )
  })

  test('docs/operations.md lists exactly the series /metrics exports', async (t) => {
    const stack = await stackWith(t)
    const exported = new Set([...(await metricsText(stack)).matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!))
    const doc = readFileSync(new URL('../../docs/operations.md', import.meta.url), 'utf8')
    const section = doc.slice(doc.indexOf('\n## Metrics\n'), doc.indexOf('\n## ', doc.indexOf('\n## Metrics\n') + 1))
    const documented = new Set([...section.matchAll(/^\| `([a-z0-9_]+)` \|/gm)].map((m) => m[1]!))
    assert.deepEqual([...exported].filter((n) => !documented.has(n)).sort(), [], 'exported but not documented')
    assert.deepEqual([...documented].filter((n) => !exported.has(n)).sort(), [], 'documented but not exported')
  })

  test('concurrent requests that share one refresh are counted as single-flight joins', async (t) => {
    const stack = await stackWith(t, { idp: { accessTokenTtlSeconds: 3 }, env: { BFF_REFRESH_SKEW_SECONDS: '1' } })
    const { browser } = await stack.login()
    const cookie = cookieHeader(stack, browser)
    const first = (await (await fetch(`${stack.url}/api/hello`, { headers: { ...CSRF, cookie } })).json()) as {
      headers: Record<string, string>
    }
    const { exp } = decodeJwt(first.headers.authorization!.replace(/^Bearer /, ''))
    await sleep(Math.max(0, exp! * 1000 - Date.now()) + 150)
    const statuses = await Promise.all(
      Array.from(
        { length: 10 },
        async () => (await fetch(`${stack.url}/api/hello`, { headers: { ...CSRF, cookie } })).status,
      ),
    )
    assert.deepEqual(statuses, Array(10).fill(200))
    const text = await metricsText(stack)
    assert.equal(sample(text, 'bff_token_exchanges_total', { outcome: 'success' }), 1)
    assert.ok(sample(text, 'bff_refresh_single_flight_joins_total', {})! >= 1)
    assert.ok(text.includes('# TYPE bff_refresh_lock_waits_total counter'))
  })
})

describe('request ids and logs', () => {
  test('a valid incoming x-request-id is kept, echoed and sent upstream; an invalid one is replaced', async (t) => {
    const stack = await stackWith(t)
    const { browser } = await stack.login()
    const cookie = cookieHeader(stack, browser)
    const res = await fetch(`${stack.url}/api/hello`, { headers: { ...CSRF, cookie, 'x-request-id': 'lb-abc-123' } })
    assert.equal(res.headers.get('x-request-id'), 'lb-abc-123')
    const echo = (await res.json()) as { headers: Record<string, string> }
    assert.equal(echo.headers['x-request-id'], 'lb-abc-123')
    assert.ok(
      stack.logs.lines.some((l) => l.reqId === 'lb-abc-123'),
      'the log lines carry the same id',
    )

    // Generated ids: a per-process random prefix and a counter (unique, not secret: they grant nothing).
    const GENERATED = /^[A-Za-z0-9_-]{12}-[0-9a-z]+$/
    const bad = await fetch(`${stack.url}/api/hello`, { headers: { ...CSRF, cookie, 'x-request-id': 'x'.repeat(300) } })
    const generated = bad.headers.get('x-request-id')!
    assert.match(generated, GENERATED)
    assert.equal(((await bad.json()) as { headers: Record<string, string> }).headers['x-request-id'], generated)
    const probeIds = await Promise.all(
      Array.from({ length: 20 }, async () => (await fetch(`${stack.url}/healthz`)).headers.get('x-request-id')!),
    )
    for (const id of probeIds) assert.match(id, GENERATED)
    assert.equal(new Set([generated, ...probeIds]).size, 21, 'every generated id is new')
  })

  test('at the default level each request writes exactly one access line: method, route pattern, status, duration, id, error code; no URL, query string or cookie', async (t) => {
    const stack = await stackWith(t, { env: { BFF_LOG_LEVEL: 'info' } })
    const { browser } = await stack.login()
    const cookie = cookieHeader(stack, browser)
    const session = browser.cookies(stack.url).find((c) => c.name === stack.config.session.cookieName)!
    const sessionValue = session.value
    const seen = stack.logs.lines.length
    const answers = [
      await fetch(`${stack.url}/api/orders/7?code=abc123secret&expand=1`, { headers: { ...CSRF, cookie } }),
      await fetch(`${stack.url}/api/hello`, { headers: CSRF }),
      await fetch(`${stack.url}/api/hello`, {
        headers: { ...CSRF, cookie: `${session.name}=AAAAAAAA${sessionValue.slice(8)}` },
      }),
      await fetch(`${stack.url}/nowhere?x=1`),
      await fetch(`${stack.url}/bff/user`, { headers: { ...CSRF, cookie } }),
    ]
    for (const answer of answers) await answer.arrayBuffer()
    await sleep(50)
    assert.deepEqual(
      answers.map((a) => a.status),
      [200, 401, 401, 404, 200],
    )
    const lines = stack.logs.lines.slice(seen)
    const raw = stack.logs.raw.slice(seen)
    // One line per request, nothing else at info.
    assert.equal(lines.length, answers.length, JSON.stringify(lines))
    assert.deepEqual(
      lines.map((l) => l.reqId),
      answers.map((a) => a.headers.get('x-request-id')),
    )
    assert.deepEqual(
      lines.map((l) => [l.msg, l.method, l.route, l.status, l.code]),
      [
        ['request completed', 'GET', '/api', 200, undefined],
        ['request completed', 'GET', '/api', 401, 'BFF_ERR_SESSION_REQUIRED'],
        ['request completed', 'GET', '/api', 401, 'BFF_ERR_SESSION_ENDED'],
        ['request completed', 'GET', 'unmatched', 404, 'BFF_ERR_NOT_FOUND'],
        ['request completed', 'GET', '/bff/user', 200, undefined],
      ],
    )
    for (const line of lines) {
      assert.equal(line.level, 30)
      assert.ok(typeof line.ms === 'number' && line.ms >= 0, `duration in ms: ${line.ms}`)
      assert.deepEqual(
        Object.keys(line).filter(
          (k) =>
            !['level', 'time', 'pid', 'hostname', 'reqId', 'method', 'route', 'status', 'ms', 'code', 'msg'].includes(
              k,
            ),
        ),
        [],
      )
    }
    for (const needle of [
      'abc123secret',
      'expand',
      '/orders/7',
      'nowhere',
      sessionValue,
      sessionValue.slice(10, 30),
      '"stack"',
    ]) {
      assert.ok(!raw.some((l) => l.includes(needle)), `${needle} is not logged`)
    }
  })

  test('an expected 4xx is logged without a stack trace, even at debug', async (t) => {
    const stack = await stackWith(t)
    const seen = stack.logs.lines.length
    assert.equal((await fetch(`${stack.url}/api/hello`, { headers: CSRF })).status, 401)
    assert.equal(
      (
        await fetch(`${stack.url}/bff/user`, {
          method: 'POST',
          headers: { ...CSRF, 'content-type': 'application/json' },
          body: '{not json',
        })
      ).status,
      400,
    )
    assert.equal((await fetch(`${stack.url}/bff/callback?state=x&code=y`)).status, 400)
    await sleep(50)
    const raw = stack.logs.raw.slice(seen)
    const failed = stack.logs.lines
      .slice(seen)
      .filter((l) => l.event === 'request.failed' || l.event === 'request.rejected')
    assert.ok(failed.length >= 2, `4xx lines at debug: ${JSON.stringify(stack.logs.lines.slice(seen))}`)
    assert.ok(!raw.some((l) => l.includes('"stack"')), raw.join('\n'))
  })

  test('an unreachable upstream is logged with its error code (ECONNREFUSED), not a redacted one', async (t) => {
    const closed = await freePort()
    const stack = await stackWith(t, {
      routes: (apiUrl) => [
        { path: '/api', upstream: apiUrl },
        { path: '/down', upstream: `http://127.0.0.1:${closed}` },
      ],
    })
    const { browser } = await stack.login()
    const seen = stack.logs.raw.length
    const res = await fetch(`${stack.url}/down/x`, { headers: { ...CSRF, cookie: cookieHeader(stack, browser) } })
    assert.equal(res.status, 502)
    await sleep(50)
    const raw = stack.logs.raw.slice(seen)
    const failed = raw.find((l) => l.includes('"event":"upstream.failed"'))
    assert.ok(failed, raw.join('\n'))
    assert.match(failed, /"code":"ECONNREFUSED"/)
    assert.ok(!raw.some((l) => l.includes('[redacted]')), raw.join('\n'))
    const access = stack.logs.lines.slice(-5).find((l) => l.msg === 'request completed' && l.status === 502)
    assert.equal(access?.code, 'BFF_ERR_UPSTREAM_UNREACHABLE')
  })

  test("a proxied request logs one completed line, without reply-from's per-request lines", async (t) => {
    const stack = await stackWith(t)
    const { browser } = await stack.login()
    const cookie = cookieHeader(stack, browser)
    const res = await fetch(`${stack.url}/api/hello`, { headers: { ...CSRF, cookie } })
    const id = res.headers.get('x-request-id')
    await res.arrayBuffer()
    await sleep(50)
    const lines = stack.logs.lines.filter((l) => l.reqId === id)
    assert.equal(lines.filter((l) => l.msg === 'request completed').length, 1)
    assert.ok(
      !lines.some((l) => l.msg === 'fetching from remote server' || l.msg === 'response received'),
      JSON.stringify(lines),
    )
  })
})

describe('load shedding', () => {
  test('while the event loop lags beyond the limit, requests get 503 JSON with Retry-After; probes still answer', async (t) => {
    const stack = await stackWith(t, { env: { BFF_MAX_EVENT_LOOP_DELAY_MS: '5' } })
    // Stall this process's event loop (the gateway runs in it). under-pressure compares the
    // mean loop delay of its last one-second sample: one 1.2 s stall lifts it past 5 ms.
    const until = Date.now() + 1200
    while (Date.now() < until) {
      /* busy */
    }
    await sleep(10)
    const res = await fetch(`${stack.url}/bff/user`)
    assert.equal(res.status, 503)
    assert.ok(Number(res.headers.get('retry-after')) > 0)
    assert.deepEqual(await res.json(), { error: 'overloaded', message: 'The gateway is overloaded; try again shortly' })
    assert.equal((await fetch(`${stack.url}/healthz`)).status, 200)
    // And recovers once the loop is idle again.
    const deadline = Date.now() + 5000
    while ((await fetch(`${stack.url}/bff/user`)).status === 503) {
      assert.ok(Date.now() < deadline, 'still shedding load long after the stall')
      await sleep(200)
    }
    // The admin listener is never shed, and it counts what was.
    assert.ok(sample(await metricsText(stack), 'bff_load_shed_total', {})! >= 1)
  })
})
