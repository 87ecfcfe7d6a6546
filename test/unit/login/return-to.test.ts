import assert from 'node:assert/strict'
import { test } from 'node:test'
import * as fc from 'fast-check'
import { safeReturnTo } from '../../../src/login/return-to.ts'

const origin = 'https://app.example.com'

test('same-origin paths are kept with their query and fragment', () => {
  assert.equal(safeReturnTo('/orders/42?tab=items#top', origin), '/orders/42?tab=items#top')
  assert.equal(safeReturnTo('/', origin), '/')
})

test('open-redirect attempts fall back to /', () => {
  for (const attack of [
    'https://evil.example/',
    '//evil.example/path',
    '/\\evil.example',
    '\\\\evil.example',
    'javascript:alert(1)',
    '/\t/evil.example',
    '\n//evil.example',
    'evil.example',
    '',
    ' /x',
    '/x\u0000',
    `/${'a'.repeat(3000)}`,
    undefined,
    42,
    ['/a'],
    'https://app.example.com.evil.example/',
    'http://app.example.com/',
  ]) {
    assert.equal(safeReturnTo(attack, origin), '/', JSON.stringify(attack))
  }
  // An encoded newline is an ordinary path segment here: kept, still on our origin.
  assert.equal(safeReturnTo('/%0a/evil.example', origin), '/%0a/evil.example')
  assert.equal(new URL('/%0a/evil.example', origin).origin, origin)
})

test('dot segments are resolved inside the origin', () => {
  assert.equal(safeReturnTo('/a/../../b', origin), '/b')
})

test('issue 13 item 1: dot segments that resolve to a protocol-relative path fall back to /', () => {
  for (const attack of [
    '/.//evil.example/x',
    '/..//evil.example',
    '/%2e//evil.example',
    '/a/..//evil.example',
    '/%2E%2e//evil.example',
    '/././/evil.example',
    '/.../..//evil.example',
    '/a/b/../..//evil.example',
    '/..///evil.example',
    '/.%2e//evil.example',
  ]) {
    assert.equal(safeReturnTo(attack, origin), '/', attack)
  }
  // Encoded separators stay encoded: a path on our origin, not another host.
  assert.equal(safeReturnTo('/%2e%2f/evil.example', origin), '/%2e%2f/evil.example')
  assert.equal(safeReturnTo('/%5c%5cevil.example', origin), '/%5c%5cevil.example')
})

test('issue 13 item 1 (property): no input yields a Location that leaves the origin', () => {
  // Pieces attackers combine: separators raw and encoded (once and twice), dots raw, encoded and
  // look-alike, characters browsers strip or rewrite, userinfo and port markers, hosts.
  const piece = fc.constantFrom(
    '/',
    '//',
    '\\',
    '.',
    '..',
    '%2e',
    '%2E',
    '%252e',
    '%2f',
    '%2F',
    '%252f',
    '%5c',
    '%5C',
    '%255c',
    '\t',
    '\n',
    '\r',
    ' ',
    '\u0000',
    '\u007f',
    '\u00a0',
    '\u3002',
    '\uff0e',
    '\uff0f',
    '\uff3c',
    '\u2024',
    '\u2215',
    '?',
    '#',
    '@',
    ':',
    ';',
    '%00',
    '%0a',
    '%09',
    'evil.example',
    'http:',
    'https:',
    'javascript:',
    'a',
    'app.example.com',
    '\u00e9',
  )
  const attack = fc.oneof(
    fc.array(piece, { maxLength: 12 }).map((parts) => parts.join('')),
    fc.array(piece, { maxLength: 12 }).map((parts) => `/${parts.join('')}`),
    fc.string({ unit: 'grapheme', maxLength: 40 }),
    fc.string({ unit: 'binary', maxLength: 40 }),
  )
  fc.assert(
    fc.property(attack, (value) => {
      const location = safeReturnTo(value, origin)
      // The browser resolves Location against the URL it requested (the callback).
      assert.equal(new URL(location, `${origin}/bff/callback`).origin, origin, `${JSON.stringify(value)} → ${location}`)
      assert.ok(
        location.startsWith('/') && !location.startsWith('//') && !location.startsWith('/\\'),
        `${JSON.stringify(value)} → ${location}`,
      )
      // A header value: no control characters, nothing a browser would strip and re-read.
      // oxlint-disable-next-line no-control-regex
      assert.doesNotMatch(location, /[\u0000-\u0020\u007f-\uffff\\]/, JSON.stringify(value))
    }),
    { numRuns: 20_000 },
  )
})
