/**
 * Subject identifiers (RFC 9493, and SSF 1.0's complex subjects) mapped onto what bffgate
 * indexes sessions by: the IdP session (`sid`) and the user (`sub`), both under the OIDC
 * issuer. Pure: no I/O.
 */

/** What a subject identifier names, in bffgate's terms. */
export type SubjectTarget =
  /** Every session bound to one IdP session (its `sid`, as in the ID token). */
  | { readonly kind: 'session'; readonly sid: string; readonly sub?: string }
  /** Every session of one user (`sub` at the OIDC issuer). */
  | { readonly kind: 'user'; readonly sub: string }
  /** Well-formed, but bffgate cannot map it to sessions (e.g. an e-mail address: sessions are not indexed by it). */
  | { readonly kind: 'unmappable'; readonly reason: string }
  /** Names a user of an issuer bffgate does not take users from. */
  | { readonly kind: 'foreign'; readonly reason: string }

/** A subject identifier that is not one: wrong shape, unknown format, missing member. */
export class SubjectError extends Error {
  readonly reason: string
  constructor(reason: string) {
    super(`invalid subject identifier: ${reason}`)
    this.name = 'SubjectError'
    this.reason = reason
  }
}

/** RFC 9493 formats, and SSF 1.0 §3.5's: recognised, even where bffgate cannot map them. */
const KNOWN_FORMATS = new Set([
  'account',
  'email',
  'iss_sub',
  'opaque',
  'phone_number',
  'did',
  'uri',
  'aliases',
  'jwt_id',
  'saml_assertion_id',
  'ip-addresses',
  'complex',
])
/** Longest identifier value accepted (an IdP's `sub` or `sid` is far shorter). */
const MAX_VALUE_LENGTH = 1024

export interface SubjectContext {
  /**
   * Issuers whose `sub` values are users of the OIDC issuer bffgate logs in with: that issuer
   * itself and, where the same directory speaks through another issuer (Okta's org URL next
   * to a custom authorization server), that one too.
   */
  readonly userIssuers: readonly string[]
  /**
   * Complex-subject members the transmitter declares critical (`critical_subject_members` of its
   * SSF configuration): an event naming one that bffgate cannot process must be discarded.
   */
  readonly criticalMembers?: readonly string[]
}

/** The complex-subject members bffgate acts on; any other is not processed. */
const PROCESSED_MEMBERS = new Set(['format', 'user', 'session'])

/**
 * Maps a subject identifier. A complex subject with a `session` member names that IdP session
 * (its `id` is matched against the `sid` bffgate indexes); otherwise its `user` member decides.
 * `opaque` names the user whose `sub` it is. Throws {@link SubjectError} for malformed input.
 */
export function resolveSubject(subject: unknown, context: SubjectContext): SubjectTarget {
  const id = asObject(subject, 'subject')
  const format = id.format
  // SSF drafts before 1.0 final wrote complex subjects without a format: read them alike.
  if (format === 'complex' || (format === undefined && ('user' in id || 'session' in id)))
    return resolveComplex(id, context)
  if (typeof format !== 'string' || format === '') throw new SubjectError('format missing')
  return resolveSimple(id, format, context)
}

function resolveComplex(subject: Record<string, unknown>, context: SubjectContext): SubjectTarget {
  // SSF 1.0, receiver subject processing: a critical member that cannot be processed discards the event.
  const unprocessed = Object.keys(subject).find(
    (member) => !PROCESSED_MEMBERS.has(member) && (context.criticalMembers ?? []).includes(member),
  )
  if (unprocessed !== undefined)
    return { kind: 'unmappable', reason: `critical subject member "${unprocessed.slice(0, 40)}" cannot be processed` }
  const user = subject.user === undefined ? undefined : resolveSimpleMember(subject.user, 'user', context)
  if (subject.session !== undefined) {
    const session = asObject(subject.session, 'session')
    const sid = sessionIdOf(session)
    if (sid !== undefined) return { kind: 'session', sid, ...(user?.kind === 'user' && { sub: user.sub }) }
    // A session named in a way bffgate cannot match: fall back to the user, who is certain,
    // unless the transmitter declared the session critical.
    if (user !== undefined && !(context.criticalMembers ?? []).includes('session')) return user
    return { kind: 'unmappable', reason: `session identified by format "${String(session.format)}"` }
  }
  if (user !== undefined) return user
  return { kind: 'unmappable', reason: 'complex subject names neither a user nor a session' }
}

function resolveSimpleMember(value: unknown, member: string, context: SubjectContext): SubjectTarget {
  const id = asObject(value, member)
  if (typeof id.format !== 'string' || id.format === '') throw new SubjectError(`${member}.format missing`)
  if (id.format === 'complex') throw new SubjectError(`${member} must be a simple subject`)
  return resolveSimple(id, id.format, context)
}

/** The IdP session id of a `session` member: `opaque` (`id`); anything else is not matched. */
function sessionIdOf(session: Record<string, unknown>): string | undefined {
  if (session.format === 'opaque') return text(session.id, 'session.id')
  if (typeof session.format !== 'string') throw new SubjectError('session.format missing')
  return undefined
}

function resolveSimple(id: Record<string, unknown>, format: string, context: SubjectContext): SubjectTarget {
  switch (format) {
    case 'iss_sub': {
      const iss = text(id.iss, 'iss')
      const sub = text(id.sub, 'sub')
      if (!context.userIssuers.includes(iss))
        return { kind: 'foreign', reason: 'iss_sub names an issuer bffgate does not log users in with' }
      return { kind: 'user', sub }
    }
    case 'opaque':
      return { kind: 'user', sub: text(id.id, 'id') }
    case 'email':
      text(id.email, 'email')
      return { kind: 'unmappable', reason: 'sessions are not indexed by e-mail address' }
    default:
      if (!KNOWN_FORMATS.has(format)) throw new SubjectError(`unknown format "${format.slice(0, 40)}"`)
      return { kind: 'unmappable', reason: `format "${format}" cannot be mapped to sessions` }
  }
}

function asObject(value: unknown, what: string): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw new SubjectError(`${what} must be an object`)
  return value as Record<string, unknown>
}

function text(value: unknown, what: string): string {
  if (typeof value !== 'string' || value === '') throw new SubjectError(`${what} missing`)
  if (value.length > MAX_VALUE_LENGTH) throw new SubjectError(`${what} too long`)
  return value
}
