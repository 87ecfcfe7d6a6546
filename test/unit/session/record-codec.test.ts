import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { test } from 'node:test'
import { deflateRawSync, inflateRawSync } from 'node:zlib'
import { DICTIONARY_V3, MAX_RECORD_BYTES, decodeRecord, encodeRecord } from '../../../src/session/record-codec.ts'
import type { SessionRecord } from '../../../src/session/types.ts'

const b64 = (value: unknown) =>
  Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url')
const jwt = (payload: object) =>
  `${b64({ alg: 'RS256', typ: 'JWT', kid: 'k1' })}.${b64(payload)}.${randomBytes(256).toString('base64url')}`

function record(): SessionRecord {
  const now = 1_795_000_000
  const claims = { sub: 'auth0|1234', name: 'Zoë Ünal 🙂', email: 'zoe@example.com', email_verified: true }
  return {
    v: 1,
    iss: 'https://tenant.eu.auth0.com/',
    sub: 'auth0|1234',
    sid: 'sid-abc',
    claims,
    id_token: jwt({
      ...claims,
      iss: 'https://tenant.eu.auth0.com/',
      aud: 'client',
      iat: now,
      exp: now + 36000,
      sid: 'sid-abc',
      nonce: 'n',
    }),
    refresh_token: 'v1.MnXoN3-opaque-refresh-token',
    tokens: {
      '': {
        access_token: jwt({
          iss: 'https://tenant.eu.auth0.com/',
          sub: 'auth0|1234',
          aud: ['https://api', 'https://tenant.eu.auth0.com/userinfo'],
          scope: 'openid profile online_access',
        }),
        token_type: 'Bearer',
        expires_at: now + 300,
      },
    },
    created_at: now,
    absolute_expires_at: now + 86400,
    refreshed_at: now,
  }
}

test('a record round-trips exactly, JWTs included, and is much smaller than its JSON', () => {
  const original = record()
  const encoded = encodeRecord(original)
  assert.deepEqual(decodeRecord(encoded), original)
  const json = Buffer.byteLength(JSON.stringify(original))
  assert.ok(encoded.length < json * 0.7, `${encoded.length} bytes against ${json} of JSON`)
})

test('strings that only look like JWTs, or whose base64url is not canonical, stay as they are', () => {
  const nonCanonical = `${b64({ a: 1 })}.${b64({ b: 2 })}.AB` // 'AB' has non-zero padding bits
  const odd = {
    ...record(),
    refresh_token: nonCanonical,
    claims: { note: 'a.b.c', dotted: 'x'.repeat(40) + '.y.z', marker: { '\u0000jwt': 'not ours' } },
  }
  const decoded = decodeRecord(encodeRecord(odd))
  assert.equal(decoded.refresh_token, nonCanonical)
  assert.deepEqual(decoded.claims, odd.claims)
})

test('records sealed before the compact format (plain JSON) still decode; unknown formats are refused', () => {
  const original = record()
  assert.deepEqual(decodeRecord(Buffer.from(JSON.stringify(original))), original)
  assert.throws(() => decodeRecord(Buffer.of(9, 0)), /unknown session record format 9/)
})

test('records are deflated against the preset dictionary (format 3); format 1 records, deflated without it, still decode', () => {
  const original = record()
  const encoded = encodeRecord(original)
  assert.equal(encoded[0], 3)
  const signaturesEnd =
    2 +
    encoded[1]! * 2 +
    Array.from({ length: encoded[1]! }, (_, i) => encoded.readUInt16BE(2 + i * 2)).reduce((a, b) => a + b, 0)
  const body = encoded.subarray(signaturesEnd)
  assert.throws(() => inflateRawSync(body), 'a format 3 body needs the dictionary')
  const formatV1 = Buffer.concat([
    Buffer.of(1),
    encoded.subarray(1, signaturesEnd),
    deflateRawSync(inflateRawSync(body, { dictionary: DICTIONARY_V3 }), { level: 9 }),
  ])
  assert.deepEqual(decodeRecord(formatV1), original)
  assert.ok(
    encoded.length < formatV1.length - 100,
    `${encoded.length} bytes with the dictionary against ${formatV1.length} without`,
  )
})

test('JWTs anywhere in the record come back (nested objects and arrays, several audiences), and a __proto__ key stays data', () => {
  const original = record()
  const token = (original.tokens[''] as { access_token: string }).access_token
  const nested = {
    ...original,
    claims: {
      ...original.claims,
      list: [token, { deep: [original.id_token] }],
      ...(JSON.parse('{"__proto__": {"polluted": true}}') as object),
    },
  }
  const decoded = decodeRecord(encodeRecord(nested))
  assert.deepEqual(decoded, nested)
  assert.equal(Object.getPrototypeOf(decoded.claims), Object.prototype)
  assert.deepEqual(Object.getOwnPropertyDescriptor(decoded.claims, '__proto__')?.value, { polluted: true })
})

test('a record that would inflate past MAX_RECORD_BYTES is refused, in every deflated format, without inflating it all', () => {
  // 200 MB of one byte deflates to ~200 KB: a decompression bomb.
  const bomb = deflateRawSync(Buffer.alloc(200 * 1024 * 1024, 0x20))
  const bombV3 = deflateRawSync(Buffer.alloc(200 * 1024 * 1024, 0x20), { dictionary: DICTIONARY_V3 })
  const forms = [
    Buffer.concat([Buffer.from([2]), bomb]), // deflated JSON
    Buffer.concat([Buffer.from([1, 0]), bomb]), // format 1, no signatures
    Buffer.concat([Buffer.from([3, 0]), bombV3]), // format 3, no signatures
  ]
  for (const bytes of forms)
    // zlib's own refusal at the cap (`maxOutputLength`): it stopped there, with no more than
    // MAX_RECORD_BYTES inflated. A decoder that inflated it all and then checked would throw
    // its own error, or run out of memory first.
    assert.throws(
      () => decodeRecord(bytes),
      {
        name: 'RangeError',
        code: 'ERR_BUFFER_TOO_LARGE',
        message: new RegExp(`larger than ${MAX_RECORD_BYTES} bytes`),
      },
      `format ${bytes[0]}`,
    )
  // A record just under the bound still decodes.
  const big = { ...record(), pad: 'x'.repeat(MAX_RECORD_BYTES - 4096) }
  assert.deepEqual(decodeRecord(encodeRecord(big as unknown as SessionRecord)), big)
})
