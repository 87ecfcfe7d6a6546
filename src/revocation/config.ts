import type { SettingName } from '../config/schema.ts'

/** The Shared Signals receiver's settings (`BFF_SSF_*`); absent when `BFF_SSF_DELIVERY=none`. */
export interface SsfReceiverConfig {
  readonly delivery: 'push' | 'poll'
  /** The transmitter's issuer: every SET's `iss`. */
  readonly issuer: string
  /** When absent, found through the transmitter's `/.well-known/ssf-configuration`. */
  readonly jwksUri?: string
  /** Every SET's `aud`. */
  readonly audience: string
  /** Push: the exact `Authorization` header value the transmitter sends. */
  readonly pushAuthorization?: string
  /** Poll: the transmitter's poll endpoint and the `Authorization` header value sent to it. */
  readonly pollUrl?: string
  readonly pollAuthorization?: string
  /** Oldest `iat` accepted, seconds; also how long a `jti` is remembered. */
  readonly maxAgeSeconds: number
}

/** Global Token Revocation's settings (`BFF_GLOBAL_REVOCATION_*`); absent when off. */
export interface GlobalRevocationConfig {
  /** Issuer of the caller's bearer JWT. */
  readonly issuer: string
  readonly jwksUri?: string
  readonly audience: string
}

export interface RevocationConfig {
  readonly ssf?: SsfReceiverConfig
  readonly globalRevocation?: GlobalRevocationConfig
}

/** The part of load.ts's setting reader this needs (reads a setting, or records a problem). */
export interface RevocationSettingReader {
  string(name: SettingName): string | undefined
  integer(name: SettingName): number | undefined
  url(name: SettingName): URL | undefined
}

/** Shortest accepted push authorization value: it is a shared secret. */
const MIN_AUTHORIZATION_LENGTH = 32

/**
 * Reads and cross-checks the `BFF_SSF_*` and `BFF_GLOBAL_REVOCATION_*` settings, recording
 * each problem (named by variable) in `problems`. Pure. `publicUrl` is `BFF_PUBLIC_URL`'s
 * origin when it was valid.
 */
export function readRevocationConfig(
  read: RevocationSettingReader,
  publicUrl: string | undefined,
  problems: string[],
  warnings: string[],
): RevocationConfig {
  const delivery = read.string('BFF_SSF_DELIVERY') as 'none' | 'push' | 'poll' | undefined
  const ssfIssuer = read.url('BFF_SSF_ISSUER')
  const ssfJwks = read.url('BFF_SSF_JWKS_URI')
  const ssfAudience = read.string('BFF_SSF_AUDIENCE')
  const pushAuthorization = read.string('BFF_SSF_PUSH_AUTHORIZATION')
  const pollUrl = read.url('BFF_SSF_POLL_URL')
  const pollAuthorization = read.string('BFF_SSF_POLL_AUTHORIZATION')
  const maxAgeSeconds = read.integer('BFF_SSF_MAX_AGE_SECONDS')
  const gtrIssuer = read.url('BFF_GLOBAL_REVOCATION_ISSUER')
  const gtrJwks = read.url('BFF_GLOBAL_REVOCATION_JWKS_URI')
  const gtrAudience = read.string('BFF_GLOBAL_REVOCATION_AUDIENCE')

  for (const [name, url] of [
    ['BFF_SSF_ISSUER', ssfIssuer],
    ['BFF_SSF_JWKS_URI', ssfJwks],
    ['BFF_SSF_POLL_URL', pollUrl],
    ['BFF_GLOBAL_REVOCATION_ISSUER', gtrIssuer],
    ['BFF_GLOBAL_REVOCATION_JWKS_URI', gtrJwks],
  ] as const) {
    if (url !== undefined && url.protocol !== 'https:' && url.protocol !== 'http:')
      problems.push(`"${name}" must be an http(s) URL`)
    else if (url?.protocol === 'http:' && !isLoopback(url.hostname))
      warnings.push(`${name} uses plain http: Security Event Tokens and revocation requests should travel over https`)
  }

  let ssf: SsfReceiverConfig | undefined
  if (delivery === 'push' || delivery === 'poll') {
    if (ssfIssuer === undefined) problems.push(`"BFF_SSF_ISSUER" is required with "BFF_SSF_DELIVERY"=${delivery}`)
    if (delivery === 'push') {
      if (pushAuthorization === undefined)
        problems.push(
          '"BFF_SSF_PUSH_AUTHORIZATION" is required with "BFF_SSF_DELIVERY"=push (the transmitter must authenticate its pushes)',
        )
      else if (pushAuthorization.length < MIN_AUTHORIZATION_LENGTH)
        problems.push(
          `"BFF_SSF_PUSH_AUTHORIZATION" must be at least ${MIN_AUTHORIZATION_LENGTH} characters (e.g. \`Bearer \` + \`openssl rand -base64 32\`)`,
        )
      if (pollUrl !== undefined || pollAuthorization !== undefined)
        problems.push('"BFF_SSF_POLL_URL" and "BFF_SSF_POLL_AUTHORIZATION" are for "BFF_SSF_DELIVERY"=poll')
    } else {
      if (pollUrl === undefined) problems.push('"BFF_SSF_POLL_URL" is required with "BFF_SSF_DELIVERY"=poll')
      if (pollAuthorization === undefined)
        problems.push('"BFF_SSF_POLL_AUTHORIZATION" is required with "BFF_SSF_DELIVERY"=poll')
      if (pushAuthorization !== undefined) problems.push('"BFF_SSF_PUSH_AUTHORIZATION" is for "BFF_SSF_DELIVERY"=push')
    }
    if (
      ssfIssuer !== undefined &&
      maxAgeSeconds !== undefined &&
      (ssfAudience !== undefined || publicUrl !== undefined)
    ) {
      ssf = {
        delivery,
        // Kept as written: the `iss` of a SET is compared exactly.
        issuer: read.string('BFF_SSF_ISSUER')!.trim(),
        ...(ssfJwks !== undefined && { jwksUri: ssfJwks.href }),
        audience: ssfAudience ?? publicUrl!,
        ...(pushAuthorization !== undefined && { pushAuthorization }),
        ...(pollUrl !== undefined && { pollUrl: pollUrl.href }),
        ...(pollAuthorization !== undefined && { pollAuthorization }),
        maxAgeSeconds,
      }
    }
  } else {
    const stray = (
      [
        'BFF_SSF_ISSUER',
        'BFF_SSF_JWKS_URI',
        'BFF_SSF_PUSH_AUTHORIZATION',
        'BFF_SSF_POLL_URL',
        'BFF_SSF_POLL_AUTHORIZATION',
      ] as const
    ).filter((name) => read.string(name) !== undefined)
    if (stray.length > 0)
      warnings.push(`${stray.join(', ')} set but "BFF_SSF_DELIVERY" is none: the Shared Signals receiver is off`)
  }

  let globalRevocation: GlobalRevocationConfig | undefined
  if (gtrIssuer !== undefined) {
    const audience = gtrAudience ?? (publicUrl === undefined ? undefined : `${publicUrl}/bff/global-token-revocation`)
    if (audience !== undefined) {
      globalRevocation = {
        issuer: read.string('BFF_GLOBAL_REVOCATION_ISSUER')!.trim(),
        ...(gtrJwks !== undefined && { jwksUri: gtrJwks.href }),
        audience,
      }
    }
  } else if (gtrJwks !== undefined || gtrAudience !== undefined) {
    problems.push(
      '"BFF_GLOBAL_REVOCATION_JWKS_URI" and "BFF_GLOBAL_REVOCATION_AUDIENCE" need "BFF_GLOBAL_REVOCATION_ISSUER"',
    )
  }
  return { ...(ssf !== undefined && { ssf }), ...(globalRevocation !== undefined && { globalRevocation }) }
}

function isLoopback(hostname: string): boolean {
  return hostname === 'localhost' || /^127\.\d+\.\d+\.\d+$/.test(hostname) || hostname === '[::1]'
}
