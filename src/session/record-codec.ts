import { deflateRawSync, inflateRawSync } from 'node:zlib'
import type { SessionRecord } from './types.ts'

/**
 * The session record's bytes before sealing, made small: Redis memory per session is mostly
 * this record, and its tokens are JWTs, whose base64url text is a third larger than their
 * bytes and hides the JSON inside from compression.
 *
 * Layout: a format byte (1), the count of JWT signatures (1), each signature as a length
 * (2, big-endian) and its bytes, then the record as deflated JSON in which every JWT is
 * `{"\u0000jwt":[header JSON, payload JSON, signature index]}`. A JWT segment is unpacked only
 * when encoding it again gives back the exact same text; anything else stays a string.
 * Records sealed before this format (plain JSON, first byte `{`) still open.
 * It runs at login and refresh, and when a record is not in the store's opened-record cache
 * (its cost and the size it saves: bench/README.md, "Figures behind the code").
 *
 * Format 3 is format 1 with the JSON deflated against a preset dictionary ({@link DICTIONARY_V3}):
 * a record's JSON is only ~600 bytes, too short for deflate to find its repeated key names on
 * its own, so the record's field names, the JWT headers and the registered and standard claim
 * names are given up front (~200 bytes less per session, enough to keep a Redis value inside
 * jemalloc's 1,280-byte size class with the refresh-token fingerprint). Formats 1 and 2 still open.
 */
const COMPACT_V1 = 1
const COMPACT_V3 = 3
/** Deflated JSON as it is: for the (absurd) record that holds the JWT marker key itself. */
const DEFLATED_JSON = 2
const JWT_MARKER = '\u0000jwt'
const JWT_MARKER_JSON = JSON.stringify(JWT_MARKER)
const JWT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/
const MAX_SIGNATURES = 255

/**
 * The preset dictionary of format 3: the shape of a record as JSON, with JWT headers and payloads
 * as the packed JSON strings they become, and the claim names of OpenID Connect Core (ID token and
 * standard claims) and RFC 9068 (JWT access tokens). Nothing of any one deployment (no issuer,
 * client id or audience). Never edit it: a record sealed with it opens only with the same bytes; a
 * better dictionary is a new format byte, with this one kept for decoding.
 */
export const DICTIONARY_V3 = Buffer.from(
  JSON.stringify({
    claims: {
      name: '',
      given_name: '',
      family_name: '',
      middle_name: '',
      nickname: '',
      preferred_username: '',
      profile: 'https://',
      picture: 'https://',
      website: 'https://',
      email: '',
      email_verified: true,
      gender: '',
      birthdate: '',
      zoneinfo: '',
      locale: '',
      phone_number: '',
      phone_number_verified: false,
      address: {},
      updated_at: 1,
    },
    dpop_key: {
      privateJwk: { kty: 'EC', crv: 'P-256', x: '', y: '', d: '' },
      publicJwk: { kty: 'EC', crv: 'P-256', x: '', y: '' },
      jkt: '',
    },
    refresh_count: 1,
    v: 1,
    iss: 'https://',
    sub: '',
    sid: '',
    id_token: {
      [JWT_MARKER]: [
        '{"alg":"RS256","typ":"JWT","kid":"',
        '{"iss":"https://","sub":"","aud":"","exp":1,"iat":1,"auth_time":1,"nonce":"","acr":"","amr":[""],"azp":"","at_hash":"","sid":""}',
        0,
      ],
    },
    refresh_token: '',
    tokens: {
      '': {
        access_token: {
          [JWT_MARKER]: [
            '{"alg":"RS256","typ":"at+jwt","kid":"',
            '{"iss":"https://","sub":"","aud":["https://"],"exp":1,"iat":1,"jti":"","client_id":"","scope":"openid profile email offline_access online_access"}',
            1,
          ],
        },
        token_type: 'Bearer',
        expires_at: 1,
        issued_at: 1,
        scope: 'openid profile email offline_access online_access',
      },
    },
    created_at: 1,
    absolute_expires_at: 1,
    refreshed_at: 1,
  }),
)

type PackedJwt = { readonly [JWT_MARKER]: [header: string, payload: string, signature: number] }

/** A base64url segment as a latin1 string of its bytes, if that round-trips exactly. */
function unpackSegment(segment: string): Buffer | undefined {
  const bytes = Buffer.from(segment, 'base64url')
  return bytes.toString('base64url') === segment ? bytes : undefined
}

export function encodeRecord(record: SessionRecord): Buffer {
  const plain = JSON.stringify(record)
  if (plain.includes(JWT_MARKER_JSON))
    return Buffer.concat([Buffer.of(DEFLATED_JSON), deflateRawSync(plain, { level: 9 })])
  const signatures: Buffer[] = []
  const json = JSON.stringify(record, (_key, value: unknown) => {
    if (typeof value !== 'string' || value.length < 32 || signatures.length === MAX_SIGNATURES || !JWT.test(value))
      return value
    const [header, payload, signature] = value.split('.') as [string, string, string]
    const parts = [unpackSegment(header), unpackSegment(payload), unpackSegment(signature)]
    if (parts.some((part) => part === undefined) || parts[2]!.length > 0xffff) return value
    signatures.push(parts[2]!)
    const packed: PackedJwt = {
      [JWT_MARKER]: [parts[0]!.toString('latin1'), parts[1]!.toString('latin1'), signatures.length - 1],
    }
    return packed
  })
  const head = Buffer.allocUnsafe(2 + signatures.length * 2)
  head[0] = COMPACT_V3
  head[1] = signatures.length
  signatures.forEach((signature, i) => head.writeUInt16BE(signature.length, 2 + i * 2))
  return Buffer.concat([head, ...signatures, deflateRawSync(json, { level: 9, dictionary: DICTIONARY_V3 })])
}

/**
 * The most a record may inflate to. Records are ~2 KiB; only a holder of the session secret
 * can seal one, but a record that would inflate further is refused (a RangeError) rather than
 * allowed to block the event loop and take memory.
 */
export const MAX_RECORD_BYTES = 1024 * 1024
/**
 * zlib's output chunk for a record: a record's JSON is ~1–2 KiB, and a chunk under half of
 * Buffer's 8 KiB pool is cut from the pool. zlib's default (16 KiB) malloc'd a buffer per record
 * open, garbage until V8 collected it; in bursts of opens these grew the allocator's heap by tens
 * of MiB that it never gave back (bench/README.md, fifth pass). A longer record takes several chunks.
 */
const INFLATE_CHUNK_BYTES = 2048

export function decodeRecord(bytes: Buffer): SessionRecord {
  if (bytes[0] === 0x7b) return JSON.parse(bytes.toString('utf8')) as SessionRecord // `{`: plain JSON
  if (bytes[0] === DEFLATED_JSON)
    return JSON.parse(
      inflateRawSync(bytes.subarray(1), { maxOutputLength: MAX_RECORD_BYTES, chunkSize: INFLATE_CHUNK_BYTES }).toString(
        'utf8',
      ),
    ) as SessionRecord
  if (bytes[0] !== COMPACT_V1 && bytes[0] !== COMPACT_V3) throw new Error(`unknown session record format ${bytes[0]}`)
  const count = bytes[1]!
  const signatures: string[] = []
  let offset = 2 + count * 2
  for (let i = 0; i < count; i++) {
    const length = bytes.readUInt16BE(2 + i * 2)
    signatures.push(bytes.subarray(offset, offset + length).toString('base64url'))
    offset += length
  }
  const json = inflateRawSync(bytes.subarray(offset), {
    maxOutputLength: MAX_RECORD_BYTES,
    chunkSize: INFLATE_CHUNK_BYTES,
    ...(bytes[0] === COMPACT_V3 && { dictionary: DICTIONARY_V3 }),
  }).toString('utf8')
  return unpackJwts(JSON.parse(json), signatures) as SessionRecord
}

/**
 * Puts the packed JWTs back (`{"\u0000jwt": [...]}` objects become their compact strings), in place.
 * A walk after a plain `JSON.parse` rather than a reviver: the reviver, called for every key of
 * the record, tripled parsing (~16 against ~4 µs), and decoding runs on every cache miss.
 */
function unpackJwts(value: unknown, signatures: readonly string[]): unknown {
  if (value === null || typeof value !== 'object') return value
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i]
      if (item !== null && typeof item === 'object') value[i] = unpackJwts(item, signatures)
    }
    return value
  }
  if (Object.hasOwn(value, JWT_MARKER)) {
    const [header, payload, signature] = (value as PackedJwt)[JWT_MARKER]
    return `${Buffer.from(header, 'latin1').toString('base64url')}.${Buffer.from(payload, 'latin1').toString('base64url')}.${signatures[signature]}`
  }
  const object = value as Record<string, unknown>
  for (const key of Object.keys(object)) {
    const item = object[key]
    if (item === null || typeof item !== 'object') continue
    const unpacked = unpackJwts(item, signatures)
    // Defined, not assigned: a `__proto__` key parsed from JSON is an own property like any other.
    if (unpacked !== item)
      Object.defineProperty(object, key, { value: unpacked, writable: true, enumerable: true, configurable: true })
  }
  return object
}
