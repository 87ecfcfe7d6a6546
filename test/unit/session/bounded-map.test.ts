import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { RandomEvictionMap } from '../../../src/session/bounded-map.ts'

/** A seeded generator (mulberry32), so the test is repeatable. */
function seeded(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Hit rate of a cache of `max` over `passes` round-robin passes of `keys` keys (a miss inserts). */
function cyclicHitRate(max: number, keys: number, passes: number): { rate: number; maxSize: number } {
  const map = new RandomEvictionMap<number, number>(max, seeded(7))
  let hits = 0
  let lookups = 0
  let maxSize = 0
  for (let pass = 0; pass < passes; pass++) {
    for (let k = 0; k < keys; k++) {
      if (pass > 0) lookups += 1
      if (map.get(k) === k) {
        if (pass > 0) hits += 1
      } else map.set(k, k)
      maxSize = Math.max(maxSize, map.size)
    }
  }
  return { rate: hits / lookups, maxSize }
}

describe('RandomEvictionMap', () => {
  test('never holds more than its bound', () => {
    const { maxSize } = cyclicHitRate(100, 10_000, 2)
    assert.equal(maxSize, 100)
  })

  test('keeps hitting when the keys in use outnumber the bound by a little (FIFO and LRU miss every time)', () => {
    assert.ok(cyclicHitRate(1000, 1001, 5).rate > 0.95)
    assert.ok(cyclicHitRate(1000, 1100, 5).rate > 0.6)
  })

  test('get, set, update and delete keep the slots consistent', () => {
    const map = new RandomEvictionMap<string, number>(3, seeded(1))
    map.set('a', 1)
    map.set('b', 2)
    map.set('c', 3)
    map.set('b', 20)
    assert.equal(map.get('b'), 20)
    assert.equal(map.size, 3)
    map.delete('a')
    map.delete('a')
    assert.equal(map.size, 2)
    assert.equal(map.get('a'), undefined)
    map.set('d', 4)
    assert.deepEqual(
      ['b', 'c', 'd'].map((k) => map.get(k)),
      [20, 3, 4],
    )
    map.set('e', 5)
    assert.equal(map.size, 3)
    assert.equal(map.get('e'), 5)
    assert.equal(['b', 'c', 'd'].filter((k) => map.get(k) !== undefined).length, 2)
    for (const k of ['b', 'c', 'd', 'e']) map.delete(k)
    assert.equal(map.size, 0)
    assert.throws(() => new RandomEvictionMap(0), RangeError)
  })
})
