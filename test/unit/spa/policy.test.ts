import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import {
  hasFileExtension,
  isHashedAsset,
  isHistoryFallback,
  isNavigation,
  staticCacheControl,
} from '../../../src/spa/policy.ts'

describe('issue 17 item 2: which requests get index.html, and how long files are cached', () => {
  test('a navigation is Sec-Fetch-Mode: navigate, or without Fetch Metadata an Accept asking for HTML', () => {
    assert.equal(isNavigation({ 'sec-fetch-mode': 'navigate' }), true)
    assert.equal(isNavigation({ 'sec-fetch-mode': 'cors', accept: 'text/html' }), false)
    assert.equal(isNavigation({ 'sec-fetch-mode': 'no-cors' }), false)
    assert.equal(isNavigation({ accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' }), true)
    assert.equal(isNavigation({ accept: 'text/html;q=0.9' }), true)
    assert.equal(isNavigation({ accept: '*/*' }), false)
    assert.equal(isNavigation({ accept: 'application/json' }), false)
    assert.equal(isNavigation({ accept: 'text/htmlx' }), false)
    assert.equal(isNavigation({}), false)
  })

  test("deep links fall back; bffgate's paths, routes, assets and non-GET methods never do", () => {
    const reserved = ['/bff', '/healthz', '/api']
    const nav = { 'sec-fetch-mode': 'navigate' }
    for (const path of ['/', '/orders/42', '/orders/42/', '/a/b/c', '/apis', '/bffx', '/v1.2/orders'])
      assert.equal(isHistoryFallback('GET', path, nav, reserved), true, path)
    assert.equal(isHistoryFallback('HEAD', '/orders/42', nav, reserved), true)
    for (const path of [
      '/bff',
      '/bff/user',
      '/api',
      '/api/orders',
      '/healthz',
      '/app.js',
      '/assets/x-Ab12Cd34.css',
      '/favicon.ico',
      '/orders/42.json',
    ]) {
      assert.equal(isHistoryFallback('GET', path, nav, reserved), false, path)
    }
    for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS'])
      assert.equal(isHistoryFallback(method, '/orders/42', nav, reserved), false, method)
    assert.equal(isHistoryFallback('GET', '/orders/42', { 'sec-fetch-mode': 'cors' }, reserved), false)
    assert.equal(hasFileExtension('/v1.2/orders'), false)
    assert.equal(hasFileExtension('/file.tar.gz'), true)
  })

  test('hashed asset names as bundlers write them are recognised; names that merely look alike are not', () => {
    for (const name of [
      '/assets/index-BXq3k9aF.js',
      'main.3f2a1b9c.css',
      'chunk-vendors.0123abcd.js',
      '/a/logo-9fT_x2Lm.svg',
      'index-BXq3k9aF.js.br',
      'app.1a2b3c4d5e6f7a8b9c0d.js.gz',
    ]) {
      assert.equal(isHashedAsset(name), true, name)
    }
    for (const name of [
      'index.html',
      'app.js',
      'config.js',
      'jquery-3.7.1.min.js',
      'roboto-v30-latin-regular.woff2',
      'my-Component.js',
      'chunk-ABCDEFGH.js',
      'report-2026.pdf',
      'sw.js',
      'bootstrap-bundle.js',
    ]) {
      assert.equal(isHashedAsset(name), false, name)
    }
  })

  test('hashed assets for a year, immutable; HTML (even a hashed name) and the rest no-cache', () => {
    assert.equal(staticCacheControl('/srv/app/assets/index-BXq3k9aF.js'), 'public, max-age=31536000, immutable')
    assert.equal(staticCacheControl('/srv/app/assets/index-BXq3k9aF.js.br'), 'public, max-age=31536000, immutable')
    assert.equal(staticCacheControl('/srv/app/index.html'), 'no-cache')
    assert.equal(staticCacheControl('/srv/app/index.html.gz'), 'no-cache')
    assert.equal(staticCacheControl('/srv/app/page-3f2a1b9c.html'), 'no-cache')
    assert.equal(staticCacheControl('/srv/app/robots.txt'), 'no-cache')
  })
})
