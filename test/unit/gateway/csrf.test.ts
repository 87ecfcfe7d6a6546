import assert from 'node:assert/strict'
import { test } from 'node:test'
import { checkCsrf } from '../../../src/gateway/csrf.ts'

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
