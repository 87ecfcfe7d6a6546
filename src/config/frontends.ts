import {
  checkClientAuthentication,
  checkHostCookieName,
  checkIssuer,
  checkPublicUrl,
  COOKIE_NAME_CHARS,
  refreshTokenKindOf,
} from './checks.ts'
import { checkContentSecurityPolicy } from './csp.ts'
import { normalizeHost } from './host.ts'
import { checkLoginErrorPath, checkLoginParameterNames } from './login.ts'
import { parseBoolean, parseUrl } from './reader.ts'
import { parseRoutes, RESERVED_PREFIXES } from './routes.ts'
import { frontendKeys } from './schema.ts'
import { readSecretFile, type ReadFile } from './sources.ts'
import type { FrontendConfig, RefreshTokenKind, RouteConfig, TokenEndpointAuthMethod } from './types.ts'

/**
 * Several frontends, one deployment (docs/frontends.md): the `frontends` list of the
 * `BFF_CONFIG` file read into {@link FrontendConfig}s, each problem named by frontend and key
 * (`frontends[1] (admin).clientId is required`), and the clashes between frontends. Pure apart
 * from the injected `readFile` (client secrets come from files).
 */

/** Everything one frontend is made of, resolved (own values or the environment's defaults). */
export interface FrontendParts {
  readonly name: string
  readonly publicUrl: URL
  readonly pathPrefix: string
  /** Absent: every host (the frontend made from the environment). */
  readonly hosts?: readonly string[]
  readonly issuer: string
  readonly clientId: string
  readonly clientSecret?: string | undefined
  readonly clientPrivateKey?: string | undefined
  readonly authMethod?: TokenEndpointAuthMethod | undefined
  readonly scopes: readonly string[]
  readonly refreshTokenKind: RefreshTokenKind
  readonly audience?: string | undefined
  readonly par: boolean
  readonly dpop: boolean
  readonly revokeRefreshTokenOnLogout: boolean
  readonly timeoutSeconds: number
  readonly allowInsecureHttp: boolean
  readonly postLogoutRedirectUrl?: URL | undefined
  readonly cookieName: string
  /** Paths relative to the prefix. */
  readonly routes: readonly RouteConfig[]
  readonly staticDir?: string | undefined
  readonly contentSecurityPolicy: string
  readonly loginParameters: readonly string[]
  /** Relative to the prefix. */
  readonly loginErrorPath: string
}

/** The environment's values a frontend takes when it does not give its own (already checked under their own names). */
export interface FrontendDefaults {
  readonly publicUrl?: URL | undefined
  readonly issuer?: string | undefined
  readonly authMethod?: TokenEndpointAuthMethod | undefined
  readonly scopes?: readonly string[] | undefined
  readonly refreshTokenKind: RefreshTokenKind
  readonly audience?: string | undefined
  readonly par?: boolean | undefined
  readonly dpop?: boolean | undefined
  readonly revokeRefreshTokenOnLogout?: boolean | undefined
  readonly timeoutSeconds?: number | undefined
  readonly allowInsecureHttp?: boolean | undefined
  readonly contentSecurityPolicy?: string | undefined
  readonly loginParameters?: readonly string[] | undefined
  readonly loginErrorPath?: string | undefined
}

const NAME = /^[a-z][a-z0-9-]{0,31}$/
/** Segments of unreserved characters only: no `%`, `;` or other character a server may read twice. */
const PATH_PREFIX = /^(?:\/[A-Za-z0-9._~-]+)+$/
const AUTH_METHODS: readonly TokenEndpointAuthMethod[] = [
  'client_secret_basic',
  'client_secret_post',
  'private_key_jwt',
]
const KEYS = new Set(frontendKeys.map((k) => k.key))

/**
 * The frontends of the `frontends` list, or none when there is a problem with any of them
 * (each problem is pushed). Clashes between frontends are checked too.
 */
export function parseFrontends(
  value: unknown,
  defaults: FrontendDefaults,
  readFile: ReadFile,
  problems: string[],
  warnings: string[],
): FrontendParts[] {
  if (!Array.isArray(value) || value.length === 0) {
    problems.push('"frontends" in the BFF_CONFIG file must be a list of at least one frontend')
    return []
  }
  const before = problems.length
  const parts: FrontendParts[] = []
  value.forEach((item: unknown, i) => {
    const frontend = parseFrontend(item, i, defaults, readFile, problems, warnings)
    if (frontend !== undefined) parts.push(frontend)
  })
  if (problems.length === before) problems.push(...checkFrontendClashes(parts, warnings))
  return problems.length === before ? parts : []
}

function parseFrontend(
  item: unknown,
  i: number,
  defaults: FrontendDefaults,
  readFile: ReadFile,
  problems: string[],
  warnings: string[],
): FrontendParts | undefined {
  if (item === null || typeof item !== 'object' || Array.isArray(item)) {
    problems.push(`frontends[${i}] must be a mapping of keys to values`)
    return undefined
  }
  const f = item as Record<string, unknown>
  const name = typeof f.name === 'string' ? f.name : undefined
  const where = `frontends[${i}]${name !== undefined && NAME.test(name) ? ` (${name})` : ''}`
  const before = problems.length
  const field = (key: string): string => `${where}.${key}`

  for (const key of Object.keys(f)) {
    if (key === 'clientSecret' || key === 'clientPrivateKey')
      problems.push(
        `${field(key)} must not be in the BFF_CONFIG file; name a file holding it with ${key}File (a mounted secret)`,
      )
    else if (!KEYS.has(key)) problems.push(`${where} has an unknown key "${key}"`)
  }
  const text = (key: string): string | undefined => {
    const v = f[key]
    if (v === undefined || v === null) return undefined
    if (typeof v !== 'string' || v.trim() === '') {
      problems.push(`${field(key)} must be a non-empty string`)
      return undefined
    }
    return v.trim()
  }
  const flag = (key: string, fallback: boolean | undefined): boolean | undefined => {
    const v = f[key]
    if (v === undefined || v === null) return fallback
    return typeof v === 'boolean' ? v : parseBoolean(field(key), String(v), problems)
  }
  const list = (key: string, separator: RegExp): string[] | undefined => {
    const v = f[key]
    if (v === undefined || v === null) return undefined
    const items = Array.isArray(v) ? v : typeof v === 'string' ? v.split(separator) : undefined
    if (items === undefined || items.some((s) => typeof s !== 'string')) {
      problems.push(`${field(key)} must be a list of strings or one string`)
      return undefined
    }
    const trimmed = (items as string[]).map((s) => s.trim()).filter((s) => s !== '')
    if (trimmed.length === 0) problems.push(`${field(key)} must not be empty`)
    return trimmed
  }

  if (name === undefined) problems.push(`${field('name')} is required`)
  else if (!NAME.test(name))
    problems.push(`${field('name')} must be lowercase letters, digits and "-", starting with a letter, at most 32`)

  const publicUrlText = text('publicUrl')
  const publicUrl =
    publicUrlText === undefined ? defaults.publicUrl : parseUrl(field('publicUrl'), publicUrlText, problems)
  if (publicUrlText !== undefined && publicUrl !== undefined)
    problems.push(...checkPublicUrl(field('publicUrl'), publicUrl))
  if (publicUrlText === undefined && defaults.publicUrl === undefined)
    problems.push(`${field('publicUrl')} is required (or "BFF_PUBLIC_URL", the default of every frontend)`)
  // Its host is what selects the frontend: one that no Host header can match would never be served.
  const host = publicUrl === undefined ? undefined : normalizeHost(publicUrl.host)
  if (publicUrl !== undefined && host === undefined)
    problems.push(
      `${field('publicUrl')} has a host no request can be matched to (a DNS name of labels up to 63 characters, or an IP address)`,
    )

  const pathPrefix = text('pathPrefix') ?? ''
  if (pathPrefix !== '') {
    if (!PATH_PREFIX.test(pathPrefix) || /\/\.\.?(?:\/|$)/.test(pathPrefix)) {
      problems.push(
        `${field('pathPrefix')} must be a path like "/admin": segments of letters, digits, ".", "_", "~" and "-", no "." or ".." segment, no trailing "/"`,
      )
    } else if (
      RESERVED_PREFIXES.some((p) => pathPrefix.toLowerCase() === p || pathPrefix.toLowerCase().startsWith(`${p}/`))
    ) {
      problems.push(`${field('pathPrefix')} "${pathPrefix}" collides with bffgate's own endpoints`)
    }
  }

  const issuerText = text('issuer')
  if (issuerText !== undefined) {
    const issuer = parseUrl(field('issuer'), issuerText, problems)
    if (issuer !== undefined) problems.push(...checkIssuer(field('issuer'), issuer, defaults.allowInsecureHttp))
  } else if (defaults.issuer === undefined) {
    problems.push(`${field('issuer')} is required (or "BFF_OIDC_ISSUER", the default of every frontend)`)
  }

  const clientId = text('clientId')
  if (clientId === undefined && f.clientId === undefined) problems.push(`${field('clientId')} is required`)
  const secretFile = text('clientSecretFile')
  const keyFile = text('clientPrivateKeyFile')
  const clientSecret =
    secretFile === undefined ? undefined : readSecretFile(field('clientSecretFile'), secretFile, readFile, problems)
  const clientPrivateKey =
    keyFile === undefined ? undefined : readSecretFile(field('clientPrivateKeyFile'), keyFile, readFile, problems)
  const authMethodText = text('tokenEndpointAuthMethod')
  if (authMethodText !== undefined && !AUTH_METHODS.includes(authMethodText as TokenEndpointAuthMethod)) {
    problems.push(`${field('tokenEndpointAuthMethod')} must be one of ${AUTH_METHODS.join(', ')}`)
  }
  const authMethod = authMethodText === undefined ? defaults.authMethod : (authMethodText as TokenEndpointAuthMethod)
  // A file that cannot be read is reported already; the pairing is checked on the keys given.
  if (
    (secretFile === undefined || clientSecret !== undefined) &&
    (keyFile === undefined || clientPrivateKey !== undefined)
  ) {
    const labels = {
      secret: field('clientSecretFile'),
      privateKey: field('clientPrivateKeyFile'),
      authMethod: field('tokenEndpointAuthMethod'),
    }
    problems.push(
      ...checkClientAuthentication(labels, { clientSecret: secretFile, clientPrivateKey: keyFile, authMethod }),
    )
  }

  const ownScopes = list('scopes', /\s+/)
  const refreshTokenKind =
    ownScopes === undefined ? defaults.refreshTokenKind : refreshTokenKindOf(field('scopes'), ownScopes, problems)

  const postLogoutText = text('postLogoutRedirectUrl')
  const postLogoutRedirectUrl =
    postLogoutText === undefined ? undefined : parseUrl(field('postLogoutRedirectUrl'), postLogoutText, problems)

  const cookieName =
    text('cookieName') ?? (pathPrefix === '' ? `__Host-Http-bff-${name ?? ''}` : `__Secure-bff-${name ?? ''}`)
  if (pathPrefix === '') problems.push(...checkHostCookieName(field('cookieName'), cookieName))
  else if (!cookieName.startsWith('__Secure-') || !COOKIE_NAME_CHARS.test(cookieName)) {
    problems.push(
      `${field('cookieName')} must start with "__Secure-" and contain only cookie-name characters: under a pathPrefix the cookie is scoped to that path, which a "__Host-" cookie cannot be`,
    )
  }

  const routes = f.routes === undefined ? [] : parseRoutes(f.routes, field('routes'), problems)
  const staticDir = text('staticDir')
  const ownCsp = text('contentSecurityPolicy')
  if (ownCsp !== undefined) {
    const csp = checkContentSecurityPolicy(ownCsp, field('contentSecurityPolicy'))
    problems.push(...csp.problems)
    warnings.push(...csp.warnings)
  }
  const ownLoginParameters = list('loginParameters', /[\s,]+/)
  const loginParameters = ownLoginParameters?.length === 1 && ownLoginParameters[0] === 'none' ? [] : ownLoginParameters
  if (loginParameters !== undefined)
    problems.push(...checkLoginParameterNames(loginParameters, field('loginParameters')))
  const ownErrorPath = text('loginErrorPath')
  if (ownErrorPath !== undefined) problems.push(...checkLoginErrorPath(ownErrorPath, field('loginErrorPath')))

  const audience = text('audience') ?? defaults.audience
  const par = flag('par', defaults.par)
  const dpop = flag('dpop', defaults.dpop)
  const revoke = flag('revokeRefreshTokenOnLogout', defaults.revokeRefreshTokenOnLogout)

  if (
    problems.length > before ||
    publicUrl === undefined ||
    host === undefined ||
    clientId === undefined ||
    name === undefined
  )
    return undefined
  return {
    name,
    publicUrl,
    pathPrefix,
    hosts: [host],
    issuer: issuerText ?? defaults.issuer!,
    clientId,
    clientSecret,
    clientPrivateKey,
    authMethod,
    scopes: ownScopes ?? defaults.scopes ?? [],
    refreshTokenKind,
    audience,
    par: par ?? false,
    dpop: dpop ?? false,
    revokeRefreshTokenOnLogout: revoke ?? false,
    timeoutSeconds: defaults.timeoutSeconds ?? 5,
    allowInsecureHttp: defaults.allowInsecureHttp ?? false,
    postLogoutRedirectUrl,
    cookieName,
    routes,
    staticDir,
    contentSecurityPolicy: ownCsp ?? defaults.contentSecurityPolicy ?? '',
    loginParameters: loginParameters ?? defaults.loginParameters ?? [],
    loginErrorPath: ownErrorPath ?? defaults.loginErrorPath ?? '/',
  }
}

/**
 * Clashes between frontends: a repeated name, cookie name or client (issuer and client id),
 * and two frontends that could answer the same request or whose cookies would reach each other.
 * A frontend's requests and its cookie's scope are one and the same region, its hosts times
 * the path subtree under its prefix (cookies ignore ports; `__Host-` cookies are host-only;
 * a prefixed frontend's cookie has that prefix as its Path), so the regions must be disjoint.
 * Prefixes are compared ignoring letter case: servers on case-insensitive file systems do.
 */
export function checkFrontendClashes(frontends: readonly FrontendParts[], warnings: string[]): string[] {
  const problems: string[] = []
  const label = (f: FrontendParts): string => `frontends[${frontends.indexOf(f)}] (${f.name})`
  frontends.forEach((f, j) => {
    for (const other of frontends.slice(0, j)) {
      if (other.name === f.name) problems.push(`${label(f)}.name "${f.name}" is also the name of ${label(other)}`)
      if (other.cookieName === f.cookieName)
        problems.push(`${label(f)}.cookieName "${f.cookieName}" is also the cookie of ${label(other)}`)
      if (other.clientId === f.clientId && other.issuer === f.issuer) {
        problems.push(
          `${label(f)}.clientId "${f.clientId}" at ${f.issuer} is also the client of ${label(other)}: a back-channel logout token names its client as audience, so each frontend needs its own client`,
        )
      }
      const sharedHost = hostsOverlap(f, other)
      if (sharedHost === undefined) continue
      const a = f.pathPrefix.toLowerCase()
      const b = other.pathPrefix.toLowerCase()
      const where = sharedHost === '*' ? 'every host' : `host ${sharedHost}`
      if (a === b) {
        problems.push(
          `${label(f)} and ${label(other)} both answer ${where} under path "${f.pathPrefix || '/'}": which frontend a request is for would be ambiguous; give them different publicUrl hosts or pathPrefixes`,
        )
      } else if (isUnder(a, b) || isUnder(b, a)) {
        const [outer, inner] = isUnder(a, b) ? [other, f] : [f, other]
        problems.push(
          `${label(outer)}'s cookie (Path=${outer.pathPrefix || '/'}) would reach ${label(inner)} under "${inner.pathPrefix}" on ${where}: give them different publicUrl hosts or pathPrefixes that do not contain each other`,
        )
      } else {
        warnings.push(
          `frontends ${other.name} and ${f.name} share ${where}, one origin: their cookies are kept apart by path, but a script of one can call the other's API with the user's cookie for it; give them separate hosts if they must be isolated from each other's scripts`,
        )
      }
    }
  })
  return problems
}

/** A host both answer (`*`: every host), or `undefined` when their hosts are disjoint. */
function hostsOverlap(a: FrontendParts, b: FrontendParts): string | undefined {
  if (a.hosts === undefined) return b.hosts?.[0] ?? '*'
  if (b.hosts === undefined) return a.hosts[0]
  return a.hosts.find((h) => b.hosts!.includes(h))
}

/** True when the subtree of `inner` lies in the subtree of `outer` (`''` is the root). */
function isUnder(inner: string, outer: string): boolean {
  return outer === '' || inner.startsWith(`${outer}/`)
}

/** The frontend as the request path reads it: paths and URLs with the prefix, the cookie's scope. */
export function assembleFrontend(p: FrontendParts): FrontendConfig {
  const origin = p.publicUrl.origin
  const base = `${origin}${p.pathPrefix}`
  return {
    name: p.name,
    publicUrl: origin,
    pathPrefix: p.pathPrefix,
    ...(p.hosts !== undefined && { hosts: p.hosts }),
    oidc: {
      // Kept as written: openid-client compares the issuer exactly, trailing slash included.
      issuer: p.issuer.trim(),
      clientId: p.clientId,
      ...(p.clientSecret !== undefined && { clientSecret: p.clientSecret }),
      ...(p.clientPrivateKey !== undefined && { clientPrivateKey: p.clientPrivateKey }),
      tokenEndpointAuthMethod:
        p.authMethod ?? (p.clientPrivateKey !== undefined ? 'private_key_jwt' : 'client_secret_post'),
      scopes: p.scopes,
      ...(p.audience !== undefined && { audience: p.audience }),
      timeoutSeconds: p.timeoutSeconds,
      allowInsecureHttp: p.allowInsecureHttp,
      redirectUri: `${base}/bff/callback`,
      postLogoutRedirectUri: p.postLogoutRedirectUrl?.href ?? `${base}/bff/logged-out`,
      revokeRefreshTokenOnLogout: p.revokeRefreshTokenOnLogout,
      dpop: p.dpop,
      par: p.par,
    },
    refreshTokenKind: p.refreshTokenKind,
    cookie: { name: p.cookieName, path: p.pathPrefix === '' ? '/' : p.pathPrefix },
    routes: p.routes.map((r) => ({ ...r, path: `${p.pathPrefix}${r.path}` })),
    ...(p.staticDir !== undefined && { staticDir: p.staticDir }),
    contentSecurityPolicy: p.contentSecurityPolicy.trim(),
    login: { parameters: [...new Set(p.loginParameters)], errorPath: `${p.pathPrefix}${p.loginErrorPath.trim()}` },
  }
}
