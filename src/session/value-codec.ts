/*
 * The Redis value of a session (its layout is read by the Lua scripts of redis-backend.ts,
 * and by every release: change it only with a new layout version). Pure.
 */

/**
 * A session's Redis value, one string (smaller and cheaper to read than a hash of three
 * fields: bench/README.md, "Figures behind the code"):
 * layout version (1) | deadline, epoch ms (6, big-endian) | index count (1) |
 * each index key as length (1) and UTF-8 bytes | the sealed record.
 * The deadline is the one last set with the key's lifetime, so a read needs no PTTL beside
 * the GET (a second command costs CPU on every proxied request); the index keys let a
 * session found through one index leave all of them without being decrypted.
 */
export const LAYOUT_V1 = 1
export const DEADLINE_OFFSET = 1
export const DEADLINE_BYTES = 6
/** Where the index list starts: after the layout version, the deadline and the entry count. */
const ENTRIES_OFFSET = DEADLINE_OFFSET + DEADLINE_BYTES + 1
/**
 * The fingerprint of the record's refresh token (an HMAC under the record's own key, see
 * `store.ts`) travels as one more entry of the index list, marked by these bytes, so that a
 * compare-and-set on the refresh token a write replaces runs inside Redis without opening
 * anything, and the layout stays the one every release reads (a replica that does not know
 * the marker takes it for an index key, and at most deletes a field of a key that does not exist).
 */
const FINGERPRINT_MARKER = Buffer.from('\u0000bff-rt1:', 'latin1')
export const FINGERPRINT_BYTES = 16

export interface SessionValue {
  readonly deadlineMs: number
  readonly indexKeys: readonly string[]
  readonly sealed: Buffer
  /** Fingerprint of the record's refresh token, when written with one. */
  readonly fingerprint?: Buffer
}

export function deadlineBytes(deadlineMs: number): Buffer {
  const bytes = Buffer.allocUnsafe(DEADLINE_BYTES)
  bytes.writeUIntBE(Math.max(0, Math.round(deadlineMs)), 0, DEADLINE_BYTES)
  return bytes
}

/** The index-list entry that carries a fingerprint. */
export function fingerprintEntry(fingerprint: Buffer): Buffer {
  if (fingerprint.length !== FINGERPRINT_BYTES) throw new RangeError(`a fingerprint is ${FINGERPRINT_BYTES} bytes`)
  return Buffer.concat([FINGERPRINT_MARKER, fingerprint])
}

export function encodeSessionValue({ deadlineMs, indexKeys, sealed, fingerprint }: SessionValue): Buffer {
  const names: Buffer[] = indexKeys.map((key) => Buffer.from(key, 'utf8'))
  if (fingerprint !== undefined) names.push(fingerprintEntry(fingerprint))
  if (names.length > 255 || names.some((name) => name.length > 255))
    throw new RangeError('index key names must be at most 255 bytes (shorten BFF_REDIS_KEY_PREFIX)')
  const head = Buffer.allocUnsafe(ENTRIES_OFFSET)
  head[0] = LAYOUT_V1
  deadlineBytes(deadlineMs).copy(head, DEADLINE_OFFSET)
  head[ENTRIES_OFFSET - 1] = names.length
  return Buffer.concat([head, ...names.flatMap((name) => [Buffer.of(name.length), name]), sealed])
}

/** Where the sealed record starts, past the index list; undefined for anything that is not a session value. */
function sealedOffsetOf(value: Buffer): number | undefined {
  if (value.length < ENTRIES_OFFSET || value[0] !== LAYOUT_V1) return undefined
  let offset = ENTRIES_OFFSET
  for (let i = 0; i < value[ENTRIES_OFFSET - 1]!; i++) {
    const length = value[offset++]
    if (length === undefined || offset + length > value.length) return undefined
    offset += length
  }
  return offset
}

/**
 * What a read needs of a session value, the deadline and the sealed record, found without
 * decoding the index list (no strings or copies on the proxied request's path); undefined
 * exactly when {@link decodeSessionValue} finds no session value.
 */
export function sealedRecordOf(value: Buffer): { readonly deadlineMs: number; readonly sealed: Buffer } | undefined {
  const sealedAt = sealedOffsetOf(value)
  if (sealedAt === undefined) return undefined
  return { deadlineMs: value.readUIntBE(DEADLINE_OFFSET, DEADLINE_BYTES), sealed: value.subarray(sealedAt) }
}

/** The parts of a session value; undefined for anything that is not one. */
export function decodeSessionValue(value: Buffer): SessionValue | undefined {
  const sealedAt = sealedOffsetOf(value)
  if (sealedAt === undefined) return undefined
  const indexKeys: string[] = []
  let fingerprint: Buffer | undefined
  // The list was checked by sealedOffsetOf: each entry is its length byte and that many bytes.
  for (let offset = ENTRIES_OFFSET; offset < sealedAt;) {
    const length = value[offset++]!
    if (
      length === FINGERPRINT_MARKER.length + FINGERPRINT_BYTES &&
      value.compare(FINGERPRINT_MARKER, 0, FINGERPRINT_MARKER.length, offset, offset + FINGERPRINT_MARKER.length) === 0
    ) {
      fingerprint = Buffer.from(value.subarray(offset + FINGERPRINT_MARKER.length, offset + length))
    } else {
      indexKeys.push(value.toString('utf8', offset, offset + length))
    }
    offset += length
  }
  return {
    deadlineMs: value.readUIntBE(DEADLINE_OFFSET, DEADLINE_BYTES),
    indexKeys,
    sealed: value.subarray(sealedAt),
    ...(fingerprint !== undefined && { fingerprint }),
  }
}
