import assert from 'node:assert/strict'
import { test } from 'node:test'
import { safeReturnTo } from '../../../src/gateway/return-to.ts'

const origin = 'https://app.example.com'

test('same-origin paths are kept with their query and fragment', () => {
  assert.equal(safeReturnTo('/orders/42?tab=items#top', origin), '/orders/42?tab=items#top')
  assert.equal(safeReturnTo('/', origin), '/')
})

test('open-redirect attempts fall back to /', () => {
  for (const attack of [
    'https://evil.example/', '//evil.example/path', '/\\evil.example', '\\\\evil.example', 'javascript:alert(1)',
    '/\t/evil.example', '\n//evil.example', 'evil.example', '', ' /x', '/x\u0000', `/${'a'.repeat(3000)}`,
    undefined, 42, ['/a'], 'https://app.example.com.evil.example/', 'http://app.example.com/',
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
