import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  isSameOriginStream,
  nextCheckDelayMs,
  RECHECK_MAX_MS,
  RECHECK_MIN_MS,
  sessionEndedEvent,
  sessionExpiringEvent,
  silentEndReason,
} from '../../../src/session-events/messages.ts'

const ORIGIN = 'https://app.example.com'

test('issue 17 item 4: a session-events stream is for same-origin pages only (EventSource cannot send x-csrf)', () => {
  assert.equal(
    isSameOriginStream({}, ORIGIN),
    false,
    'no browser signal at all: refused, as a same-origin route refuses it',
  )
  assert.equal(
    isSameOriginStream({ origin: ORIGIN }, ORIGIN),
    true,
    'a browser without Fetch Metadata, from our origin',
  )
  assert.equal(isSameOriginStream({ 'sec-fetch-site': 'same-origin' }, ORIGIN), true)
  assert.equal(isSameOriginStream({ origin: ORIGIN, 'sec-fetch-site': 'same-origin' }, ORIGIN), true)
  for (const site of ['same-site', 'cross-site', 'none', 'SAME-ORIGIN', ''])
    assert.equal(isSameOriginStream({ 'sec-fetch-site': site }, ORIGIN), false, site)
  for (const origin of [
    'https://evil.example',
    'null',
    'https://app.example.com.evil.example',
    'http://app.example.com',
    `${ORIGIN}/`,
  ]) {
    assert.equal(isSameOriginStream({ origin, 'sec-fetch-site': 'same-origin' }, ORIGIN), false, origin)
  }
  assert.equal(
    isSameOriginStream({ 'sec-fetch-site': ['same-origin', 'same-origin'] }, ORIGIN),
    false,
    'a repeated header',
  )
})

test('issue 17 item 4: events are one JSON line with no token', () => {
  assert.equal(sessionEndedEvent('idle_timeout'), 'event: session-ended\ndata: {"reason":"idle_timeout"}\n\n')
  assert.equal(
    sessionExpiringEvent(1000, 700_000),
    'event: session-expiring\ndata: {"absoluteExpiresAt":1000,"secondsLeft":300}\n\n',
  )
  assert.equal(
    sessionExpiringEvent(1000, 1_200_000),
    'event: session-expiring\ndata: {"absoluteExpiresAt":1000,"secondsLeft":0}\n\n',
  )
})

test('issue 17 item 4: a stream looks again at its next deadline, at least once a minute, never in a tight loop', () => {
  assert.equal(nextCheckDelayMs({ endsAtMs: 10_000, absoluteEndsAtMs: 20_000 }, 0), 10_000)
  assert.equal(nextCheckDelayMs({ endsAtMs: 10_000, absoluteEndsAtMs: 20_000, warnAtMs: 5000 }, 0), 5000)
  assert.equal(nextCheckDelayMs({ endsAtMs: 10_000_000, absoluteEndsAtMs: 20_000_000 }, 0), RECHECK_MAX_MS)
  assert.equal(nextCheckDelayMs({ endsAtMs: 100, absoluteEndsAtMs: 200 }, 150), RECHECK_MIN_MS)
})

test('issue 17 item 4: a session gone without an announcement ended by its absolute or idle deadline, or by something missed', () => {
  const deadlines = { endsAtMs: 10_000, absoluteEndsAtMs: 20_000 }
  assert.equal(silentEndReason(deadlines, 20_000), 'absolute_timeout')
  assert.equal(silentEndReason(deadlines, 10_100), 'idle_timeout')
  assert.equal(silentEndReason(deadlines, 9_500), 'idle_timeout', 'within the tolerance of two clocks')
  assert.equal(silentEndReason(deadlines, 5_000), 'ended')
})
