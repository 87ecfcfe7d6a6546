import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { checkCsrf, checkRouteCsrf } from '../../../src/http/csrf-policy.ts'

const origin = 'https://app.example.com'

test('a same-origin call with x-csrf: 1 passes, with or without fetch metadata', () => {
  assert.equal(checkCsrf({ 'x-csrf': '1' }, origin), 'ok')
  assert.equal(checkCsrf({ 'x-csrf': '1', origin, 'sec-fetch-site': 'same-origin' }, origin), 'ok')
})

test('a call without the header is refused', () => {
  assert.equal(checkCsrf({}, origin), 'header_missing')
  assert.equal(checkCsrf({ 'x-csrf': '0' }, origin), 'header_missing')
  assert.equal(checkCsrf({ 'x-csrf': ['1', '1'] }, origin), 'header_missing')
})

test('a cross-site origin or fetch-metadata value is refused even with the header', () => {
  assert.equal(checkCsrf({ 'x-csrf': '1', origin: 'https://evil.example' }, origin), 'cross_site')
  assert.equal(checkCsrf({ 'x-csrf': '1', origin: 'null' }, origin), 'cross_site')
  assert.equal(checkCsrf({ 'x-csrf': '1', 'sec-fetch-site': 'cross-site' }, origin), 'cross_site')
  assert.equal(checkCsrf({ 'x-csrf': '1', 'sec-fetch-site': 'none' }, origin), 'cross_site')
})

describe('issue 17 item 1: the same-origin CSRF policy of a route', () => {
  const same = (method: string, headers: Record<string, string>) =>
    checkRouteCsrf('same-origin', method, headers, origin)

  test('a GET or HEAD the browser marks same-origin passes without the header (EventSource, <img>, <a download>)', () => {
    assert.equal(same('GET', { 'sec-fetch-site': 'same-origin' }), 'ok')
    assert.equal(same('HEAD', { 'sec-fetch-site': 'same-origin', origin }), 'ok')
    // Typed into the address bar or opened from a bookmark: no page caused it.
    assert.equal(same('GET', { 'sec-fetch-site': 'none' }), 'ok')
    // A browser without Fetch Metadata that sends our Origin.
    assert.equal(same('GET', { origin }), 'ok')
  })

  test('another site, a sibling subdomain, or a foreign Origin is refused without the header', () => {
    assert.equal(same('GET', { 'sec-fetch-site': 'cross-site' }), 'cross_site')
    assert.equal(same('GET', { 'sec-fetch-site': 'same-site' }), 'header_missing')
    assert.equal(same('GET', { 'sec-fetch-site': 'same-origin', origin: 'https://evil.example' }), 'cross_site')
    assert.equal(same('GET', { origin: 'null' }), 'cross_site')
    assert.equal(same('GET', { 'sec-fetch-site': 'bogus' }), 'cross_site')
    // A foreign Origin is refused even with the header.
    assert.equal(same('GET', { 'sec-fetch-site': 'cross-site', 'x-csrf': '1' }), 'cross_site')
  })

  test('with no signal at all (a browser older than Fetch Metadata) it fails closed', () => {
    assert.equal(same('GET', {}), 'header_missing')
    assert.equal(same('GET', { 'x-csrf': '1' }), 'ok')
  })

  test('unsafe methods always need the header, whatever the browser says', () => {
    for (const method of ['POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'get']) {
      assert.equal(same(method, { 'sec-fetch-site': 'same-origin', origin }), 'header_missing', method)
      assert.equal(same(method, { 'sec-fetch-site': 'same-origin', origin, 'x-csrf': '1' }), 'ok', method)
    }
  })

  test('the header policy is the plain check', () => {
    assert.equal(checkRouteCsrf('header', 'GET', { 'sec-fetch-site': 'same-origin' }, origin), 'header_missing')
    assert.equal(checkRouteCsrf('header', 'GET', { 'sec-fetch-site': 'same-origin', 'x-csrf': '1' }, origin), 'ok')
  })
})
