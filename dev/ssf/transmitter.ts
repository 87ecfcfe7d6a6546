/**
 * Development Shared Signals transmitter (SSF 1.0, CAEP 1.0), for local development and the
 * integration tests: it signs Security Event Tokens with its own key, publishes
 * `/.well-known/ssf-configuration` and its JWKS, pushes a SET to a receiver (RFC 8935), queues
 * SETs for a receiver that polls (RFC 8936, with long polling and acknowledgements), and
 * calls a Global Token Revocation endpoint with a bearer JWT it signs (as Okta Universal Logout
 * does; its `.well-known/openid-configuration` names the same keys). Plain HTTP on loopback.
 */
import { randomBytes, randomUUID } from 'node:crypto'
import { createServer } from 'node:http'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { isIPv6 } from 'node:net'
import { exportJWK, generateKeyPair, SignJWT } from 'jose'
import type { CryptoKey, JWK } from 'jose'
import { readSmallBody, sendJson } from '../idp/http.ts'

export const SESSION_REVOKED = 'https://schemas.openid.net/secevent/caep/event-type/session-revoked'
export const CREDENTIAL_CHANGE = 'https://schemas.openid.net/secevent/caep/event-type/credential-change'
export const VERIFICATION = 'https://schemas.openid.net/secevent/ssf/event-type/verification'

export interface TransmitterOptions {
  /** Address to listen on; default 127.0.0.1. */
  host?: string
  /** The `aud` of the SETs it signs (the receiver's stream audience). */
  audience: string
  /** Issuer of the users its subjects name (`iss_sub`): the development IdP's; settable later. */
  userIssuer?: string
  /** Complex-subject members receivers must be able to process (`critical_subject_members`). */
  criticalSubjectMembers?: string[]
}

/** A signed SET and its `jti`. */
export interface SignedSet {
  jti: string
  token: string
}

/** Claims of a SET, overriding the defaults (`iss`, `aud`, `iat`, `jti`); `undefined` drops a claim. */
export type SetClaims = Record<string, unknown>

export interface SignOptions {
  /** JOSE header `typ`; default `secevent+jwt`. */
  typ?: string
  /** Sign with this key instead (a stranger's, for tests of refusal). */
  key?: { privateKey: CryptoKey; kid: string }
}

export interface DevTransmitter {
  /** `http://127.0.0.1:<port>`: the `iss` of its SETs. */
  issuer: string
  /** The poll endpoint of its one stream. */
  pollUrl: string
  /** The `Authorization` value the poll endpoint wants. */
  pollAuthorization: string
  /** Issuer of the users `sessionRevoked` and `credentialChange` name (the development IdP's). */
  userIssuer: string
  /** A SET with one event about `subId`. */
  sign(
    event: string,
    eventClaims: Record<string, unknown>,
    subId: unknown,
    claims?: SetClaims,
    options?: SignOptions,
  ): Promise<SignedSet>
  /** CAEP session-revoked for a user, or for one IdP session of theirs (complex subject) when `sid` is given. */
  sessionRevoked(sub: string, sid?: string): Promise<SignedSet>
  /** CAEP credential-change (a password change) of a user. */
  credentialChange(sub: string): Promise<SignedSet>
  /** POSTs a SET to a push endpoint (RFC 8935) and returns the answer. */
  push(
    url: string,
    token: string,
    options?: { authorization?: string; contentType?: string },
  ): Promise<{ status: number; body: unknown }>
  /** Queues a SET for the poll endpoint. */
  enqueue(set: SignedSet): void
  /** SETs queued and not acknowledged yet. */
  pending(): string[]
  /** `jti` → error the receiver reported in `setErrs`. */
  reportedErrors(): Record<string, { err: string; description: string }>
  /** How many poll requests arrived, and the most that were open at once. */
  polls(): { total: number; maxConcurrent: number }
  /** A bearer JWT for a Global Token Revocation endpoint (`aud` = its URL), signed with the transmitter's key. */
  callerToken(audience: string, claims?: Record<string, unknown>, options?: SignOptions): Promise<string>
  /** Calls a Global Token Revocation endpoint for `subId` with a fresh caller token (or `token`). */
  revokeGlobally(url: string, subId: unknown, options?: { token?: string }): Promise<{ status: number }>
  /** A key pair unknown to every receiver, with the transmitter's own `kid` by default. */
  strangerKey(kid?: string): Promise<{ privateKey: CryptoKey; kid: string }>
  close(): Promise<void>
}

/** Longest a poll request is held open waiting for events (RFC 8936 long polling), ms. */
const LONG_POLL_MS = 25_000

export async function startDevTransmitter(options: TransmitterOptions): Promise<DevTransmitter> {
  const host = options.host ?? '127.0.0.1'
  const kid = randomUUID()
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true })
  const publicJwk: JWK = { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' }
  const pollAuthorization = `Bearer ${randomBytes(24).toString('base64url')}`

  const queue = new Map<string, string>()
  const errors: Record<string, { err: string; description: string }> = {}
  let pollCount = 0
  let openPolls = 0
  let maxOpenPolls = 0
  const waiting = new Set<() => void>()

  let issuer = ''
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = new URL(req.url ?? '/', 'http://transmitter.invalid').pathname
    if (req.method === 'GET' && path === '/.well-known/ssf-configuration') {
      return sendJson(res, 200, {
        issuer,
        jwks_uri: `${issuer}/jwks`,
        delivery_methods_supported: ['urn:ietf:rfc:8935', 'urn:ietf:rfc:8936'],
        spec_version: '1_0',
        ...(options.criticalSubjectMembers !== undefined && {
          critical_subject_members: options.criticalSubjectMembers,
        }),
      })
    }
    if (req.method === 'GET' && path === '/.well-known/openid-configuration')
      return sendJson(res, 200, { issuer, jwks_uri: `${issuer}/jwks` })
    if (req.method === 'GET' && path === '/jwks') return sendJson(res, 200, { keys: [publicJwk] })
    if (req.method === 'POST' && path === '/poll') return poll(req, res)
    sendJson(res, 404, { error: 'not_found' })
  }

  /** RFC 8936 §2.4: acknowledgements and errors first, then what is pending (waiting for some unless asked not to). */
  const poll = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    pollCount += 1
    if (req.headers.authorization !== pollAuthorization) return sendJson(res, 401, { error: 'invalid_token' })
    openPolls += 1
    maxOpenPolls = Math.max(maxOpenPolls, openPolls)
    try {
      await answerPoll(req, res)
    } finally {
      openPolls -= 1
    }
  }
  const answerPoll = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    let body: { ack?: unknown; setErrs?: unknown; maxEvents?: unknown; returnImmediately?: unknown }
    try {
      body = JSON.parse(await readSmallBody(req)) as typeof body
    } catch {
      return sendJson(res, 400, { err: 'invalid_request', description: 'body is not JSON' })
    }
    if (Array.isArray(body.ack)) for (const jti of body.ack) if (typeof jti === 'string') queue.delete(jti)
    if (body.setErrs !== null && typeof body.setErrs === 'object') {
      for (const [jti, error] of Object.entries(body.setErrs as Record<string, { err: string; description: string }>)) {
        errors[jti] = error
        queue.delete(jti)
      }
    }
    const maxEvents = typeof body.maxEvents === 'number' ? body.maxEvents : 100
    if (queue.size === 0 && body.returnImmediately !== true && maxEvents > 0) {
      await new Promise<void>((resolve) => {
        const done = () => {
          waiting.delete(done)
          clearTimeout(timer)
          resolve()
        }
        const timer = setTimeout(done, LONG_POLL_MS)
        waiting.add(done)
        req.once('close', done)
      })
    }
    if (res.destroyed) return
    const sets = Object.fromEntries([...queue].slice(0, Math.max(0, maxEvents)))
    sendJson(res, 200, { sets, moreAvailable: queue.size > Object.keys(sets).length })
  }
  const wake = () => {
    for (const done of [...waiting]) done()
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) sendJson(res, 500, { error: 'server_error', description: (error as Error).message })
    })
  })
  await new Promise<void>((resolve) => server.listen(0, host, resolve))
  const { port } = server.address() as AddressInfo
  issuer = `http://${isIPv6(host) ? `[${host}]` : host}:${port}`

  const signWith = (claims: Record<string, unknown>, typ: string, key: { privateKey: CryptoKey; kid: string }) => {
    for (const [name, value] of Object.entries(claims)) if (value === undefined) delete claims[name]
    return new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: key.kid, typ }).sign(key.privateKey)
  }
  const own = { privateKey, kid }

  const transmitter: DevTransmitter = {
    issuer,
    pollUrl: `${issuer}/poll`,
    pollAuthorization,
    userIssuer: options.userIssuer ?? '',
    async sign(event, eventClaims, subId, claims = {}, signOptions = {}) {
      const jti = randomUUID()
      const payload: Record<string, unknown> = {
        iss: issuer,
        aud: options.audience,
        iat: Math.floor(Date.now() / 1000),
        jti,
        sub_id: subId,
        events: { [event]: eventClaims },
        ...claims,
      }
      const token = await signWith(payload, signOptions.typ ?? 'secevent+jwt', signOptions.key ?? own)
      return { jti: typeof payload.jti === 'string' ? payload.jti : jti, token }
    },
    sessionRevoked(sub, sid) {
      const user = { format: 'iss_sub', iss: transmitter.userIssuer, sub }
      const subject = sid === undefined ? user : { format: 'complex', user, session: { format: 'opaque', id: sid } }
      return transmitter.sign(
        SESSION_REVOKED,
        { initiating_entity: 'admin', event_timestamp: Math.floor(Date.now() / 1000) },
        subject,
      )
    },
    credentialChange(sub) {
      return transmitter.sign(
        CREDENTIAL_CHANGE,
        { credential_type: 'password', change_type: 'update', event_timestamp: Math.floor(Date.now() / 1000) },
        { format: 'iss_sub', iss: transmitter.userIssuer, sub },
      )
    },
    async push(url, token, { authorization, contentType = 'application/secevent+jwt' } = {}) {
      const response = await fetch(url, {
        method: 'POST',
        headers: {
          'content-type': contentType,
          accept: 'application/json',
          ...(authorization !== undefined && { authorization }),
        },
        body: token,
      })
      const text = await response.text()
      return { status: response.status, body: text === '' ? undefined : (JSON.parse(text) as unknown) }
    },
    enqueue(set) {
      queue.set(set.jti, set.token)
      wake()
    },
    pending: () => [...queue.keys()],
    reportedErrors: () => ({ ...errors }),
    polls: () => ({ total: pollCount, maxConcurrent: maxOpenPolls }),
    callerToken(audience, claims = {}, signOptions = {}) {
      const now = Math.floor(Date.now() / 1000)
      return signWith(
        { iss: issuer, sub: 'universal-logout', aud: audience, iat: now, exp: now + 300, jti: randomUUID(), ...claims },
        signOptions.typ ?? 'JWT',
        signOptions.key ?? own,
      )
    },
    async revokeGlobally(url, subId, { token } = {}) {
      const response = await fetch(url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          authorization: `Bearer ${token ?? (await transmitter.callerToken(url))}`,
        },
        body: JSON.stringify({ sub_id: subId }),
      })
      await response.arrayBuffer()
      return { status: response.status }
    },
    async strangerKey(strangerKid = kid) {
      const pair = await generateKeyPair('ES256', { extractable: true })
      return { privateKey: pair.privateKey, kid: strangerKid }
    },
    async close() {
      for (const done of [...waiting]) done()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
  return transmitter
}
