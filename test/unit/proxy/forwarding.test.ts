import assert from 'node:assert/strict'
import { test } from 'node:test'
import { forwardingHeaders, isForwardingHeader } from '../../../src/proxy/upstream-headers.ts'

test('issue 13 item 3: the class of headers upstreams trust as proxy-written is recognised, `_` spellings too', () => {
  for (const name of [
    'forwarded',
    'x-forwarded-for',
    'x-forwarded-host',
    'x-forwarded-proto',
    'x-forwarded-port',
    'x-forwarded-prefix',
    'x-forwarded-server',
    'x-forwarded-user',
    'x-forwarded-client-cert',
    'x_forwarded_for',
    'x-real-ip',
    'x_real_ip',
    'true-client-ip',
    'cf-connecting-ip',
    'cf-access-authenticated-user-email',
    'fastly-client-ip',
    'x-client-ip',
    'x-cluster-client-ip',
    'x-original-url',
    'x-original-host',
    'x-rewrite-url',
    'x-host',
    'x-http-method-override',
    'x-http-method',
    'x-method-override',
    'x-envoy-external-address',
    'x-amzn-oidc-identity',
    'x-ms-client-principal-name',
    'x-ms-token-aad-access-token',
    'x-goog-authenticated-user-email',
    'x-auth-request-user',
    'x-remote-user',
    'x-ssl-client-verify',
    'x-azure-fdid',
    'x-middleware-subrequest',
    'x-arr-clientcert',
  ]) {
    assert.equal(isForwardingHeader(name), true, name)
  }
  for (const name of [
    'accept',
    'content-type',
    'x-app-version',
    'x-request-id',
    'traceparent',
    'x-requested-with',
    'if-none-match',
    'x-client-version',
    'x-origin-trial',
  ]) {
    assert.equal(isForwardingHeader(name), false, name)
  }
})

test("issue 13 item 3: bffgate's own headers name the chain client first; Forwarded per RFC 7239", () => {
  assert.deepEqual(forwardingHeaders(['192.0.2.1'], 'app.example.com', 'https'), {
    'x-forwarded-for': '192.0.2.1',
    'x-forwarded-host': 'app.example.com',
    'x-forwarded-proto': 'https',
    forwarded: 'for=192.0.2.1;host="app.example.com";proto=https',
  })
  const behind = forwardingHeaders(['2001:db8::7', '10.0.0.2', 'garbage, 1.2.3.4'], 'app.example.com:8443', 'https')
  assert.equal(behind['x-forwarded-for'], '2001:db8::7, 10.0.0.2, unknown')
  assert.equal(
    behind.forwarded,
    'for="[2001:db8::7]";host="app.example.com:8443";proto=https, for=10.0.0.2, for=unknown',
  )
})
