import assert from 'node:assert/strict'
import { get as httpGet, request as httpRequest, type IncomingMessage } from 'node:http'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { Agent, fetch as undiciFetch } from 'undici'
import { startDevTransmitter } from '../../dev/ssf/transmitter.ts'
import { startReplica, type Replica } from '../helpers/replica.ts'
import { startTestRedis, type TestRedis } from '../helpers/redis.ts'
import { startStack, type Stack } from '../helpers/stack.ts'

let redis: TestRedis
before(async () => {
  redis = await startTestRedis()
})
after(() => redis.stop())

async function gatewayWith(
  t: { after: (fn: () => Promise<unknown>) => void },
  env: Record<string, string>,
): Promise<{ stack: Stack; replicas: Replica[] }> {
  const stack = await startStack({ redis, backchannel: true, env })
  t.after(() => stack.close())
  // Two more bffgate processes over the same Redis and key prefix: three replicas in all.
  const replicas = await Promise.all([startReplica(stack.env), startReplica(stack.env)])
  for (const replica of replicas) t.after(() => replica.stop())
  return { stack, replicas }
}

describe('rate limits', () => {
  test('/bff/login is limited per client IP across replicas that share one Redis, with a 429 JSON and Retry-After', async (t) => {
    const { stack, replicas } = await gatewayWith(t, { BFF_RATE_LIMIT_LOGIN: '5', BFF_RATE_LIMIT_WINDOW_SECONDS: '30' })
    const urls = [stack.url, replicas[0]!.url, replicas[1]!.url]
    const statuses: number[] = []
    for (let i = 0; i < 5; i++) statuses.push((await fetch(`${urls[i % 3]}/bff/login`, { redirect: 'manual' })).status)
    assert.deepEqual(statuses, [302, 302, 302, 302, 302])
    // The sixth, on any replica, is over the shared limit.
    for (const url of urls) {
      const refused = await fetch(`${url}/bff/login`, { redirect: 'manual' })
      assert.equal(refused.status, 429, url)
      assert.deepEqual(await refused.json(), {
        error: 'rate_limited',
        message: 'Too many requests from this address; try again later',
      })
      const retryAfter = Number(refused.headers.get('retry-after'))
      assert.ok(retryAfter >= 1 && retryAfter <= 30, `Retry-After ${retryAfter}`)
      assert.equal(refused.headers.get('location'), null, 'no redirect to the IdP')
    }
    // Other endpoints have buckets of their own.
    assert.equal((await fetch(`${replicas[0]!.url}/bff/callback?state=x&code=y`)).status, 400)
    const metrics = await (await fetch(`${replicas[1]!.adminUrl}/metrics`)).text()
    assert.match(metrics, /^bff_rate_limited_total\{route="\/bff\/login"\} 1$/m)
  })

  test('another client address has its own allowance, and the window ends', async (t) => {
    const { stack, replicas } = await gatewayWith(t, { BFF_RATE_LIMIT_LOGIN: '2', BFF_RATE_LIMIT_WINDOW_SECONDS: '2' })
    for (let i = 0; i < 2; i++)
      assert.equal((await fetch(`${stack.url}/bff/login`, { redirect: 'manual' })).status, 302)
    assert.equal((await fetch(`${replicas[0]!.url}/bff/login`, { redirect: 'manual' })).status, 429)
    // The same replicas, reached from 127.0.0.2: a different request.ip.
    const other = new Agent({ localAddress: '127.0.0.2' })
    t.after(() => other.close())
    assert.equal(
      (await undiciFetch(`${replicas[1]!.url}/bff/login`, { redirect: 'manual', dispatcher: other })).status,
      302,
    )
    await sleep(2500)
    assert.equal((await fetch(`${replicas[1]!.url}/bff/login`, { redirect: 'manual' })).status, 302, 'a new window')
  })

  test('/bff/callback and /bff/backchannel-logout have limits of their own', async (t) => {
    const { stack, replicas } = await gatewayWith(t, {
      BFF_RATE_LIMIT_CALLBACK: '3',
      BFF_RATE_LIMIT_BACKCHANNEL_LOGOUT: '2',
      BFF_RATE_LIMIT_LOGIN: '0',
    })
    const callbacks = []
    for (let i = 0; i < 4; i++)
      callbacks.push((await fetch(`${[stack.url, replicas[0]!.url][i % 2]}/bff/callback?state=s${i}&code=c`)).status)
    assert.deepEqual(callbacks, [400, 400, 400, 429])
    const logouts = []
    for (let i = 0; i < 3; i++) {
      logouts.push(
        (
          await fetch(`${[replicas[0]!.url, replicas[1]!.url][i % 2]}/bff/backchannel-logout`, {
            method: 'POST',
            headers: { 'content-type': 'application/x-www-form-urlencoded' },
            body: 'logout_token=not.a.jwt',
          })
        ).status,
      )
    }
    assert.deepEqual(logouts, [400, 400, 429])
    // BFF_RATE_LIMIT_LOGIN=0: no limit at all.
    for (let i = 0; i < 10; i++)
      assert.equal((await fetch(`${replicas[1]!.url}/bff/login`, { redirect: 'manual' })).status, 302)
  })

  test('/bff/global-token-revocation and /bff/ssf/events are limited, each on its own, before any token is verified', async (t) => {
    const transmitter = await startDevTransmitter({ audience: 'https://bffgate.test/ssf-stream' })
    t.after(() => transmitter.close())
    const stack = await startStack({
      redis,
      env: {
        BFF_RATE_LIMIT_REVOCATION: '3',
        BFF_RATE_LIMIT_WINDOW_SECONDS: '30',
        BFF_SSF_DELIVERY: 'push',
        BFF_SSF_ISSUER: transmitter.issuer,
        BFF_SSF_AUDIENCE: 'https://bffgate.test/ssf-stream',
        BFF_SSF_PUSH_AUTHORIZATION: 'Bearer push-secret-for-this-test',
        BFF_GLOBAL_REVOCATION_ISSUER: transmitter.issuer,
      },
    })
    t.after(() => stack.close())
    // Tokens that fail verification: each one would make bffgate check a signature.
    const revoke = async () =>
      (
        await fetch(`${stack.url}/bff/global-token-revocation`, {
          method: 'POST',
          headers: { authorization: 'Bearer a.b.c', 'content-type': 'application/json' },
          body: '{}',
        })
      ).status
    const pushSet = async () =>
      (
        await fetch(`${stack.url}/bff/ssf/events`, {
          method: 'POST',
          headers: { authorization: 'Bearer push-secret-for-this-test', 'content-type': 'application/secevent+jwt' },
          body: 'a.b.c',
        })
      ).status
    const revocations = []
    for (let i = 0; i < 4; i++) revocations.push(await revoke())
    assert.deepEqual(revocations, [401, 401, 401, 429])
    const pushes = []
    for (let i = 0; i < 4; i++) pushes.push(await pushSet())
    assert.deepEqual(pushes, [400, 400, 400, 429], 'the push route has a bucket of its own')
    // A raw request that looks like a navigation (fetch would replace Sec-Fetch-Mode): a back
    // channel is never redirected to the login error page.
    const refused = await new Promise<{ status: number; retryAfter: number; body: string }>((resolve, reject) => {
      httpRequest(
        `${stack.url}/bff/global-token-revocation`,
        { method: 'POST', headers: { 'sec-fetch-mode': 'navigate', 'sec-fetch-site': 'none', accept: 'text/html' } },
        (res) => {
          let body = ''
          res
            .setEncoding('utf8')
            .on('data', (chunk: string) => {
              body += chunk
            })
            .on('end', () => resolve({ status: res.statusCode!, retryAfter: Number(res.headers['retry-after']), body }))
        },
      )
        .on('error', reject)
        .end()
    })
    assert.equal(refused.status, 429)
    assert.equal((JSON.parse(refused.body) as { error: string }).error, 'rate_limited')
    assert.ok(refused.retryAfter >= 1)
    const metrics = await (await fetch(`${stack.adminUrl}/metrics`)).text()
    assert.match(metrics, /^bff_rate_limited_total\{route="\/bff\/global-token-revocation"\} 2$/m)
  })

  test('behind a proxy nobody named in BFF_TRUSTED_PROXIES, bffgate says once that every client shares one allowance', async (t) => {
    const stack = await startStack({ redis, env: { BFF_RATE_LIMIT_LOGIN: '50' } })
    t.after(() => stack.close())
    const warned = () => stack.logs.lines.filter((line) => line.event === 'rate_limit.proxy_not_trusted')
    assert.equal((await fetch(`${stack.url}/bff/login`, { redirect: 'manual' })).status, 302)
    assert.equal(warned().length, 0, 'a direct client is no sign of a proxy')
    for (let i = 0; i < 3; i++) {
      assert.equal(
        (
          await fetch(`${stack.url}/bff/login`, {
            redirect: 'manual',
            headers: { 'x-forwarded-for': `203.0.113.${i}` },
          })
        ).status,
        302,
      )
    }
    assert.equal(warned().length, 1)
    assert.equal(warned()[0]!.level, 40)
  })

  test('a browser navigating to a rate-limited /bff/login lands on the login error page with rate_limited, not on JSON', async (t) => {
    const stack = await startStack({ redis, env: { BFF_RATE_LIMIT_LOGIN: '1', BFF_LOGIN_ERROR_PATH: '/signed-out' } })
    t.after(() => stack.close())
    // A raw request: fetch would replace Sec-Fetch-Mode with its own.
    const navigate = (): Promise<IncomingMessage> =>
      new Promise((resolve, reject) => {
        httpGet(
          `${stack.url}/bff/login`,
          { headers: { 'sec-fetch-mode': 'navigate', 'sec-fetch-site': 'none', accept: 'text/html' } },
          (res) => {
            res.resume()
            resolve(res)
          },
        ).on('error', reject)
      })
    assert.equal((await navigate()).statusCode, 302)
    const refused = await navigate()
    assert.equal(refused.statusCode, 303)
    assert.equal(refused.headers.location, '/signed-out?login_error=rate_limited')
    assert.ok(Number(refused.headers['retry-after']) >= 1)
    // A programmatic caller still gets the JSON.
    const json = await fetch(`${stack.url}/bff/login`, { redirect: 'manual' })
    assert.equal(json.status, 429)
    assert.equal(((await json.json()) as { error: string }).error, 'rate_limited')
  })
})
