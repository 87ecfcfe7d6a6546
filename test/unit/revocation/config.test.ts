import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { ConfigError, loadConfig } from '../../../src/config/load.ts'

const minimal = {
  BFF_PUBLIC_URL: 'https://app.example.com',
  BFF_OIDC_ISSUER: 'https://tenant.auth0.com/',
  BFF_OIDC_CLIENT_ID: 'client-1',
  BFF_OIDC_CLIENT_SECRET: 'client-secret-value',
  BFF_SESSION_SECRET: 'unit-test-secret-0123456789-abcdefghijklmnopqrstuvwxyz',
}
const PUSH = 'Bearer 0123456789abcdefghijklmnopqrstuvwxyz'

function problemsOf(env: Record<string, string>): readonly string[] {
  try {
    loadConfig(env)
  } catch (err) {
    assert.ok(err instanceof ConfigError)
    return err.problems
  }
  assert.fail('configuration was accepted')
}

describe('revocation settings', () => {
  test('both channels are off by default', () => {
    assert.deepEqual(loadConfig(minimal).revocation, {})
  })

  test('push delivery: issuer and authorization, audience defaulting to the public URL', () => {
    const { ssf } = loadConfig({
      ...minimal,
      BFF_SSF_DELIVERY: 'push',
      BFF_SSF_ISSUER: 'https://tr.example.com/',
      BFF_SSF_PUSH_AUTHORIZATION: PUSH,
    }).revocation
    assert.deepEqual(ssf, {
      delivery: 'push',
      issuer: 'https://tr.example.com/',
      audience: 'https://app.example.com',
      pushAuthorization: PUSH,
      maxAgeSeconds: 3600,
    })
  })

  test('poll delivery needs its URL and authorization', () => {
    const { ssf } = loadConfig({
      ...minimal,
      BFF_SSF_DELIVERY: 'poll',
      BFF_SSF_ISSUER: 'https://tr.example.com',
      BFF_SSF_POLL_URL: 'https://tr.example.com/poll',
      BFF_SSF_POLL_AUTHORIZATION: 'Bearer t',
      BFF_SSF_AUDIENCE: 'aud-1',
    }).revocation
    assert.equal(ssf?.pollUrl, 'https://tr.example.com/poll')
    assert.equal(ssf?.audience, 'aud-1')
  })

  test('every missing or conflicting setting is named at once', () => {
    assert.deepEqual(problemsOf({ ...minimal, BFF_SSF_DELIVERY: 'push' }), [
      '"BFF_SSF_ISSUER" is required with "BFF_SSF_DELIVERY"=push',
      '"BFF_SSF_PUSH_AUTHORIZATION" is required with "BFF_SSF_DELIVERY"=push (the transmitter must authenticate its pushes)',
    ])
    assert.deepEqual(
      problemsOf({
        ...minimal,
        BFF_SSF_DELIVERY: 'push',
        BFF_SSF_ISSUER: 'https://tr.example.com',
        BFF_SSF_PUSH_AUTHORIZATION: 'Bearer short',
      }),
      ['"BFF_SSF_PUSH_AUTHORIZATION" must be at least 32 characters (e.g. `Bearer ` + `openssl rand -base64 32`)'],
    )
    assert.deepEqual(problemsOf({ ...minimal, BFF_SSF_DELIVERY: 'poll', BFF_SSF_ISSUER: 'https://tr.example.com' }), [
      '"BFF_SSF_POLL_URL" is required with "BFF_SSF_DELIVERY"=poll',
      '"BFF_SSF_POLL_AUTHORIZATION" is required with "BFF_SSF_DELIVERY"=poll',
    ])
    assert.deepEqual(problemsOf({ ...minimal, BFF_SSF_DELIVERY: 'sometimes' }), [
      '"BFF_SSF_DELIVERY" must be one of none, push, poll',
    ])
    assert.deepEqual(problemsOf({ ...minimal, BFF_GLOBAL_REVOCATION_AUDIENCE: 'x' }), [
      '"BFF_GLOBAL_REVOCATION_JWKS_URI" and "BFF_GLOBAL_REVOCATION_AUDIENCE" need "BFF_GLOBAL_REVOCATION_ISSUER"',
    ])
    assert.deepEqual(problemsOf({ ...minimal, BFF_GLOBAL_REVOCATION_ISSUER: 'ftp://org.example.com' }), [
      '"BFF_GLOBAL_REVOCATION_ISSUER" must be an http(s) URL',
    ])
  })

  test('global revocation: audience defaults to the endpoint URL', () => {
    assert.deepEqual(
      loadConfig({ ...minimal, BFF_GLOBAL_REVOCATION_ISSUER: 'https://org.example.com' }).revocation.globalRevocation,
      {
        issuer: 'https://org.example.com',
        audience: 'https://app.example.com/bff/global-token-revocation',
      },
    )
  })

  test('SSF settings without a delivery method warn that the receiver is off', () => {
    assert.ok(
      loadConfig({ ...minimal, BFF_SSF_ISSUER: 'https://tr.example.com' }).warnings.some((w) =>
        w.includes('the Shared Signals receiver is off'),
      ),
    )
  })
})
