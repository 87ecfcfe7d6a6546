import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { freePort, startRedisServer, type RedisServerProcess } from '../helpers/redis.ts'
import { startReplica } from '../helpers/replica.ts'
import { startStack, type Stack, type StackOptions, cookieHeader } from '../helpers/stack.ts'

const CSRF = { 'x-csrf': '1' }

// Design §7: faults never crash the process and never leave a promise rejected unhandled.
const unhandled: unknown[] = []
const onUnhandled = (reason: unknown) => {
  unhandled.push(reason)
}
before(() => {
  process.on('unhandledRejection', onUnhandled)
})
after(() => {
  process.off('unhandledRejection', onUnhandled)
  assert.deepEqual(unhandled, [], 'no unhandled rejection during the fault tests')
})

let redis: RedisServerProcess
before(async () => {
  redis = await startRedisServer()
})
after(() => redis.stop())

let prefixes = 0
async function stackOnRedis(
  t: { after: (fn: () => Promise<void>) => void },
  options: StackOptions = {},
): Promise<Stack> {
  const stack = await startStack({
    ...options,
    env: {
      BFF_SESSION_STORE: 'redis',
      BFF_REDIS_URL: redis.url,
      BFF_REDIS_KEY_PREFIX: `faults:${process.pid}:${++prefixes}:`,
      ...options.env,
    },
  })
  t.after(() => stack.close())
  return stack
}

async function callApi(
  base: string,
  cookie: string,
  path = '/api/hello',
): Promise<{ status: number; body: { error?: string }; headers: Headers; ms: number }> {
  const started = Date.now()
  const res = await fetch(`${base}${path}`, { headers: { ...CSRF, cookie } })
  return {
    status: res.status,
    body: (await res.json()) as { error?: string },
    headers: res.headers,
    ms: Date.now() - started,
  }
}

/** Sends SIGSTOP / SIGCONT to redis-server: an outage that keeps the data. */
const freeze = (pid: number) => process.kill(pid, 'SIGSTOP')
const thaw = (pid: number) => process.kill(pid, 'SIGCONT')

describe('Redis outages', () => {
  test('a frozen Redis gives 503 JSON with Retry-After and a failing /readyz; both recover by themselves with the session intact', async (t) => {
    const stack = await stackOnRedis(t)
    const { browser } = await stack.login()
    const cookie = cookieHeader(stack, browser)
    assert.equal((await callApi(stack.url, cookie)).status, 200)

    freeze(redis.pid)
    t.after(() => {
      try {
        thaw(redis.pid)
      } catch {}
    })
    const during = await callApi(stack.url, cookie)
    assert.equal(during.status, 503)
    assert.equal(during.body.error, 'session_store_unavailable')
    assert.ok(Number(during.headers.get('retry-after')) > 0)
    assert.ok(during.ms < 6000, `the 503 comes within the command timeout, not after a hang (${during.ms} ms)`)
    const ready = await fetch(`${stack.url}/readyz`)
    assert.equal(ready.status, 503)
    assert.equal((await fetch(`${stack.url}/healthz`)).status, 200, 'liveness does not depend on Redis')

    thaw(redis.pid)
    const deadline = Date.now() + 10_000
    while ((await fetch(`${stack.url}/readyz`)).status !== 200) {
      assert.ok(Date.now() < deadline, '/readyz did not recover')
      await sleep(100)
    }
    assert.equal((await callApi(stack.url, cookie)).status, 200, 'the session survived the outage')
  })

  test('a Redis that goes away during traffic and comes back empty: 503s, then new logins work, without restarting the gateway', async (t) => {
    const stack = await stackOnRedis(t)
    const { browser } = await stack.login()
    const cookie = cookieHeader(stack, browser)

    const statuses: number[] = []
    const done = new AbortController()
    const traffic = (async () => {
      while (!done.signal.aborted) {
        statuses.push((await callApi(stack.url, cookie).catch(() => ({ status: 0 }))).status)
        await sleep(20)
      }
    })()
    await sleep(200)
    await redis.kill()
    await sleep(1000)
    await redis.restart()
    const deadline = Date.now() + 10_000
    while ((await fetch(`${stack.url}/readyz`)).status !== 200) {
      assert.ok(Date.now() < deadline, '/readyz did not recover')
      await sleep(100)
    }
    done.abort()
    await traffic
    assert.ok(statuses.includes(503), 'the outage was visible as 503')
    assert.deepEqual(
      statuses.filter((s) => ![200, 401, 503].includes(s)),
      [],
      `only 200, 503 and (after the data loss) 401: ${statuses.join(',')}`,
    )
    // The data is gone (no persistence): the old session is over, a new login works.
    assert.equal((await callApi(stack.url, cookie)).status, 401)
    const again = await stack.login()
    assert.equal((await callApi(stack.url, cookieHeader(stack, again.browser))).status, 200)
  })
})

describe('upstream faults', () => {
  test('an unreachable upstream answers 502 JSON and leaves the session alone', async (t) => {
    const closedPort = await freePort()
    const stack = await stackOnRedis(t, {
      routes: (api) => [
        { path: '/api', upstream: api },
        { path: '/down', upstream: `http://127.0.0.1:${closedPort}` },
      ],
    })
    const { browser } = await stack.login()
    const cookie = cookieHeader(stack, browser)
    const res = await callApi(stack.url, cookie, '/down/x')
    assert.equal(res.status, 502)
    assert.equal(res.body.error, 'upstream_unavailable')
    assert.equal((await callApi(stack.url, cookie)).status, 200)
  })

  test('a slow upstream answers 504 after BFF_UPSTREAM_TIMEOUT_SECONDS', async (t) => {
    const stack = await stackOnRedis(t, { env: { BFF_UPSTREAM_TIMEOUT_SECONDS: '1' } })
    const { browser } = await stack.login()
    const cookie = cookieHeader(stack, browser)
    stack.api.setDelay(3000)
    const res = await callApi(stack.url, cookie)
    stack.api.setDelay(0)
    assert.equal(res.status, 504)
    assert.equal(res.body.error, 'upstream_timeout')
    assert.ok(res.ms >= 900 && res.ms < 2900, `timed out after about 1 s (${res.ms} ms)`)
    assert.equal((await callApi(stack.url, cookie)).status, 200)
  })
})

describe('shutdown', () => {
  test('SIGTERM under load: in-flight requests complete, new connections are refused, exit 0 quickly', async (t) => {
    const stack = await stackOnRedis(t)
    const { browser } = await stack.login()
    const cookie = cookieHeader(stack, browser)
    const replica = await startReplica({ ...stack.env, BFF_LOG_LEVEL: 'warn' })
    t.after(() => replica.kill())
    // Keep-alive connections that have served a request already (the trap of library-traps.md).
    assert.equal((await callApi(replica.url, cookie)).status, 200)

    stack.api.setDelay(1000)
    t.after(() => stack.api.setDelay(0))
    const inFlight = Array.from({ length: 20 }, () => callApi(replica.url, cookie))
    await sleep(300)
    const started = Date.now()
    const exit = replica.stop()
    await sleep(200)
    await assert.rejects(
      fetch(`${replica.url}/healthz`, { headers: { connection: 'close' } }),
      'a new connection is refused while draining',
    )
    const results = await Promise.all(inFlight)
    assert.deepEqual(
      results.map((r) => r.status),
      Array(20).fill(200),
      'every in-flight request completed',
    )
    assert.equal(await exit, 0)
    assert.ok(Date.now() - started < 5000, `exited soon after the last answer (${Date.now() - started} ms)`)
  })
})
