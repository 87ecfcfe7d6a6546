import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { createKeyNames } from '../../src/session/keys.ts'
import { createKeyring } from '../../src/session/keyring.ts'
import { createRedisBackend } from '../../src/session/redis-backend.ts'
import { createSessionStore } from '../../src/session/store.ts'
import { sampleRecord, SECRET_A } from '../contracts/session-store.contract.ts'
import { startTestRedis, type TestRedis } from '../helpers/redis.ts'

// A file of its own: it measures this process's ArrayBuffer memory, which other tests running
// beside it would move by megabytes.
let redis: TestRedis
before(async () => {
  redis = await startTestRedis()
})
after(() => redis.stop())

describe('memory', () => {
  test('sessions this process opened keep no shared Buffer pool slabs alive (a 28-byte slice pinned 8 KiB each)', async (t) => {
    setFlagsFromString('--expose-gc')
    const runGc = runInNewContext('gc') as () => void
    // V8 frees ArrayBuffer backing stores on a concurrent sweeper task after the collection, so
    // `arrayBuffers` can lag behind a gc() on a busy machine: collect, let the sweeper run, again.
    const gc = async (): Promise<void> => {
      runGc()
      await sleep(100)
      runGc()
      await sleep(100)
    }
    const keys = createKeyNames(redis.prefix())
    const store = createSessionStore({
      backend: createRedisBackend(redis.client(), { removedChannel: keys.removedChannel }),
      keyring: createKeyring([SECRET_A]),
      keys,
      idleSeconds: 60,
    })
    t.after(() => store.close())
    await gc()
    const baseline = process.memoryUsage().arrayBuffers
    const cookies: string[] = []
    // One at a time, as logins come: each one's garbage lands between two cached records.
    for (let i = 0; i < 2000; i++) cookies.push((await store.create(sampleRecord({ sub: `user-${i}` }))).cookieValue)
    for (const cookie of cookies) assert.ok(await store.load(cookie, { slide: false }))
    await gc()
    const grown = process.memoryUsage().arrayBuffers - baseline
    // Unpooled, the 2,000 cached fingerprints take ~60 KB; pooled, they kept ~40 MiB of slabs alive.
    assert.ok(
      grown < 4 * 1024 * 1024,
      `ArrayBuffer memory grew by ${Math.round(grown / 1024)} KiB for 2,000 cached sessions`,
    )
  })
})
