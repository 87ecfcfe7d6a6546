import compress from '@fastify/compress'
import fastifyStatic from '@fastify/static'
import type { FastifyInstance } from 'fastify'
import { stat } from 'node:fs/promises'
import { resolve, sep } from 'node:path'
import { constants as zlib } from 'node:zlib'
import { RESERVED_PREFIXES } from '../config/load.ts'
import { isHistoryFallback, staticCacheControl } from './policy.ts'

export interface SpaOptions {
  /** The folder of the built SPA. */
  readonly root: string
  /** Sent with every file of the SPA. */
  readonly contentSecurityPolicy: string
  /** Proxied route prefixes: never answered with `index.html`. */
  readonly routePrefixes: readonly string[]
  /** The frontend's path prefix (docs/frontends.md): the SPA is served under it; `''` (default): at the root. */
  readonly pathPrefix: string
}

/**
 * Serves the SPA like a static host (docs/spa.md): files from `root` with pre-compressed
 * `.br`/`.gz` siblings when present, brotli or gzip on the fly otherwise; `index.html` for a
 * navigation to a deep link (history fallback); `no-cache` for `index.html`, a year and
 * `immutable` for hashed assets; the configured Content-Security-Policy.
 *
 * All of it lives in this encapsulated context: compression never touches the proxied routes
 * (zlib would hold back server-sent events) nor bffgate's own endpoints.
 */
export async function registerSpa(app: FastifyInstance, options: SpaOptions): Promise<void> {
  const root = resolve(options.root)
  const prefix = options.pathPrefix
  // Under a prefix, paths are read below it (the routes' paths include it; bffgate's own are under it too).
  const reserved =
    prefix === ''
      ? [...RESERVED_PREFIXES, ...options.routePrefixes]
      : [...RESERVED_PREFIXES, ...options.routePrefixes.map((path) => path.slice(prefix.length))]
  const prefixSegments = prefix.split('/').length
  await app.register(async (spa) => {
    await spa.register(compress, {
      encodings: ['br', 'gzip'],
      globalDecompression: false,
      // Quality 4 compresses about as well as gzip -6, at a speed fit for answers made on the fly.
      brotliOptions: { params: { [zlib.BROTLI_PARAM_QUALITY]: 4 } },
    })
    spa.addHook('onSend', async (_request, reply, payload) => {
      reply.header('content-security-policy', options.contentSecurityPolicy)
      return payload
    })
    // The static route takes every path bffgate has no route for; a deep link that is no file
    // gets index.html instead (a real file or folder of that name is still served as itself).
    spa.addHook('onRequest', async (request, reply) => {
      const full = request.url.split('?', 1)[0]!
      // The router matched the prefix's segments (maybe percent-encoded): the rest is the SPA's path.
      const pathname = prefix === '' ? full : `/${full.split('/').slice(prefixSegments).join('/')}`
      if (!isHistoryFallback(request.method, pathname, request.headers, reserved)) return
      if (await isFileOrFolder(root, pathname)) return
      // The same URL is a JSON 404 for a fetch: a cache must keep the two apart.
      reply.header('vary', 'Sec-Fetch-Mode, Accept')
      return reply.sendFile('index.html')
    })
    await spa.register(fastifyStatic, {
      root,
      ...(prefix !== '' && { prefix: `${prefix}/` }),
      // An array: with `preCompressed`, @fastify/static 10.1 looks for a folder's index only in an
      // array and answers `/` with a 404 to any browser that accepts gzip when given a string.
      index: ['index.html'],
      preCompressed: true,
      // Cache-Control is set per file below; ETag and Last-Modified make `no-cache` cheap.
      cacheControl: false,
      setHeaders: (reply: { header(name: string, value: string): unknown }, path: string) => {
        reply.header('cache-control', staticCacheControl(path))
      },
    })
  })
}

/** Whether `pathname` names a file or folder under `root` (a path that escapes it, or does not decode, names nothing). */
async function isFileOrFolder(root: string, pathname: string): Promise<boolean> {
  let decoded: string
  try {
    decoded = decodeURIComponent(pathname)
  } catch {
    return true // let the static route answer it (it refuses such paths)
  }
  if (decoded.includes('\0')) return true
  const path = resolve(root, `.${decoded}`)
  if (path !== root && !path.startsWith(`${root}${sep}`)) return true
  try {
    await stat(path)
    return true
  } catch {
    return false
  }
}
