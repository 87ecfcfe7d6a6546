import assert from 'node:assert/strict'
import { test } from 'node:test'
import { createDpopNonceCache } from '../../../src/oidc/dpop-nonces.ts'

const withNonce = (nonce: string | undefined) =>
  new Response(null, { headers: nonce === undefined ? {} : { 'dpop-nonce': nonce } })

test('issue 13 item 12: a nonce is remembered per origin, the latest wins, and a response without one keeps it', () => {
  const cache = createDpopNonceCache()
  cache.remember('https://idp.example/oauth/token', withNonce('n1'))
  assert.equal(cache.get('https://idp.example'), 'n1', 'another path of the same origin shares it')
  assert.equal(cache.get('https://other.example'), undefined)
  assert.equal(cache.get('http://idp.example'), undefined, 'the scheme is part of the origin')
  cache.remember(new URL('https://idp.example/request'), withNonce('n2'))
  assert.equal(cache.get('https://idp.example'), 'n2')
  cache.remember('https://idp.example/oauth/token', withNonce(undefined))
  assert.equal(cache.get('https://idp.example'), 'n2')
})

test('issue 13 item 12: a malformed nonce (RFC 9449 §8.1 NQCHAR only) is ignored, and the cache stays bounded', () => {
  const cache = createDpopNonceCache()
  cache.remember('https://idp.example/token', withNonce('good'))
  for (const bad of ['with space', 'quote"d', 'back\\slash'])
    cache.remember('https://idp.example/token', withNonce(bad))
  assert.equal(cache.get('https://idp.example'), 'good')
  for (let i = 0; i < 100; i++) cache.remember(`https://idp${i}.example/token`, withNonce(`n${i}`))
  assert.equal(cache.get('https://idp.example'), undefined, 'the oldest origin went')
  assert.equal(cache.get('https://idp99.example'), 'n99')
})
