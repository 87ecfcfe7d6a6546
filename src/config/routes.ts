import type { RouteConfig, RouteCsrfPolicy, RouteTokenMode } from './types.ts'

/** Parsing of the proxied routes (`BFF_ROUTES`, or a frontend's `routes`). Pure. */

const ROUTE_KEYS = new Set([
  'path',
  'upstream',
  'rewritePrefix',
  'audience',
  'scope',
  'token',
  'csrf',
  'websocket',
  'dpop',
])
const TOKEN_MODES: readonly RouteTokenMode[] = ['required', 'optional', 'none']
const CSRF_POLICIES: readonly RouteCsrfPolicy[] = ['header', 'same-origin']
/** bffgate's own paths: no route may take them, and the SPA's history fallback never answers them. */
export const RESERVED_PREFIXES = ['/bff', '/healthz', '/readyz', '/metrics']
/** A path prefix: `/` then path characters, no empty, `.` or `..` segment (checked apart). */
const PATH_PREFIX = /^\/[A-Za-z0-9._~!$&'()*+,;=:@/-]+$/

/** True when `path` is a usable prefix: `/x`, `/x/y`; no `//`, no `.` or `..` segment, no trailing `/`. */
export function isPathPrefix(path: string): boolean {
  return PATH_PREFIX.test(path) && !path.includes('//') && !/\/\.\.?(\/|$)/.test(path) && !path.endsWith('/')
}

/** True when `path` is one of bffgate's own prefixes or lies under one. */
export function isReservedPath(path: string): boolean {
  return RESERVED_PREFIXES.some((p) => path === p || path.startsWith(`${p}/`))
}

/**
 * The routes of `value` (a JSON array); each problem is named `label[index].key`, e.g.
 * `"BFF_ROUTES"[2].upstream`. Routes with a usable path and upstream are returned even when
 * another of their keys is wrong (the caller throws when there is any problem).
 */
export function parseRoutes(value: unknown, label: string, problems: string[]): RouteConfig[] {
  if (!Array.isArray(value)) {
    problems.push(`${label} must be a JSON array of routes`)
    return []
  }
  const routes: RouteConfig[] = []
  const seen = new Set<string>()
  value.forEach((item: unknown, i) => {
    const where = `${label}[${i}]`
    if (item === null || typeof item !== 'object' || Array.isArray(item)) {
      problems.push(`${where} must be an object`)
      return
    }
    const r = item as Record<string, unknown>
    for (const key of Object.keys(r)) if (!ROUTE_KEYS.has(key)) problems.push(`${where} has an unknown key "${key}"`)
    const path = typeof r.path === 'string' ? r.path.replace(/\/+$/, '') : undefined
    if (path === undefined || !isPathPrefix(path)) {
      problems.push(`${where}.path must be a path prefix like "/api"`)
    } else if (isReservedPath(path)) {
      problems.push(`${where}.path "${path}" collides with bffgate's own endpoints`)
    } else if (seen.has(path)) {
      problems.push(`${where}.path "${path}" is configured twice`)
    } else seen.add(path)
    let upstream: URL | undefined
    try {
      upstream = typeof r.upstream === 'string' ? new URL(r.upstream) : undefined
    } catch {
      /* reported below */
    }
    if (upstream === undefined || (upstream.protocol !== 'http:' && upstream.protocol !== 'https:')) {
      problems.push(`${where}.upstream must be an http(s) URL`)
    } else if (
      upstream.pathname !== '/' ||
      upstream.search ||
      upstream.hash ||
      upstream.username ||
      upstream.password
    ) {
      problems.push(
        `${where}.upstream must be an origin only, like "http://api:9000" (use rewritePrefix for a base path)`,
      )
    }
    const rewritePrefix = r.rewritePrefix ?? ''
    if (
      typeof rewritePrefix !== 'string' ||
      (rewritePrefix !== '' && !/^\/[A-Za-z0-9._~!$&'()*+,;=:@/-]*$/.test(rewritePrefix))
    ) {
      problems.push(`${where}.rewritePrefix must be "" or a path starting with "/"`)
    }
    const token = r.token ?? 'required'
    if (!TOKEN_MODES.includes(token as RouteTokenMode))
      problems.push(`${where}.token must be one of ${TOKEN_MODES.join(', ')}`)
    const csrf = r.csrf ?? 'header'
    if (!CSRF_POLICIES.includes(csrf as RouteCsrfPolicy))
      problems.push(`${where}.csrf must be one of ${CSRF_POLICIES.join(', ')}`)
    for (const key of ['audience', 'scope'] as const) {
      if (r[key] !== undefined && (typeof r[key] !== 'string' || r[key] === ''))
        problems.push(`${where}.${key} must be a non-empty string`)
    }
    for (const key of ['websocket', 'dpop'] as const) {
      if (r[key] !== undefined && typeof r[key] !== 'boolean') problems.push(`${where}.${key} must be true or false`)
    }
    if (path !== undefined && upstream !== undefined) {
      routes.push({
        path,
        upstream: upstream.origin,
        rewritePrefix: typeof rewritePrefix === 'string' ? rewritePrefix.replace(/\/+$/, '') : '',
        ...(typeof r.audience === 'string' && { audience: r.audience }),
        ...(typeof r.scope === 'string' && { scope: r.scope }),
        token: token as RouteTokenMode,
        csrf: csrf as RouteCsrfPolicy,
        websocket: r.websocket === true,
        dpop: r.dpop === true,
      })
    }
  })
  return routes
}
