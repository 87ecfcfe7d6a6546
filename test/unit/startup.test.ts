import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { backoffDelayMs, describeFailure, describeRedisTarget, retryUntilDeadline } from '../../src/startup.ts'

describe('start-up retries', () => {
  test('the backoff doubles from 0.5 s and stays at 5 s', () => {
    assert.deepEqual([1, 2, 3, 4, 5, 6, 10].map(backoffDelayMs), [500, 1000, 2000, 4000, 5000, 5000, 5000])
  })

  test('transient failures are retried until success; the waits follow the backoff', async () => {
    let clock = 0
    const waits: number[] = []
    let calls = 0
    const result = await retryUntilDeadline(
      async () => {
        if (++calls < 4) throw new Error('down')
        return 'up'
      },
      {
        deadline: 60_000,
        isTransient: () => true,
        onRetry: (_err, ms) => waits.push(ms),
        now: () => clock,
        sleep: async (ms) => {
          clock += ms
        },
      },
    )
    assert.equal(result, 'up')
    assert.deepEqual(waits, [500, 1000, 2000])
  })

  test('a final failure is not retried, and retries stop before the deadline would pass', async () => {
    let calls = 0
    await assert.rejects(
      retryUntilDeadline(
        async () => {
          calls++
          throw new Error('wrong issuer')
        },
        { deadline: 60_000, isTransient: () => false, onRetry: () => {}, now: () => 0, sleep: async () => {} },
      ),
      /wrong issuer/,
    )
    assert.equal(calls, 1)
    let clock = 0
    calls = 0
    await assert.rejects(
      retryUntilDeadline(
        async () => {
          calls++
          throw new Error('down')
        },
        {
          deadline: 4000,
          isTransient: () => true,
          onRetry: () => {},
          now: () => clock,
          sleep: async (ms) => {
            clock += ms
          },
        },
      ),
      /down/,
    )
    assert.equal(calls, 4, '0 + 0.5 + 1 + 2 s = 3.5 s; the next wait (4 s) would pass the 4 s deadline')
  })
})

describe('start-up messages', () => {
  test('the Redis target is named by the variable that configures it, without credentials', () => {
    assert.equal(
      describeRedisTarget({ url: 'rediss://user:pw@redis.internal:6380/2', keyPrefix: 'bff:' }),
      '"BFF_REDIS_URL" (rediss://redis.internal:6380/2)',
    )
    assert.equal(
      describeRedisTarget({
        url: 'redis://x',
        keyPrefix: 'bff:',
        sentinel: {
          nodes: [
            { host: 's1', port: 26379 },
            { host: 's2', port: 26379 },
          ],
          masterName: 'mymaster',
        },
      }),
      '"BFF_REDIS_SENTINELS" (s1:26379, s2:26379, master "mymaster" from "BFF_REDIS_SENTINEL_MASTER_NAME")',
    )
    assert.equal(
      describeRedisTarget({ url: 'redis://x', keyPrefix: 'bff:', cluster: { nodes: [{ host: 'c1', port: 7000 }] } }),
      '"BFF_REDIS_CLUSTER_NODES" (c1:7000)',
    )
  })

  test('the system error behind a wrapped failure is named with its address', () => {
    const system = Object.assign(new Error('connect ECONNREFUSED 10.0.0.5:4000'), {
      code: 'ECONNREFUSED',
      address: '10.0.0.5',
      port: 4000,
    })
    assert.equal(
      describeFailure(new TypeError('fetch failed', { cause: system })),
      'connect ECONNREFUSED 10.0.0.5:4000',
    )
    const dns = Object.assign(new Error('getaddrinfo ENOTFOUND idp.internal'), {
      code: 'ENOTFOUND',
      hostname: 'idp.internal',
    })
    assert.equal(
      describeFailure(new Error('outer', { cause: new TypeError('fetch failed', { cause: dns }) })),
      'getaddrinfo ENOTFOUND idp.internal',
    )
    const both = new AggregateError([
      Object.assign(new Error('a'), { code: 'ECONNREFUSED', address: '::1', port: 80 }),
      Object.assign(new Error('b'), { code: 'ECONNREFUSED', address: '127.0.0.1', port: 80 }),
    ])
    assert.equal(
      describeFailure(new TypeError('fetch failed', { cause: both })),
      'ECONNREFUSED ::1:80, ECONNREFUSED 127.0.0.1:80',
    )
  })
})
