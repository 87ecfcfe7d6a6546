/**
 * A map of at most `max` entries that, when full, evicts a random entry to make room.
 *
 * Not FIFO or LRU: both evict exactly the entry that a cyclic access pattern needs next, so
 * once the sessions in use outnumber the entries by one (10,001 over 10,000) every lookup
 * misses. Random eviction degrades gently instead: near 100 % of lookups still hit just past
 * the bound. Far past it (a cycle over ten times the bound) no policy keeps much. `random` is
 * injectable for tests.
 */
export class RandomEvictionMap<K, V> {
  readonly #max: number
  readonly #random: () => number
  readonly #entries = new Map<K, { value: V; slot: number }>()
  /** The keys, densely packed, so a random one is picked in O(1). */
  readonly #slots: K[] = []

  constructor(max: number, random: () => number = Math.random) {
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`max must be a whole number of at least 1, not ${max}`)
    this.#max = max
    this.#random = random
  }

  get size(): number {
    return this.#entries.size
  }

  get(key: K): V | undefined {
    return this.#entries.get(key)?.value
  }

  set(key: K, value: V): void {
    const existing = this.#entries.get(key)
    if (existing !== undefined) {
      existing.value = value
      return
    }
    if (this.#slots.length >= this.#max) {
      // Reuse a random victim's slot for the new key.
      const slot = Math.floor(this.#random() * this.#slots.length)
      this.#entries.delete(this.#slots[slot]!)
      this.#slots[slot] = key
      this.#entries.set(key, { value, slot })
      return
    }
    this.#entries.set(key, { value, slot: this.#slots.length })
    this.#slots.push(key)
  }

  delete(key: K): void {
    const entry = this.#entries.get(key)
    if (entry === undefined) return
    this.#entries.delete(key)
    // Move the last key into the freed slot, keeping the slots dense.
    const last = this.#slots.pop()!
    if (entry.slot < this.#slots.length) {
      this.#slots[entry.slot] = last
      this.#entries.get(last)!.slot = entry.slot
    }
  }
}
