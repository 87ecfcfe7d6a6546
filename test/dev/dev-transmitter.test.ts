import assert from 'node:assert/strict'
import { test } from 'node:test'
import { startDevIdp } from '../../dev/idp/index.ts'
import { createIssuerKeys, ssfConfigurationUrl } from '../../src/revocation/keys.ts'
import { createSetVerifier, interpretSet } from '../../src/revocation/security-event.ts'

test("the development IdP's transmitter publishes its configuration and keys, and its SETs verify through discovery", async (t) => {
  const idp = await startDevIdp({
    clients: [{ client_id: 'c', client_secret: 'c-secret-0123456789', redirect_uris: ['http://127.0.0.1:1/cb'] }],
    ssfAudience: 'https://app.test',
    log: () => {},
  })
  t.after(() => idp.close())
  const transmitter = idp.transmitter!
  const metadata = (await (await fetch(ssfConfigurationUrl(transmitter.issuer))).json()) as {
    issuer: string
    jwks_uri: string
    delivery_methods_supported: string[]
  }
  assert.equal(metadata.issuer, transmitter.issuer)
  assert.deepEqual(metadata.delivery_methods_supported, ['urn:ietf:rfc:8935', 'urn:ietf:rfc:8936'])
  const keys = (await (await fetch(metadata.jwks_uri)).json()) as { keys: Array<Record<string, unknown>> }
  assert.equal(keys.keys.length, 1)
  assert.equal(keys.keys[0]!.d, undefined, 'the JWKS holds no private key part')

  const verify = createSetVerifier({
    issuer: transmitter.issuer,
    audience: 'https://app.test',
    maxAgeSeconds: 300,
    keys: createIssuerKeys({
      issuer: transmitter.issuer,
      metadataUrls: [ssfConfigurationUrl(transmitter.issuer)],
      timeoutMs: 2000,
    }),
  })
  const set = await verify((await transmitter.sessionRevoked('user-alice', 'sid-1')).token)
  assert.deepEqual(interpretSet(set, { userIssuers: [idp.issuer] }), [
    { kind: 'end', event: 'session-revoked', target: { kind: 'session', sid: 'sid-1', sub: 'user-alice' } },
  ])
})
