import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { startDevTransmitter, type DevTransmitter } from '../../dev/ssf/transmitter.ts'
import type { Browser } from '../helpers/browser.ts'
import { startTestRedis, type TestRedis } from '../helpers/redis.ts'
import { startReplica, type Replica } from '../helpers/replica.ts'
import { startStack, type Stack, sessionCookieHeader } from '../helpers/stack.ts'

// The poll lease: when the replica that polls dies, another takes over once its lease lapses.
const STREAM_AUDIENCE = 'https://bffgate.test/ssf-stream'
let redis: TestRedis
let transmitter: DevTransmitter
let stack: Stack
let pollEnv: Record<string, string>
const started: Replica[] = []

before(async () => {
  redis = await startTestRedis()
  transmitter = await startDevTransmitter({ audience: STREAM_AUDIENCE })
  // The in-process gateway only logs users in; the pollers are separate processes.
  stack = await startStack({ redis })
  transmitter.userIssuer = stack.idp.issuer
  pollEnv = {
    ...stack.env,
    BFF_LOG_LEVEL: 'warn',
    BFF_SSF_DELIVERY: 'poll',
    BFF_SSF_ISSUER: transmitter.issuer,
    BFF_SSF_AUDIENCE: STREAM_AUDIENCE,
    BFF_SSF_POLL_URL: transmitter.pollUrl,
    BFF_SSF_POLL_AUTHORIZATION: transmitter.pollAuthorization,
  }
})
after(async () => {
  await Promise.all(started.map((r) => r.kill()))
  await stack?.close()
  await transmitter?.close()
  await redis?.stop()
})

const cookieOf = (browser: Browser) => sessionCookieHeader(stack, browser)
const userStatus = async (cookie: string) => (await fetch(`${stack.url}/bff/user`, { headers: { cookie } })).status

async function waitFor(check: () => Promise<boolean> | boolean, ms: number): Promise<number> {
  const t0 = performance.now()
  while (!(await check())) {
    if (performance.now() - t0 > ms) throw new Error(`not within ${ms} ms`)
    await sleep(50)
  }
  return performance.now() - t0
}

test('when the polling replica is killed, another replica takes the lease over and carries out queued events', async () => {
  const first = await startReplica(pollEnv)
  started.push(first)
  await waitFor(() => transmitter.polls().total > 0, 10_000)
  const second = await startReplica(pollEnv)
  started.push(second)
  const pollsBefore = transmitter.polls().total
  await sleep(1500)
  assert.equal(transmitter.polls().total, pollsBefore, 'the second replica polled while the first held the lease')

  await first.kill()
  const cookie = cookieOf((await stack.login()).browser)
  transmitter.enqueue(await transmitter.sessionRevoked('user-alice'))
  // The dead holder's lease lapses within 10 s; then the second replica polls.
  const took = await waitFor(async () => (await userStatus(cookie)) === 401, 20_000)
  assert.ok(took < 15_000, `took ${took.toFixed(0)} ms`)
  await waitFor(() => transmitter.pending().length === 0, 5000)
  assert.equal(transmitter.polls().maxConcurrent, 1)
})
