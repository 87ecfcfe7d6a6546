/**
 * Demo upstream API for development and tests: answers any path and method once the request
 * carries a valid access token from the configured issuer, and echoes what it received
 * (method, path, token claims, headers, and the size and SHA-256 of the body). A few paths
 * answer content instead, for the SPA's streams, images and downloads (see `contentFor`).
 */
import { createHash } from 'node:crypto'
import { createServer } from 'node:http'
import { WebSocketServer } from 'ws'
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { isIPv6 } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import type { JWTPayload } from 'jose'
import { createTokenVerifier } from './verify.ts'
import type { VerifyFailure } from './verify.ts'

/** What the API received, for tests to assert on (e.g. which headers a proxy forwarded). */
export interface DemoApiRequestLog {
  method: string
  /** Path and query as received. */
  url: string
  headers: IncomingHttpHeaders
  authorized: boolean
  /** 0 until the answer is sent (e.g. while {@link DemoApi.setDelay} holds it). */
  status: number
  /** Claims of the access token when it verified (also when the request was then rejected by force). */
  claims?: JWTPayload
  /** True when a valid token was refused by {@link DemoApi.rejectNext}. */
  forcedRejection?: boolean
}

export interface DemoApiOptions {
  /** Issuer of the access tokens; its discovery document names the JWKS. */
  issuer: string
  /** Required `aud` of the access tokens. */
  audience: string | string[]
  /** Default 0 (a free port). */
  port?: number
  /** Default '127.0.0.1'. */
  host?: string
  /** Demand the API's own nonce in DPoP proofs (RFC 9449 §9); default false. */
  requireDpopNonce?: boolean
}

/** A running demo API. */
export interface DemoApi {
  /** `http://127.0.0.1:<port>` */
  url: string
  port: number
  close(): Promise<void>
  /** Every request received so far, oldest first. */
  requests(): DemoApiRequestLog[]
  /**
   * The next `count` requests with a valid token are refused as if the API had revoked that
   * token: 401, `WWW-Authenticate: <scheme> error="invalid_token"` (Bearer, or DPoP for a
   * DPoP request) and `{"error":"invalid_token"}`; logged with `status: 401`,
   * `authorized: false` and `forcedRejection: true`. Replaces a count still pending; 0 cancels.
   */
  rejectNext(count: number): void
  /** Every answer (refusals included) waits `ms` before it is sent, for upstream timeout tests; 0 = off. */
  setDelay(ms: number): void
  /** Server-sent event streams (`.../events`) open right now. */
  openStreams(): number
}

/** The body of a successful answer. */
export interface DemoApiEcho {
  method: string
  path: string
  claims: JWTPayload
  headers: IncomingHttpHeaders
  body: { bytes: number; sha256: string }
}

function sendJson(res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  const body = JSON.stringify(value)
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    ...headers,
  })
  res.end(body)
}

/** The 401/503 answer for a refused request (RFC 6750 section 3, RFC 9449 section 7.1). */
function refuse(res: ServerResponse, failure: VerifyFailure): number {
  switch (failure.kind) {
    case 'missing':
      sendJson(res, 401, { error: 'unauthorized' }, { 'www-authenticate': 'Bearer' })
      return 401
    case 'invalid_token':
      sendJson(res, 401, { error: 'invalid_token' }, { 'www-authenticate': `${failure.scheme} error="invalid_token"` })
      return 401
    case 'use_dpop_nonce':
      sendJson(
        res,
        401,
        { error: 'use_dpop_nonce' },
        { 'www-authenticate': 'DPoP error="use_dpop_nonce"', 'dpop-nonce': failure.nonce },
      )
      return 401
    case 'invalid_dpop_proof':
      sendJson(res, 401, { error: 'invalid_dpop_proof' }, { 'www-authenticate': 'DPoP error="invalid_dpop_proof"' })
      return 401
    case 'unavailable':
      sendJson(res, 503, { error: 'temporarily_unavailable' })
      return 503
  }
}

function nonNegativeInteger(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 0)
    throw new TypeError(`${name} must be a non-negative integer, got ${value}`)
  return value
}

/** Hashes the request body as it streams in: any size, nothing buffered. */
async function digestBody(req: IncomingMessage): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash('sha256')
  let bytes = 0
  for await (const chunk of req) {
    const buffer = chunk as Buffer
    bytes += buffer.length
    hash.update(buffer)
  }
  return { bytes, sha256: hash.digest('hex') }
}

function headerValues(value: string | string[] | undefined): string[] {
  if (value === undefined) return []
  return Array.isArray(value) ? value : [value]
}

/** A small SVG picture, for `<img src>` through the gateway. */
const AVATAR_SVG =
  '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="48" viewBox="0 0 64 48"><rect width="64" height="48" fill="#2a6"/><circle cx="32" cy="24" r="14" fill="#fff"/></svg>'

type Content = 'events' | { type: string; body: string; disposition?: string }

/**
 * Authorized content besides the echo, by the path's last segment: `events` (server-sent
 * events), `avatar.svg` (an image) and `report.csv` (a download, `Content-Disposition:
 * attachment`).
 */
function contentFor(path: string): Content | undefined {
  const last = path.split('?')[0]!.split('/').pop()
  if (last === 'events') return 'events'
  if (last === 'avatar.svg') return { type: 'image/svg+xml', body: AVATAR_SVG }
  if (last === 'report.csv')
    return {
      type: 'text/csv; charset=utf-8',
      body: 'order,total\n42,19.99\n43,5.00\n',
      disposition: 'attachment; filename="report.csv"',
    }
  return undefined
}

function sendContent(res: ServerResponse, content: Exclude<Content, 'events'>): void {
  res.writeHead(200, {
    'content-type': content.type,
    'content-length': Buffer.byteLength(content.body),
    ...(content.disposition !== undefined && { 'content-disposition': content.disposition }),
  })
  res.end(content.body)
}

/** Starts the demo API and resolves once it is listening. */
export async function startDemoApi(options: DemoApiOptions): Promise<DemoApi> {
  const host = options.host ?? '127.0.0.1'
  const verify = createTokenVerifier({
    issuer: options.issuer,
    audience: options.audience,
    ...(options.requireDpopNonce !== undefined && { requireDpopNonce: options.requireDpopNonce }),
  })
  const log: DemoApiRequestLog[] = []
  let rejectRemaining = 0
  let delayMs = 0

  /** Waits the configured delay before an answer; unreferenced, so it never holds a process open. */
  async function delayAnswer(): Promise<void> {
    if (delayMs > 0) await sleep(delayMs, undefined, { ref: false })
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET'
    const path = req.url ?? '/'
    const entry: DemoApiRequestLog = { method, url: path, headers: req.headers, authorized: false, status: 0 }
    log.push(entry)

    const result = await verify({
      authorization: req.headers.authorization,
      dpop: headerValues(req.headers.dpop),
      method,
      url: `http://${req.headers.host ?? 'localhost'}${path.split('?')[0]}`,
    })
    // A forced rejection is claimed on arrival, so concurrent requests never take more than asked.
    const forced = result.ok && rejectRemaining > 0
    if (forced) rejectRemaining -= 1
    if (!result.ok || forced) {
      // Discard the body instead of leaving the client's upload hanging.
      req.resume()
      await delayAnswer()
      if (result.ok) {
        entry.claims = result.claims
        entry.forcedRejection = true
        entry.status = refuse(res, { kind: 'invalid_token', scheme: result.scheme, reason: 'rejected by rejectNext()' })
      } else {
        entry.status = refuse(res, result.failure)
      }
      return
    }

    entry.authorized = true
    entry.claims = result.claims
    const content = contentFor(path)
    if (content !== undefined) {
      req.resume()
      entry.status = 200
      if (content === 'events') streamEvents(res, result.claims, path)
      else sendContent(res, content)
      return
    }
    const body = await digestBody(req)
    const echo: DemoApiEcho = { method, path, claims: result.claims, headers: req.headers, body }
    await delayAnswer()
    entry.status = 200
    sendJson(res, 200, echo)
  }

  let openStreams = 0
  /**
   * Server-sent events for the caller: `retry: 500`, then one `tick` event (`{"n", "sub",
   * "writtenAt"}`) right away and every `every` ms (query, default 1000, at least 20), `count`
   * of them (query; default: until the client goes away), each written on its own.
   */
  function streamEvents(res: ServerResponse, claims: JWTPayload, path: string): void {
    const query = new URLSearchParams(path.split('?')[1] ?? '')
    const every = Math.max(20, Number(query.get('every') ?? 1000) || 1000)
    const count = Number(query.get('count') ?? 0) || Infinity
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' })
    res.write('retry: 500\n\n')
    openStreams += 1
    let n = 0
    const tick = () => {
      n += 1
      res.write(`id: ${n}\nevent: tick\ndata: ${JSON.stringify({ n, sub: claims.sub, writtenAt: Date.now() })}\n\n`)
      if (n >= count) {
        clearInterval(timer)
        res.end()
      }
    }
    const timer = setInterval(tick, every)
    timer.unref()
    res.once('close', () => {
      clearInterval(timer)
      openStreams -= 1
    })
    tick()
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) sendJson(res, 500, { error: 'server_error' })
      else res.destroy(error as Error)
    })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const { port } = server.address() as AddressInfo

  // WebSocket echo at any path: the upgrade needs a valid bearer token, like every request.
  // Each message is answered with the caller's subject, the message, and the upgrade's headers.
  const sockets = new WebSocketServer({ noServer: true })
  server.on('upgrade', (req, socket, head) => {
    const entry: DemoApiRequestLog = {
      method: 'UPGRADE',
      url: req.url ?? '/',
      headers: req.headers,
      authorized: false,
      status: 0,
    }
    log.push(entry)
    verify({
      authorization: req.headers.authorization,
      dpop: headerValues(req.headers.dpop),
      method: 'GET',
      url: `http://${req.headers.host ?? 'localhost'}${(req.url ?? '/').split('?')[0]}`,
    }).then(
      (result) => {
        if (!result.ok) {
          entry.status = 401
          socket.end(
            'HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer error="invalid_token"\r\nContent-Length: 0\r\n\r\n',
          )
          return
        }
        entry.authorized = true
        entry.claims = result.claims
        entry.status = 101
        sockets.handleUpgrade(req, socket, head, (ws) => {
          ws.on('message', (data) => {
            ws.send(JSON.stringify({ sub: result.claims.sub, message: data.toString(), headers: req.headers }))
          })
        })
      },
      () => socket.destroy(),
    )
  })

  return {
    url: `http://${isIPv6(host) ? `[${host}]` : host}:${port}`,
    port,
    requests: () => log.map((entry) => ({ ...entry })),
    openStreams: () => openStreams,
    rejectNext: (count) => {
      rejectRemaining = nonNegativeInteger('count', count)
    },
    setDelay: (ms) => {
      delayMs = nonNegativeInteger('ms', ms)
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        if (!server.listening) {
          resolve()
          return
        }
        for (const client of sockets.clients) client.terminate()
        server.close((error) => (error ? reject(error) : resolve()))
        server.closeAllConnections()
      }),
  }
}
