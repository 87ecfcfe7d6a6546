import assert from 'node:assert/strict'
import { test } from 'node:test'
import * as fc from 'fast-check'
import { privateForSharedCaches } from '../../../src/proxy/upstream-headers.ts'

const marked = (value?: string | string[]) =>
  privateForSharedCaches(value === undefined ? {} : { 'cache-control': value })['cache-control']

test('issue 13 item 10: private is added, the browser-cache directives kept, the shared-cache ones dropped', () => {
  assert.equal(marked(), 'private')
  assert.equal(marked('max-age=60'), 'private, max-age=60')
  assert.equal(marked('public, max-age=60, s-maxage=600, proxy-revalidate'), 'private, max-age=60')
  assert.equal(marked('private="set-cookie", no-cache="a, b", immutable'), 'private, no-cache="a, b", immutable')
  assert.equal(marked(['public', 'max-age=5']), 'private, max-age=5')
  assert.equal(marked('must-understand, no-store'), 'private, must-understand, no-store')
})

test('issue 13 item 10: an upstream that said private or no-store is left alone', () => {
  assert.equal(marked('no-store'), 'no-store')
  assert.equal(marked('Private, max-age=5'), 'Private, max-age=5')
  assert.deepEqual(marked(['no-cache', 'NO-STORE']), ['no-cache', 'NO-STORE'])
})

test('issue 13 item 10: CDN-targeted fields go, others stay', () => {
  const headers = privateForSharedCaches({
    'cdn-cache-control': 'max-age=9',
    'fastly-cdn-cache-control': 'max-age=9',
    'surrogate-control': 'max-age=9',
    'edge-control': 'x',
    expires: 'e',
    etag: '"1"',
  })
  assert.deepEqual(headers, { 'cache-control': 'private', expires: 'e', etag: '"1"' })
})

test('issue 13 item 10 (property): the result is never storable by a shared cache, and marking twice changes nothing', () => {
  const directive = fc.constantFrom(
    'public',
    'private',
    'PRIVATE',
    'private="x"',
    'no-store',
    'must-understand',
    'no-cache',
    'no-cache="a, b"',
    'max-age=60',
    's-maxage=9',
    'S-MaxAge=9',
    'proxy-revalidate',
    'must-revalidate',
    'immutable',
    'x="a,private"',
    '',
  )
  fc.assert(
    fc.property(fc.array(directive, { maxLength: 6 }), (list) => {
      const once = marked(list.join(', '))!
      const names = String(once)
        .toLowerCase()
        .split(/\s*,\s*/)
      const noStore = names.includes('no-store') && !names.includes('must-understand')
      assert.ok(names.includes('private') || noStore, `${list.join(', ')} → ${String(once)}`)
      if (!noStore) assert.ok(!names.includes('public') && !names.some((n) => n.startsWith('s-maxage')), String(once))
      assert.deepEqual(marked(once), once)
    }),
    { numRuns: 5000 },
  )
})

test('values are worked out once and remembered: past the memory bound (256 values) and back, each still gets its own answer', () => {
  for (const round of [0, 1])
    for (let n = 0; n < 600; n++) {
      const age = round === 0 ? n : 599 - n
      assert.equal(marked(`public, max-age=${age}`), `private, max-age=${age}`)
      assert.equal(marked(`private, max-age=${age}`), `private, max-age=${age}`)
    }
})
