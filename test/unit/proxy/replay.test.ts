import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { FastifyRequest } from 'fastify'
import type { IncomingHttpHeaders } from 'node:http'
import { replayReasonFor } from '../../../src/proxy/replay.ts'

const bearer = { access_token: 'at', token_type: 'Bearer', expires_at: 0 }
const dpop = { ...bearer, token_type: 'DPoP' }
/** The request as the policy reads it: its method and headers. */
const request = (method: string, headers: Record<string, string> = {}) =>
  ({ method, headers }) as unknown as FastifyRequest
const refused = (challenge: string) => ({ 'www-authenticate': challenge })

test('a refused token is replayed once, for a request without a body', () => {
  for (const method of ['GET', 'HEAD', 'OPTIONS', 'DELETE']) {
    assert.equal(
      replayReasonFor(request(method), { token: bearer }, 401, refused('Bearer error="invalid_token"')),
      'invalid_token',
      method,
    )
  }
  assert.equal(
    replayReasonFor(
      request('GET', { 'content-length': '0' }),
      { token: bearer },
      401,
      refused('Bearer realm="api", error=invalid_token'),
    ),
    'invalid_token',
  )
  assert.equal(
    replayReasonFor(
      request('GET'),
      { token: bearer, replayReason: 'invalid_token' },
      401,
      refused('Bearer error="invalid_token"'),
    ),
    undefined,
    'never twice',
  )
})

test('a request whose body streamed away, or an answer that is not a 401 bffgate can act on, is not replayed', () => {
  assert.equal(
    replayReasonFor(request('POST'), { token: bearer }, 401, refused('Bearer error="invalid_token"')),
    undefined,
  )
  assert.equal(
    replayReasonFor(
      request('DELETE', { 'content-length': '12' }),
      { token: bearer },
      401,
      refused('Bearer error="invalid_token"'),
    ),
    undefined,
  )
  assert.equal(
    replayReasonFor(
      request('GET', { 'transfer-encoding': 'chunked' }),
      { token: bearer },
      401,
      refused('Bearer error="invalid_token"'),
    ),
    undefined,
  )
  assert.equal(
    replayReasonFor(request('GET'), { token: bearer }, 403, refused('Bearer error="invalid_token"')),
    undefined,
  )
  assert.equal(
    replayReasonFor(request('GET'), { token: bearer }, 401, refused('Bearer error="insufficient_scope"')),
    undefined,
  )
  assert.equal(
    replayReasonFor(request('GET'), { token: bearer }, 401, refused('Basic realm="x", error="invalid_token"')),
    undefined,
  )
  assert.equal(replayReasonFor(request('GET'), { token: bearer }, 401, {}), undefined)
})

test('a DPoP nonce asked for is answered with a new proof, only for a DPoP-bound token', () => {
  assert.equal(
    replayReasonFor(request('GET'), { token: dpop }, 401, refused('DPoP error="use_dpop_nonce"')),
    'use_dpop_nonce',
  )
  assert.equal(
    replayReasonFor(request('GET'), { token: bearer }, 401, refused('DPoP error="use_dpop_nonce"')),
    undefined,
  )
  assert.equal(
    replayReasonFor(request('GET'), { token: dpop }, 401, {
      'www-authenticate': ['DPoP algs="ES256"', 'DPoP error="use_dpop_nonce"'],
    } as unknown as IncomingHttpHeaders),
    'use_dpop_nonce',
    'a repeated header',
  )
})
