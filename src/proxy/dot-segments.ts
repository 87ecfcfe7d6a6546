/**
 * Whether a request path holds a segment that some server on the way may read as `.` or `..`
 * (RFC 3986 §5.2.4 dot segments), so that forwarding it could leave the route's prefix.
 *
 * @fastify/http-proxy refuses an exact `..` after one decoding. Servers behind it are more
 * inventive: Tomcat and Jetty drop `;` path parameters before removing dot segments
 * (`/api/..;/admin` is `/admin` there), some decode twice (`%252e`), read `\` as `/`, decode
 * overlong UTF-8 (`%c0%ae` is `.` to old Java decoders), normalise Unicode compatibility
 * forms (`．` U+FF0E is `.` under NFKC), or trim trailing spaces and dots (Windows). So the
 * check looks at every form: the path percent-decoded again and again until it stops changing,
 * each with overlong encodings read and with NFKC applied; segments split at `/` and `\`; each
 * segment cut at its first `;` (and `?` or `#`, which a second decoding can produce). A
 * segment made only of dots, spaces and control characters, with at least one dot, is refused.
 *
 * Pure; `path` is the request target without its query string.
 */
export function hasDotSegment(path: string): boolean {
  // Every form of a dot needs a `.`, a `%` escape or a non-ASCII character: most paths have none.
  if (!MAY_HOLD_A_DOT.test(path)) return false
  let current = path
  for (let round = 0; round < MAX_DECODING_ROUNDS; round++) {
    if (formsOf(current).some(hasDotSegmentIn)) return true
    const decoded = percentDecodeBytes(current)
    if (decoded === current) return false
    current = decoded
  }
  // Still encoded after this many rounds: no real path looks like that.
  return true
}

/** Percent-encoding nested deeper than this is refused outright. */
const MAX_DECODING_ROUNDS = 6

// oxlint-disable-next-line no-control-regex
const MAY_HOLD_A_DOT = /[.%\u0080-\uffff]/
const SEPARATOR = /[/\\]/
const PARAMETERS = /[;?#]/
// oxlint-disable-next-line no-control-regex
const DOTS_ONLY = /^[.\s\u0000-\u001f\u007f]*\.[.\s\u0000-\u001f\u007f]*$/u

function hasDotSegmentIn(path: string): boolean {
  for (const segment of path.split(SEPARATOR)) {
    const name = segment.split(PARAMETERS, 1)[0]!
    if (name !== '' && DOTS_ONLY.test(name)) return true
  }
  return false
}

/** The path as bytes (one char each), with overlong UTF-8 read, and then as NFKC-normalised text. */
function formsOf(bytes: string): string[] {
  // oxlint-disable-next-line no-control-regex
  if (!/[^\u0000-\u007f]/.test(bytes)) return [bytes]
  const overlongRead = readOverlong(bytes)
  return [bytes, overlongRead, Buffer.from(overlongRead, 'latin1').toString('utf8').normalize('NFKC')]
}

/** `%XX` → the byte XX (as one char); anything else, malformed escapes included, kept. */
function percentDecodeBytes(text: string): string {
  return text.includes('%')
    ? text.replace(/%([0-9a-fA-F]{2})/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)))
    : text
}

/**
 * Overlong UTF-8 (two, three or four bytes for an ASCII character) read as that character,
 * the way lenient decoders do. Valid UTF-8 never contains these sequences.
 */
function readOverlong(bytes: string): string {
  return bytes.replace(/[\xc0\xc1][\x80-\xbf]|\xe0[\x80-\x81][\x80-\xbf]|\xf0\x80\x80[\x80-\xbf]/g, (sequence) => {
    let codePoint = sequence.charCodeAt(0) & (sequence.length === 2 ? 0x1f : sequence.length === 3 ? 0x0f : 0x07)
    for (let i = 1; i < sequence.length; i++) codePoint = (codePoint << 6) | (sequence.charCodeAt(i) & 0x3f)
    return String.fromCharCode(codePoint)
  })
}
