import { timingSafeEqual } from 'node:crypto'

/** A user of the development IdP. Passwords are plain text: this is test data, never real. */
export interface DevUser {
  username: string
  password: string
  /** Subject identifier put in tokens (`sub`). */
  sub: string
  name?: string
  email?: string
  email_verified?: boolean
}

/** The user the IdP knows when no `users` option is given. */
export const DEFAULT_USER: Readonly<DevUser> = Object.freeze({
  username: 'alice',
  password: 'alice-password',
  sub: 'user-alice',
  name: 'Alice Example',
  email: 'alice@example.com',
  email_verified: true,
})

/** Scope-to-claims mapping of the IdP (OIDC Core standard claims the dev users have). */
export const CLAIMS_BY_SCOPE = {
  // session_expiry (IPSIE SL1) only when the IdP is told to declare it (DevIdpOptions.sessionExpiryClaim).
  openid: ['sub', 'session_expiry'],
  profile: ['name'],
  email: ['email', 'email_verified'],
} as const

function sameText(a: string, b: string): boolean {
  const left = Buffer.from(a)
  const right = Buffer.from(b)
  // Compare in constant time anyway, so the dev IdP does not model a timing leak.
  return left.length === right.length && timingSafeEqual(left, right)
}

/** Looks users up by login name or by subject. */
export class UserDirectory {
  readonly #users: readonly DevUser[]

  constructor(users: readonly DevUser[]) {
    this.#users = users
  }

  /** Returns the user whose credentials match, or undefined. */
  authenticate(username: string, password: string): DevUser | undefined {
    const user = this.#users.find((candidate) => candidate.username === username)
    if (!user) return undefined
    return sameText(user.password, password) ? user : undefined
  }

  bySub(sub: string): DevUser | undefined {
    return this.#users.find((user) => user.sub === sub)
  }

  /** The claims of a user that any scope may release; oidc-provider filters them by scope. */
  claimsOf(user: DevUser): Record<string, unknown> {
    const claims: Record<string, unknown> = { sub: user.sub }
    if (user.name !== undefined) claims.name = user.name
    if (user.email !== undefined) {
      claims.email = user.email
      claims.email_verified = user.email_verified ?? true
    }
    return claims
  }
}
