import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { createLocalJWKSet, exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose'
import {
  createSetVerifier,
  CREDENTIAL_CHANGE,
  interpretSet,
  SESSION_REVOKED,
  SetError,
  VERIFICATION,
  type VerifiedSet,
} from '../../../src/revocation/security-event.ts'
import { authorizationServerMetadataUrls, ssfConfigurationUrl } from '../../../src/revocation/keys.ts'
import { buildPollRequest, readPollResponse } from '../../../src/revocation/ssf-poller.ts'

const ISS = 'https://transmitter.example'
const AUD = 'https://app.example.com'
const NOW = 1_800_000_000_000
const { privateKey, publicKey } = await generateKeyPair('ES256')
const jwk: JWK = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' }
const verify = createSetVerifier({
  issuer: ISS,
  audience: AUD,
  keys: createLocalJWKSet({ keys: [jwk] }),
  maxAgeSeconds: 3600,
  now: () => NOW,
})

const sign = (claims: Record<string, unknown>, typ = 'secevent+jwt') =>
  new SignJWT({ iss: ISS, aud: AUD, iat: NOW / 1000, jti: 'j1', events: { [SESSION_REVOKED]: {} }, ...claims })
    .setProtectedHeader({ alg: 'ES256', kid: 'k1', typ })
    .sign(privateKey)
const errOf = async (token: string) => {
  try {
    await verify(token)
  } catch (err) {
    assert.ok(err instanceof SetError, String(err))
    return err.err
  }
  return 'accepted'
}

describe('createSetVerifier', () => {
  test('a good SET verifies, and its jti is remembered for as long as it would be accepted', async () => {
    const set = await verify(await sign({ sub_id: { format: 'opaque', id: 'u' } }))
    assert.equal(set.jti, 'j1')
    assert.deepEqual(set.subId, { format: 'opaque', id: 'u' })
    assert.ok(set.rememberSeconds >= 3600)
  })

  test('each check maps to its RFC 8935 error code', async () => {
    assert.equal(await errOf(await sign({ iss: 'https://evil.example' })), 'invalid_issuer')
    assert.equal(await errOf(await sign({ aud: 'https://other.example' })), 'invalid_audience')
    assert.equal(await errOf(await sign({ aud: [AUD, 'https://other.example'] })), 'accepted')
    assert.equal(await errOf(await sign({}, 'JWT')), 'invalid_request')
    assert.equal(await errOf(await sign({}, 'application/secevent+jwt')), 'accepted')
    assert.equal(await errOf(await sign({ iat: NOW / 1000 - 3601 })), 'invalid_request')
    assert.equal(await errOf(await sign({ iat: NOW / 1000 + 3600 })), 'invalid_request')
    assert.equal(await errOf(await sign({ jti: undefined })), 'invalid_request')
    assert.equal(await errOf(await sign({ events: {} })), 'invalid_request')
    assert.equal(await errOf(await sign({ events: { x: [] } })), 'invalid_request')
    const other = await generateKeyPair('ES256')
    assert.equal(
      await errOf(
        await new SignJWT({ iss: ISS, aud: AUD, iat: NOW / 1000, jti: 'j', events: { x: {} } })
          .setProtectedHeader({ alg: 'ES256', kid: 'k1', typ: 'secevent+jwt' })
          .sign(other.privateKey),
      ),
      'invalid_key',
    )
    assert.equal(await errOf('a.b.c'), 'invalid_request')
  })
})

describe('interpretSet', () => {
  const context = { userIssuers: ['https://idp.example/'] }
  const set = (events: Record<string, Record<string, unknown>>, subId?: unknown): VerifiedSet => ({
    iss: ISS,
    jti: 'j',
    iat: 0,
    subId,
    events,
    rememberSeconds: 1,
  })
  const user = { format: 'iss_sub', iss: 'https://idp.example/', sub: 'u1' }

  test('session-revoked ends the named session, or the user', () => {
    assert.deepEqual(
      interpretSet(
        set({ [SESSION_REVOKED]: {} }, { format: 'complex', user, session: { format: 'opaque', id: 's1' } }),
        context,
      ),
      [{ kind: 'end', event: 'session-revoked', target: { kind: 'session', sid: 's1', sub: 'u1' } }],
    )
    assert.deepEqual(interpretSet(set({ [SESSION_REVOKED]: {} }, user), context), [
      { kind: 'end', event: 'session-revoked', target: { kind: 'user', sub: 'u1' } },
    ])
  })

  test('credential-change ends every session of the user, even when a session is named', () => {
    assert.deepEqual(
      interpretSet(
        set(
          { [CREDENTIAL_CHANGE]: { credential_type: 'password' } },
          { format: 'complex', user, session: { format: 'opaque', id: 's1' } },
        ),
        context,
      ),
      [{ kind: 'end', event: 'credential-change', target: { kind: 'user', sub: 'u1' } }],
    )
  })

  test('the legacy subject member is read when sub_id is absent', () => {
    assert.deepEqual(interpretSet(set({ [SESSION_REVOKED]: { subject: user } }), context)[0], {
      kind: 'end',
      event: 'session-revoked',
      target: { kind: 'user', sub: 'u1' },
    })
  })

  test('verification is acknowledged, unknown types ignored, a subjectless revocation refused', () => {
    assert.deepEqual(
      interpretSet(set({ [VERIFICATION]: { state: 'x' } }, { format: 'opaque', id: 'stream' }), context),
      [{ kind: 'verification', state: 'x' }],
    )
    assert.equal(interpretSet(set({ 'https://example.com/event': {} }), context)[0]!.kind, 'ignore')
    assert.throws(() => interpretSet(set({ [SESSION_REVOKED]: {} }), context), SetError)
    assert.throws(() => interpretSet(set({ [SESSION_REVOKED]: {} }, { format: 'bogus' }), context), SetError)
  })
})

describe('discovery URLs and poll messages', () => {
  test('ssf-configuration is inserted between host and path (SSF 1.0 discovery)', () => {
    assert.equal(ssfConfigurationUrl('https://tr.example.com'), 'https://tr.example.com/.well-known/ssf-configuration')
    assert.equal(
      ssfConfigurationUrl('https://tr.example.com/issuer1/'),
      'https://tr.example.com/.well-known/ssf-configuration/issuer1',
    )
    assert.deepEqual(authorizationServerMetadataUrls('https://org.example.com/oauth2/default'), [
      'https://org.example.com/oauth2/default/.well-known/openid-configuration',
      'https://org.example.com/.well-known/oauth-authorization-server/oauth2/default',
    ])
  })

  test('poll requests carry acks and setErrs; responses are read strictly', () => {
    assert.deepEqual(buildPollRequest(['a'], {}, 10, false), { ack: ['a'], maxEvents: 10, returnImmediately: false })
    assert.deepEqual(buildPollRequest([], { b: { err: 'invalid_key', description: 'd' } }, 10, true), {
      ack: [],
      setErrs: { b: { err: 'invalid_key', description: 'd' } },
      maxEvents: 10,
      returnImmediately: true,
    })
    assert.deepEqual(readPollResponse({ sets: { j: 'tok', k: 5 }, moreAvailable: true }), {
      sets: [['j', 'tok']],
      moreAvailable: true,
    })
    for (const bad of [null, [], {}, { sets: [] }, { sets: 'x' }]) assert.throws(() => readPollResponse(bad), TypeError)
  })
})
