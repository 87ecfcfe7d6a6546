import assert from 'node:assert/strict'
import { test } from 'node:test'
import { BffError } from '../../../src/errors.ts'
import { OidcError } from '../../../src/oidc/client.ts'
import { bffErrorForOidcFailure, IDP_RETRY_AFTER_SECONDS } from '../../../src/oidc/failures.ts'

const transient = new OidcError('transient', 'connect ECONNREFUSED')
const rejected = new OidcError('rejected', 'refused', { oauthError: 'access_denied' })
const invalid = new OidcError('invalid_response', 'bad signature')

test('one translation of IdP failures: login, callback and refresh each get the error docs/errors.md names', () => {
  const codes = (err: unknown) =>
    (['authorization', 'code_exchange', 'refresh'] as const).map((step) => bffErrorForOidcFailure(err, step).code)
  assert.deepEqual(codes(transient), ['BFF_ERR_IDP_UNREACHABLE', 'BFF_ERR_IDP_UNREACHABLE', 'BFF_ERR_IDP_UNAVAILABLE'])
  assert.deepEqual(codes(rejected), ['BFF_ERR_IDP_RESPONSE_INVALID', 'BFF_ERR_LOGIN_FAILED', 'BFF_ERR_IDP_UNAVAILABLE'])
  assert.deepEqual(codes(invalid), [
    'BFF_ERR_IDP_RESPONSE_INVALID',
    'BFF_ERR_IDP_RESPONSE_INVALID',
    'BFF_ERR_IDP_UNAVAILABLE',
  ])
  assert.deepEqual(codes(new Error('anything else')), [
    'BFF_ERR_IDP_RESPONSE_INVALID',
    'BFF_ERR_IDP_RESPONSE_INVALID',
    'BFF_ERR_IDP_UNAVAILABLE',
  ])
})

test("the refused login names the IdP's OAuth error; a refresh failure says when to retry; the cause is kept", () => {
  const login = bffErrorForOidcFailure(rejected, 'code_exchange')
  assert.match(login.message, /\(access_denied\)/)
  assert.equal(login.cause, rejected)
  const refresh = bffErrorForOidcFailure(transient, 'refresh')
  assert.equal(refresh.retryAfter, IDP_RETRY_AFTER_SECONDS)
  assert.equal(refresh.cause, transient)
  const already = new BffError('BFF_ERR_STORE_UNAVAILABLE')
  assert.equal(bffErrorForOidcFailure(already, 'refresh'), already, 'a bffgate error passes through')
})
