import assert from 'node:assert/strict'
import { createSecretKey } from 'node:crypto'
import { describe, test } from 'node:test'
import {
  CACHE_TTL_MAX_MS,
  CACHE_TTL_MIN_MS,
  createHandleCache,
  createOpenedRecords,
  HANDLE_CACHE_MAX,
  OPENED_RECORDS_MAX,
} from '../../../src/session/caches.ts'
import type { SessionHandle, SessionRecord } from '../../../src/session/types.ts'

const handle = (i: number): SessionHandle => ({
  storageKey: `s:{${i}}`,
  lockKey: `l:{${i}}`,
  recordKey: createSecretKey(Buffer.alloc(32, i % 256)),
})
const record = { sub: 'user' } as unknown as SessionRecord
/** A sealed record's shape as the cache sees it: IV first, GCM tag last. */
const sealing = (i: number): Buffer => Buffer.alloc(64, i % 256)

describe('session store caches: each has its own bound', () => {
  test('the handle cache holds 100,000 handles (sized for that many sessions in use) and never more', () => {
    assert.equal(HANDLE_CACHE_MAX, 100_000)
    const cache = createHandleCache(() => 0)
    for (let i = 0; i < HANDLE_CACHE_MAX + 5_000; i++) cache.set(`k${i}`, handle(i % 64))
    assert.equal(cache.size, HANDLE_CACHE_MAX)
    // The key set last is there: a set evicts a random entry among those before it. (Not "the
    // last 100": any of them may be that random victim of a later set, about 5 % of runs; the
    // eviction policy itself is tested with an injected random in bounded-map.test.ts.)
    assert.notEqual(cache.get(`k${HANDLE_CACHE_MAX + 4_999}`), undefined)
    const kept = Array.from({ length: HANDLE_CACHE_MAX + 5_000 }, (_, i) => cache.get(`k${i}`)).filter(Boolean)
    assert.equal(kept.length, HANDLE_CACHE_MAX, 'every entry it holds is one that was set')
  })

  test('opened records are bounded apart from the handles, to far fewer', () => {
    assert.ok(
      OPENED_RECORDS_MAX <= HANDLE_CACHE_MAX / 5,
      `${OPENED_RECORDS_MAX} records against ${HANDLE_CACHE_MAX} handles`,
    )
    const opened = createOpenedRecords(() => 0)
    const handles = Array.from({ length: OPENED_RECORDS_MAX + 2_000 }, (_, i) => handle(i))
    handles.forEach((h, i) => opened.remember(h, sealing(i), record))
    assert.equal(opened.size, OPENED_RECORDS_MAX)
    // The last one remembered is there; an evicted one is simply a miss.
    assert.equal(opened.get(handles.at(-1)!, sealing(handles.length - 1)), record)
    const misses = handles.filter((h, i) => opened.get(h, sealing(i)) === undefined).length
    assert.equal(misses, 2_000)
  })

  test('a smaller bound is honoured too, and a cached entry expires after 45 to 75 s', () => {
    let now = 0
    const cache = createHandleCache(() => now, 3)
    const opened = createOpenedRecords(() => now, 2)
    for (let i = 0; i < 10; i++) {
      cache.set(`k${i}`, handle(i))
      opened.remember(handle(i), sealing(i), record)
    }
    assert.equal(cache.size, 3)
    assert.equal(opened.size, 2)
    const h = handle(99)
    cache.set('fresh', h)
    opened.remember(h, sealing(99), record)
    assert.equal(cache.get('fresh'), h)
    assert.equal(opened.get(h, sealing(99)), record)
    assert.equal(opened.get(h, sealing(98)), undefined, 'another sealing under the same handle')
    now = CACHE_TTL_MIN_MS - 1
    assert.equal(cache.get('fresh'), h)
    assert.equal(opened.get(h, sealing(99)), record)
    now = CACHE_TTL_MAX_MS + 1
    assert.equal(cache.get('fresh'), undefined)
    assert.equal(opened.get(h, sealing(99)), undefined)
  })

  test('entries cached together do not all expire together (their lifetimes are spread over 45 to 75 s)', () => {
    let now = 0
    const cache = createHandleCache(() => now)
    const opened = createOpenedRecords(() => now)
    const handles = Array.from({ length: 1_000 }, (_, i) => handle(i))
    handles.forEach((h, i) => {
      cache.set(`k${i}`, h)
      opened.remember(h, sealing(i), record)
    })
    const kept = () => ({
      handles: handles.filter((_, i) => cache.get(`k${i}`) !== undefined).length,
      records: handles.filter((h, i) => opened.get(h, sealing(i)) !== undefined).length,
    })
    now = 55_000 // a third of the spread: about 333 of 1,000 gone, never none or all
    const early = kept()
    for (const count of [early.handles, early.records]) assert.ok(count > 500 && count < 850, `${count} kept at 55 s`)
    now = 65_000
    const late = kept()
    for (const count of [late.handles, late.records]) assert.ok(count > 150 && count < 500, `${count} kept at 65 s`)
  })

  test('an opened record is reused only for the very sealing: any byte of its IV or tag, or its length, changed is a miss', () => {
    const opened = createOpenedRecords(() => 0)
    const h = handle(7)
    const sealed = Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 37 + 11) % 256))
    opened.remember(h, sealed, record)
    assert.equal(opened.get(h, Buffer.from(sealed)), record, 'the same bytes in another buffer')
    const ivAndTag = [...Array.from({ length: 12 }, (_, i) => i), ...Array.from({ length: 16 }, (_, i) => 300 - 16 + i)]
    for (const at of ivAndTag)
      for (const flip of [0x01, 0x80]) {
        const other = Buffer.from(sealed)
        other[at]! ^= flip
        assert.equal(opened.get(h, other), undefined, `byte ${at} xor ${flip}`)
      }
    assert.equal(opened.get(h, sealed.subarray(0, 299)), undefined, 'one byte shorter')
    assert.equal(opened.get(h, Buffer.concat([sealed, Buffer.of(0)])), undefined, 'one byte longer')
    assert.equal(opened.get(handle(8), sealed), undefined, 'another handle')
  })
})
