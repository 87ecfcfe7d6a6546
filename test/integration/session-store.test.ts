import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { createKeyNames } from '../../src/session/keys.ts'
import { createKeyring } from '../../src/session/keyring.ts'
import { createMemoryBackend } from '../../src/session/memory-backend.ts'
import { createRedisBackend } from '../../src/session/redis-backend.ts'
import { deadlineBytes, decodeSessionValue, encodeSessionValue, sealedRecordOf } from '../../src/session/value-codec.ts'
import { createSessionStore } from '../../src/session/store.ts'
import { runSessionStoreContract, sampleRecord, SECRET_A } from '../contracts/session-store.contract.ts'
import { dumpRedis, startTestRedis, type TestRedis } from '../helpers/redis.ts'

let redis: TestRedis
before(async () => {
  redis = await startTestRedis()
})
after(() => redis.stop())

runSessionStoreContract('redis', async ({ idleSeconds, secrets = [SECRET_A], prefix }) => {
  const client = redis.client()
  const keyPrefix = prefix ?? redis.prefix()
  const keys = createKeyNames(keyPrefix)
  const backend = createRedisBackend(client, { removedChannel: keys.removedChannel })
  const store = createSessionStore({ backend, keyring: createKeyring(secrets), keys, idleSeconds })
  return {
    store,
    dump: async () => (await dumpRedis(client, keyPrefix)).values,
    subIndex: (iss, sub) => backend.members(keys.subIndex(iss, sub)),
  }
})

// One memory backend for the whole file: stores made with the same prefix share sessions.
const memory = createMemoryBackend()
after(() => memory.close())
runSessionStoreContract('memory', async ({ idleSeconds, secrets = [SECRET_A], prefix }) => {
  const keys = createKeyNames(prefix ?? `m${Math.random()}:`)
  const store = createSessionStore({
    backend: { ...memory, close: async () => {} },
    keyring: createKeyring(secrets),
    keys,
    idleSeconds,
  })
  return { store, subIndex: (iss, sub) => memory.members(keys.subIndex(iss, sub)) }
})

describe('redis session layout', () => {
  test('a session is one string (deadline, index keys, sealed record) read with one GET; indexes are hashes of session keys', async (t) => {
    const client = redis.client()
    const keyPrefix = redis.prefix()
    const keys = createKeyNames(keyPrefix)
    const backend = createRedisBackend(client, { removedChannel: keys.removedChannel })
    const store = createSessionStore({ backend, keyring: createKeyring([SECRET_A]), keys, idleSeconds: 60 })
    t.after(() => store.close())
    const { cookieValue } = await store.create(sampleRecord())
    const [key] = await client.keys(`${keyPrefix}session:*`)
    assert.ok(key !== undefined)
    assert.equal(await client.type(key), 'string')
    const value = decodeSessionValue((await client.getBuffer(key))!)!
    assert.ok(
      Math.abs(value.deadlineMs - (Date.now() + (await client.pttl(key)))) < 1000,
      "the deadline matches the key's lifetime",
    )
    assert.equal(value.indexKeys.length, 2)
    for (const index of value.indexKeys) {
      assert.equal(await client.type(index), 'hash')
      assert.deepEqual(await client.hkeys(index), [key])
    }

    // As if 30 s had passed: sliding then sets the deadline and the lifetime together.
    await client.setrange(key, 1, deadlineBytes(Date.now() + 30_000))
    await client.pexpire(key, 30_000)
    assert.ok((await store.load(cookieValue, { slide: false }))!.expiresIn <= 30)
    const slid = await store.load(cookieValue, { slide: true })
    assert.ok(slid!.expiresIn > 55, `expiresIn ${slid!.expiresIn}`)
    assert.ok(decodeSessionValue((await client.getBuffer(key))!)!.deadlineMs > Date.now() + 55_000)
    assert.ok((await client.pttl(key)) > 55_000)
    // A slide that comes after the session ended (elsewhere) never recreates it.
    await client.del(key)
    await backend.expire(key, value.indexKeys, 60_000)
    assert.equal(await client.exists(key), 0)
  })

  test('session values round-trip, and anything else reads as no session', () => {
    const sealed = Buffer.from('sealed-bytes')
    const value = { deadlineMs: 1_795_000_000_123, indexKeys: ['p:bysub:abc', 'p:bysid:déf'], sealed }
    assert.deepEqual(decodeSessionValue(encodeSessionValue(value)), value)
    for (const bad of [Buffer.alloc(0), Buffer.from('{"json":1}'), Buffer.of(1, 0, 0, 0, 0, 0, 1, 3, 200)]) {
      assert.equal(decodeSessionValue(bad), undefined, bad.toString('hex'))
    }
    assert.throws(() => encodeSessionValue({ ...value, indexKeys: ['x'.repeat(256)] }), /BFF_REDIS_KEY_PREFIX/)
  })

  test("a read's decoder (deadline and sealed record only) agrees with the full one on every value and on every cut of one", () => {
    const sealed = Buffer.from('sealed-bytes')
    const values = [
      encodeSessionValue({ deadlineMs: 1_795_000_000_123, indexKeys: ['p:bysub:abc', 'p:bysid:déf'], sealed }),
      encodeSessionValue({ deadlineMs: 5, indexKeys: [], sealed }),
      encodeSessionValue({ deadlineMs: 7, indexKeys: ['i'], sealed, fingerprint: Buffer.alloc(16, 1) }),
      encodeSessionValue({ deadlineMs: 9, indexKeys: ['a', 'b'], sealed: Buffer.alloc(0) }),
    ]
    // Every prefix of every value (a truncated or foreign value), and a few that are no value at all.
    const inputs = [
      ...values.flatMap((value) => Array.from({ length: value.length + 1 }, (_, n) => value.subarray(0, n))),
      Buffer.from('{"json":1}'),
      Buffer.of(2, ...values[0]!.subarray(1)),
    ]
    for (const input of inputs) {
      const full = decodeSessionValue(input)
      const read = sealedRecordOf(input)
      assert.deepEqual(
        read,
        full === undefined ? undefined : { deadlineMs: full.deadlineMs, sealed: full.sealed },
        input.toString('hex'),
      )
    }
  })

  test('issue 13 item 2: the refresh-token fingerprint rides in the layout every release reads', () => {
    const sealed = Buffer.from('sealed-bytes')
    const fingerprint = Buffer.alloc(16, 0xab)
    const value = { deadlineMs: 1_795_000_000_123, indexKeys: ['p:bysub:abc', 'p:bysid:déf'], sealed, fingerprint }
    const encoded = encodeSessionValue(value)
    assert.deepEqual(decodeSessionValue(encoded), value)
    // A replica of an earlier release (layout 1, no fingerprint) still finds the deadline and
    // the very sealed record: the fingerprint is one more entry of the index list.
    assert.equal(encoded[0], 1)
    let offset = 8
    for (let i = 0; i < encoded[7]!; i++) offset += 1 + encoded[offset]!
    assert.deepEqual(encoded.subarray(offset), sealed)
    assert.equal(encoded[7], 3)
  })
})
