import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import { createReadBatcher, type SessionEntry } from '../../src/session/read-batcher.ts'
import { freePort, startTestRedis, type TestRedis } from '../helpers/redis.ts'

let redis: TestRedis
before(async () => {
  redis = await startTestRedis()
})
after(() => redis.stop())

/** Every command Redis receives on keys under `prefix`, as `[name, ...keys]`, while `work` runs. */
async function commandsDuring(prefix: string, work: () => Promise<unknown>): Promise<string[][]> {
  const monitor = await redis.client().monitor()
  const seen: string[][] = []
  monitor.on('monitor', (_time: string, args: string[]) => {
    if (args.slice(1).some((arg) => arg.startsWith(prefix)))
      seen.push(args.map((a, i) => (i === 0 ? a.toLowerCase() : a)))
  })
  try {
    await work()
    await sleep(100) // MONITOR's lines arrive on their own connection
  } finally {
    monitor.disconnect()
  }
  return seen
}

const observed: { seconds: number; outcome: string }[] = []
const batcherOn = (client: Redis) =>
  createReadBatcher(client, {
    // The entry holds the value itself, so each read can be matched to its key.
    entryOf: (value) => (value === null ? undefined : { sealed: value, ttlMs: 1 }),
    observe: (seconds, outcome) => observed.push({ seconds, outcome }),
    failure: (err) => new Error('store unavailable', { cause: err }),
  })
const valueOf = (entry: SessionEntry | undefined) => entry?.sealed.toString()

test('reads made in one turn go to Redis as one MGET, each answered with its own key, missing keys as none', async () => {
  const client = redis.client()
  const prefix = redis.prefix()
  await client.mset(`${prefix}a`, 'A', `${prefix}c`, 'C', `${prefix}e`, Buffer.from([0, 255, 10]))
  const read = batcherOn(client)
  observed.length = 0
  let values: (string | undefined)[] = []
  const commands = await commandsDuring(prefix, async () => {
    values = (await Promise.all(['a', 'b', 'c', 'd', 'a'].map((k) => read(prefix + k)))).map(valueOf)
  })
  assert.deepEqual(values, ['A', undefined, 'C', undefined, 'A'])
  assert.deepEqual(commands, [['mget', ...['a', 'b', 'c', 'd', 'a'].map((k) => prefix + k)]])
  // Binary values come back byte for byte.
  assert.deepEqual([...(await read(`${prefix}e`))!.sealed], [0, 255, 10])
  assert.equal(observed.filter((o) => o.outcome === 'ok').length, 6)
})

test('a read alone is a plain GET; reads of a later turn are a batch of their own', async () => {
  const client = redis.client()
  const prefix = redis.prefix()
  await client.set(`${prefix}x`, 'X')
  const read = batcherOn(client)
  const commands = await commandsDuring(prefix, async () => {
    assert.equal(valueOf(await read(`${prefix}x`)), 'X')
    const first = read(`${prefix}x`)
    await new Promise((resolve) => setImmediate(resolve)) // the first batch has gone out
    const second = Promise.all([read(`${prefix}x`), read(`${prefix}y`)])
    assert.equal(valueOf(await first), 'X')
    assert.deepEqual((await second).map(valueOf), ['X', undefined])
  })
  assert.deepEqual(commands, [
    ['get', `${prefix}x`],
    ['get', `${prefix}x`],
    ['mget', `${prefix}x`, `${prefix}y`],
  ])
})

test('when Redis cannot answer, every read of the batch fails with the store error (never "no session")', async () => {
  // A client whose Redis is gone: commands fail at once instead of waiting in a queue.
  const client = new Redis({
    port: await freePort(),
    lazyConnect: true,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  })
  const read = batcherOn(client)
  observed.length = 0
  for (const batch of [['k1'], ['k1', 'k2', 'k3']]) {
    const results = await Promise.allSettled(batch.map((k) => read(k)))
    for (const result of results) {
      assert.equal(result.status, 'rejected')
      assert.equal((result.reason as Error).message, 'store unavailable')
    }
  }
  assert.deepEqual(
    observed.map((o) => o.outcome),
    ['error', 'error', 'error', 'error'],
  )
  client.disconnect()
})
