/**
 * Test hooks of the development IdP: server-side session revocation (what Auth0's
 * "revoke session" Management API call does), token endpoint statistics, token endpoint
 * fault injection and corrupted ID tokens, callable in process and over HTTP under `/__dev/`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Provider, Session } from 'oidc-provider'
import type { DevStore } from './adapter.ts'
import { readFields, readSmallBody, sendJson } from './http.ts'
import type { IdTokenFaults } from './id-token-faults.ts'
import type { TokenFaults, TokenStats } from './middleware.ts'

/** Path prefix of the HTTP test hooks. */
export const HOOK_PREFIX = '/__dev/'

/** Sends a back-channel logout token to each client of the session that registered a URI. */
async function notifyClients(provider: Provider, session: Session, log: (message: string) => void): Promise<void> {
  const { accountId } = session
  if (accountId === undefined) return
  const deliveries = Object.keys(session.authorizations ?? {}).map(async (clientId) => {
    const client = await provider.Client.find(clientId)
    if (!client?.backchannelLogoutUri) return
    try {
      await client.backchannelLogout(accountId, session.sidFor(clientId))
    } catch (error) {
      // Like Auth0: a failed delivery is not retried and does not undo the revocation.
      log(`back-channel logout to client ${clientId} failed: ${(error as Error).message}`)
    }
  })
  await Promise.all(deliveries)
}

/**
 * Ends every IdP session of `sub`. Their online refresh tokens stop working at once (they are
 * bound to the session); clients with a back-channel logout URI get a logout token with the
 * session's `sid`, sent after the session is gone so a client reacting to it sees the end.
 * Returns the number of sessions ended.
 */
export async function revokeSessionsOf(
  provider: Provider,
  store: DevStore,
  sub: string,
  log: (message: string) => void,
): Promise<number> {
  let ended = 0
  for (const stored of store.sessionsOf(sub)) {
    if (typeof stored.jti !== 'string') continue
    const session = await provider.Session.find(stored.jti)
    if (!session) continue
    await session.destroy()
    ended += 1
    await notifyClients(provider, session, log)
  }
  return ended
}

export interface HookDependencies {
  revokeSessions(sub: string): Promise<number>
  stats: TokenStats
  faults: TokenFaults
  idTokenFaults: IdTokenFaults
}

/**
 * Reads a form or JSON body whose fields are numbers; JSON may give them as numbers or as
 * strings. An absent or empty field is undefined; anything else that is not a number is NaN,
 * which the setters refuse.
 */
async function readNumbers(req: IncomingMessage): Promise<Record<string, number | undefined>> {
  const text = await readSmallBody(req)
  let entries: Array<[string, unknown]>
  if ((req.headers['content-type'] ?? '').includes('application/json')) {
    const parsed: unknown = text === '' ? {} : JSON.parse(text)
    entries = parsed && typeof parsed === 'object' ? Object.entries(parsed) : []
  } else {
    entries = [...new URLSearchParams(text)]
  }
  const numbers: Record<string, number | undefined> = {}
  for (const [key, value] of entries) {
    if (value === '' || value === null) continue
    numbers[key] = typeof value === 'number' || typeof value === 'string' ? Number(value) : Number.NaN
  }
  return numbers
}

/** Runs a setter with fields from a request; a refused value becomes a 400 answer. */
async function applyNumbers(
  req: IncomingMessage,
  res: ServerResponse,
  apply: (fields: Record<string, number | undefined>) => unknown,
): Promise<void> {
  let fields: Record<string, number | undefined>
  try {
    fields = await readNumbers(req)
  } catch (error) {
    sendJson(res, 400, { error: 'invalid_request', error_description: (error as Error).message })
    return
  }
  let result: unknown
  try {
    result = apply(fields)
  } catch (error) {
    if (!(error instanceof TypeError)) throw error
    sendJson(res, 400, { error: 'invalid_request', error_description: error.message })
    return
  }
  sendJson(res, 200, result)
}

/**
 * Handles `POST /__dev/revoke-sessions` (form or JSON `sub`), `GET /__dev/stats`,
 * `POST /__dev/reset-stats`, `POST /__dev/token-delay` (`ms`) and `POST /__dev/token-failures`
 * (`status`, `count`, optional `retryAfter`) and `POST /__dev/misbehave-next-token-response`
 * (`kind`: an ID token misbehaviour, or `none` to disarm; `GET` tells the armed one).
 * Returns false when the path is not a hook path.
 */
export function createHookHandler({ revokeSessions, stats, faults, idTokenFaults }: HookDependencies) {
  return async function handleHook(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> {
    if (!url.pathname.startsWith(HOOK_PREFIX)) return false
    const route = `${req.method ?? 'GET'} ${url.pathname.slice(HOOK_PREFIX.length)}`
    switch (route) {
      case 'POST revoke-sessions': {
        const { sub } = await readFields(req)
        if (!sub) {
          sendJson(res, 400, { error: 'invalid_request', error_description: 'sub is required' })
        } else {
          sendJson(res, 200, { sub, revoked: await revokeSessions(sub) })
        }
        break
      }
      case 'GET stats':
        sendJson(res, 200, stats.snapshot())
        break
      case 'POST reset-stats':
        stats.reset()
        sendJson(res, 200, stats.snapshot())
        break
      case 'POST token-delay':
        await applyNumbers(req, res, ({ ms }) => {
          faults.setDelay(ms ?? Number.NaN)
          return { ms }
        })
        break
      case 'POST token-failures':
        await applyNumbers(req, res, ({ status, count, retryAfter }) => {
          const failure = {
            status: status ?? Number.NaN,
            count: count ?? Number.NaN,
            ...(retryAfter === undefined ? {} : { retryAfter }),
          }
          faults.fail(failure)
          return failure
        })
        break
      case 'POST misbehave-next-token-response': {
        let kind: string | undefined
        try {
          ;({ kind } = await readFields(req))
        } catch (error) {
          sendJson(res, 400, { error: 'invalid_request', error_description: (error as Error).message })
          break
        }
        try {
          idTokenFaults.arm((kind ?? '') as Parameters<IdTokenFaults['arm']>[0])
        } catch (error) {
          if (!(error instanceof TypeError)) throw error
          sendJson(res, 400, { error: 'invalid_request', error_description: error.message })
          break
        }
        sendJson(res, 200, { kind: idTokenFaults.pending ?? 'none' })
        break
      }
      case 'GET misbehave-next-token-response':
        sendJson(res, 200, { kind: idTokenFaults.pending ?? 'none' })
        break
      default:
        sendJson(res, 404, { error: 'not_found' })
    }
    return true
  }
}
