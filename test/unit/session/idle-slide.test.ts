import assert from 'node:assert/strict'
import { test } from 'node:test'
import { MAX_SLIDE_INTERVAL_MS, slideIntervalMs } from '../../../src/session/idle-slide.ts'

test('a session slides once per hundredth of its idle timeout, between 1 s and 15 minutes', () => {
  const cases: [idleSeconds: number, intervalMs: number][] = [
    [1, 1000],
    [2, 1000],
    [100, 1000],
    [600, 6000],
    [3600, 36_000],
    [86_400, 864_000],
    [90_000, MAX_SLIDE_INTERVAL_MS],
    [259_200, MAX_SLIDE_INTERVAL_MS], // the 3-day default
    [2_592_000, MAX_SLIDE_INTERVAL_MS],
  ]
  for (const [idleSeconds, intervalMs] of cases)
    assert.equal(slideIntervalMs(idleSeconds * 1000), intervalMs, `idle ${idleSeconds} s`)
  assert.equal(MAX_SLIDE_INTERVAL_MS, 15 * 60_000)
  // Early by at most 1 % of the idle timeout, whenever the interval is not the 1 s floor.
  for (let idleSeconds = 100; idleSeconds <= 3_000_000; idleSeconds *= 3)
    assert.ok(slideIntervalMs(idleSeconds * 1000) <= idleSeconds * 10, `idle ${idleSeconds} s`)
})
