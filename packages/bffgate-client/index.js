// @ts-check
/**
 * @bffgate/client: the browser side of a bffgate backend-for-frontend.
 *
 * Plain ES module, no dependencies, no build step: serve it as is or let a bundler take it.
 * The types are in index.d.ts; this file is checked against them (`tsc -p packages/bffgate-client`).
 */

/** @import { BffClaims, BffClient, BffClientOptions, BffLocation, BffUser, BroadcastChannelLike, EventSourceLike, LogoutReason, OtherTabLogoutEvent, SessionEndedEvent, SessionEndReason, SessionExpiringEvent, UnauthenticatedCode } from './index.js' */

/** Name of the BroadcastChannel the tabs of one app talk on, unless `channelName` says otherwise. */
export const DEFAULT_CHANNEL_NAME = 'bffgate'

/** The header bffgate requires on API calls and state-changing `/bff/*` calls. */
const CSRF_HEADER = 'x-csrf'

/** The `error` codes of a 401 that mean "this browser has no session": log in again. */
const UNAUTHENTICATED = new Set(['login_required', 'session_ended'])

/** Within this many milliseconds of a login redirect, further 401s do not start another. */
const REDIRECT_DEDUPE_MS = 5000

/** Where bffgate pushes the session's end (server-sent events). */
export const DEFAULT_SESSION_EVENTS_URL = '/bff/session-events'

/**
 * A base path as bffgate accepts a frontend's `pathPrefix`: `''`, or segments of letters,
 * digits, `.`, `_`, `~` and `-`, each after a `/` (`/admin`, `/apps/admin`), no trailing `/`,
 * no empty, `.` or `..` segment. Prefixed to `/bff/...`, it stays a path on this origin.
 */
const BASE_PATH = /^(?:\/(?!\.{1,2}(?:\/|$))[\w.~-]+)*$/

/**
 * The `basePath` option, checked: bffgate mounted under a path prefix serves its `/bff/*`
 * endpoints there.
 * @param {unknown} value
 * @returns {string}
 */
function basePathOf(value) {
  if (value === undefined) return ''
  if (typeof value !== 'string' || !BASE_PATH.test(value)) {
    const shown = typeof value === 'string' ? JSON.stringify(value) : typeof value
    throw new TypeError(
      `@bffgate/client: options.basePath must be '' or a path such as '/admin' (segments of letters, digits, '.', '_', '~' and '-', each after a '/'; no trailing '/', no '.' or '..' segment), as the frontend's pathPrefix; got ${shown}`,
    )
  }
  return value
}

/** The reasons bffgate sends with `session-ended` (anything else reads as `ended`). */
const END_REASONS = new Set([
  'logout',
  'backchannel_logout',
  'revoked',
  'idle_timeout',
  'absolute_timeout',
  'expired',
  'replaced',
  'ended',
])

/** `EventSource.CLOSED`: the browser gave up on the stream (a refusal, not a network blip). */
const EVENT_SOURCE_CLOSED = 2

/** After the stream was refused while the session lives (429, 503), try again this much later. */
const STREAM_RETRY_MS = 15_000

/** A bffgate endpoint answered with an error (`{ error, message }`) the client does not handle itself. */
export class BffRequestError extends Error {
  /**
   * @param {number} status
   * @param {string} code
   * @param {string} message
   */
  constructor(status, code, message) {
    super(message)
    this.name = 'BffRequestError'
    /** HTTP status. */
    this.status = status
    /** bffgate's stable `error` code (docs/errors.md), or `http_<status>` when the body had none. */
    this.code = code
  }
}

/**
 * Thrown by `client.fetch` after a 401 `login_required` or `session_ended`, once the client
 * has started the login redirect (or called `onUnauthenticated`). Nothing else to do with it.
 */
export class BffUnauthenticatedError extends BffRequestError {
  /**
   * @param {UnauthenticatedCode} code
   * @param {string} message
   */
  constructor(code, message) {
    super(401, code, message)
    this.name = 'BffUnauthenticatedError'
    /** @type {UnauthenticatedCode} */
    this.code = code
  }
}

/**
 * `{ error, message }` of a JSON error answer, read from a clone so the caller can still read
 * the body; undefined fields when the body is not bffgate's.
 * @param {Response} response
 * @returns {Promise<{ error?: string, message?: string }>}
 */
async function errorBodyOf(response) {
  if (!(response.headers.get('content-type') ?? '').includes('json')) return {}
  try {
    const body = await response.clone().json()
    if (body === null || typeof body !== 'object') return {}
    return {
      ...(typeof body.error === 'string' && { error: body.error }),
      ...(typeof body.message === 'string' && { message: body.message }),
    }
  } catch {
    return {}
  }
}

/**
 * @param {Response} response
 * @returns {Promise<BffRequestError>}
 */
async function requestErrorOf(response) {
  const { error, message } = await errorBodyOf(response)
  return new BffRequestError(
    response.status,
    error ?? `http_${response.status}`,
    message ?? `bffgate answered ${response.status}`,
  )
}

/**
 * The request URL, resolved against the page, to tell same-origin calls from others.
 * @param {RequestInfo | URL} input
 * @param {BffLocation | undefined} location
 * @returns {URL | undefined}
 */
function urlOf(input, location) {
  const raw = input instanceof URL ? input.href : typeof input === 'string' ? input : input.url
  try {
    return new URL(raw, location?.href)
  } catch {
    return undefined
  }
}

/**
 * Creates the client. One per page is enough; `close()` it if the page outlives it (tests, HMR).
 * @param {BffClientOptions} [options]
 * @returns {BffClient}
 */
export function createBffClient(options = {}) {
  const basePath = basePathOf(options.basePath)
  /** @type {typeof globalThis.fetch} */
  const fetchImpl = options.fetch ?? ((input, init) => globalThis.fetch(input, init))
  /** @type {BffLocation | undefined} */
  const location = options.location ?? globalThis.location
  const Channel = options.BroadcastChannel === undefined ? globalThis.BroadcastChannel : options.BroadcastChannel
  // Frontends under different prefixes of one origin have different sessions: their tabs must not hear each other.
  const channelName =
    options.channelName ?? (basePath === '' ? DEFAULT_CHANNEL_NAME : `${DEFAULT_CHANNEL_NAME}:${basePath}`)

  /** @returns {BffLocation} */
  const page = () => {
    if (location === undefined) throw new Error('@bffgate/client: no location to navigate; pass options.location')
    return location
  }
  const currentPath = () => {
    const { pathname, search, hash } = page()
    return `${pathname}${search}${hash}`
  }
  /** @param {string} [returnTo] */
  const login = (returnTo) => {
    page().assign(`${basePath}/bff/login?returnTo=${encodeURIComponent(returnTo ?? currentPath())}`)
  }

  /** @param {MessageEvent} event */
  const onMessage = (event) => {
    const data = /** @type {{ type?: unknown, reason?: unknown } | null} */ (event.data)
    if (data === null || typeof data !== 'object' || data.type !== 'logout') return
    /** @type {OtherTabLogoutEvent} */
    const logoutEvent = { reason: data.reason === 'session_ended' ? 'session_ended' : 'logout' }
    if (options.onOtherTabLogout !== undefined) options.onOtherTabLogout(logoutEvent)
    else page().assign(`${basePath}/`)
  }
  /** @type {BroadcastChannelLike | undefined} */
  let channel
  if (channelName !== false && typeof Channel === 'function') {
    channel = new Channel(channelName)
    channel.addEventListener('message', onMessage)
  }
  /** @param {LogoutReason} reason */
  const announce = (reason) => {
    try {
      // oxlint-disable-next-line unicorn/require-post-message-target-origin -- a BroadcastChannel has no target origin
      channel?.postMessage({ type: 'logout', reason })
    } catch {
      // A closed channel: nobody left to tell.
    }
  }

  // The session's end, pushed: one EventSource per client, open while anyone listens.
  const EventSourceImpl = options.EventSource === undefined ? globalThis.EventSource : options.EventSource
  const sessionEventsUrl = options.sessionEventsUrl ?? `${basePath}${DEFAULT_SESSION_EVENTS_URL}`
  /** @type {Set<(event: SessionEndedEvent) => void>} */
  const endedListeners = new Set()
  /** @type {Set<(event: SessionExpiringEvent) => void>} */
  const expiringListeners = new Set()
  /** @type {EventSourceLike | undefined} */
  let source
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let retryTimer
  /** True once the session has ended (or this tab logs out): no stream until a listener asks again. */
  let over = false

  const disconnect = () => {
    clearTimeout(retryTimer)
    retryTimer = undefined
    source?.close()
    source = undefined
  }
  /** @param {SessionEndReason} reason */
  const sessionEnded = (reason) => {
    disconnect()
    over = true
    for (const listener of [...endedListeners]) listener({ reason })
  }
  /** @param {string} data */
  const parse = (data) => {
    try {
      const value = JSON.parse(data)
      return value !== null && typeof value === 'object' ? value : {}
    } catch {
      return {}
    }
  }
  const connect = () => {
    if (
      source !== undefined ||
      over ||
      typeof EventSourceImpl !== 'function' ||
      endedListeners.size + expiringListeners.size === 0
    )
      return
    let opened = false
    const stream = new EventSourceImpl(sessionEventsUrl)
    source = stream
    stream.addEventListener('open', () => {
      opened = true
    })
    stream.addEventListener('session-ended', (event) => {
      if (source !== stream) return // closed meanwhile: told once is enough
      const { reason } = parse(/** @type {MessageEvent} */ (event).data)
      sessionEnded(END_REASONS.has(reason) ? reason : 'ended')
    })
    stream.addEventListener('session-expiring', (event) => {
      if (source !== stream) return
      const { absoluteExpiresAt, secondsLeft } = parse(/** @type {MessageEvent} */ (event).data)
      if (typeof absoluteExpiresAt !== 'number' || typeof secondsLeft !== 'number') return
      for (const listener of [...expiringListeners]) listener({ absoluteExpiresAt, secondsLeft })
    })
    stream.addEventListener('error', () => {
      // While CONNECTING the browser reconnects by itself (a replica restarted, the network
      // dropped). CLOSED means bffgate refused the stream: find out whether the session is gone.
      if (stream.readyState !== EVENT_SOURCE_CLOSED || source !== stream) return
      disconnect()
      // Refused at once: no session (listen only while signed in), or too many tabs. Give up.
      if (!opened) return
      client.getUser().then(
        (user) => {
          // Gone while the stream was down (the announcement was missed): tell the page now.
          if (user === null) sessionEnded('ended')
          else retryTimer = setTimeout(connect, STREAM_RETRY_MS)
        },
        () => {
          retryTimer = setTimeout(connect, STREAM_RETRY_MS)
        },
      )
    })
  }
  /**
   * @template T
   * @param {Set<T>} listeners
   * @param {T} listener
   */
  const listen = (listeners, listener) => {
    listeners.add(listener)
    connect()
    return () => {
      listeners.delete(listener)
      if (endedListeners.size + expiringListeners.size === 0) disconnect()
    }
  }

  // The default reaction to a 401 navigates once, however many calls fail together (a page
  // restored from the back-forward cache later may need to navigate again).
  let redirectedAt = -Infinity
  /** @param {UnauthenticatedCode} code */
  const unauthenticated = (code) => {
    // Every tab shares the cookie: an ended session is over for all of them.
    if (code === 'session_ended') announce('session_ended')
    if (options.onUnauthenticated !== undefined) {
      options.onUnauthenticated({ code, returnTo: currentPath(), login })
      return
    }
    if (Date.now() - redirectedAt < REDIRECT_DEDUPE_MS) return
    redirectedAt = Date.now()
    login()
  }

  /** @type {BffClient} */
  const client = {
    async fetch(input, init = {}) {
      const url = urlOf(input, location)
      const headers = new Headers(init.headers ?? (input instanceof Request ? input.headers : undefined))
      const sameOrigin = url === undefined || location === undefined || url.origin === new URL(location.href).origin
      // Only for bffgate (same origin): a custom header on a third-party call would force a CORS preflight.
      if (sameOrigin && !headers.has(CSRF_HEADER)) headers.set(CSRF_HEADER, '1')
      const response = await fetchImpl(input, { credentials: 'same-origin', ...init, headers })
      if (response.status === 401 && sameOrigin) {
        const { error, message } = await errorBodyOf(response)
        if (error !== undefined && UNAUTHENTICATED.has(error)) {
          const code = /** @type {UnauthenticatedCode} */ (error)
          unauthenticated(code)
          throw new BffUnauthenticatedError(code, message ?? code)
        }
      }
      return response
    },

    /**
     * @template {BffClaims} [Claims=BffClaims]
     * @returns {Promise<BffUser<Claims> | null>}
     */
    async getUser() {
      const response = await fetchImpl(`${basePath}/bff/user`, {
        credentials: 'same-origin',
        cache: 'no-store',
        headers: { accept: 'application/json' },
      })
      if (response.status === 401) return null
      if (!response.ok) throw await requestErrorOf(response)
      return /** @type {BffUser<Claims>} */ (await response.json())
    },

    login,

    async logout({ navigate = true } = {}) {
      // This tab ends the session itself: it needs no word of it from the stream. Any failure
      // below (an error answer, or no answer at all) leaves the session as it was: listen again.
      disconnect()
      over = true
      try {
        if (navigate) {
          // The session's own logout URL (`/bff/logout?sid=...`): bffgate ends the session there
          // and sends the browser on to the IdP with the ID token as a hint, which this page never sees.
          const response = await fetchImpl(`${basePath}/bff/user`, {
            credentials: 'same-origin',
            cache: 'no-store',
            headers: { accept: 'application/json' },
          })
          if (response.status !== 401 && !response.ok) throw await requestErrorOf(response)
          const logoutUrl =
            response.status === 401
              ? `${basePath}/`
              : /** @type {{ logoutUrl: string }} */ (await response.json()).logoutUrl
          announce('logout')
          page().assign(logoutUrl)
          return logoutUrl
        }
        // Without navigating: the session ends now; the answer is the IdP's end-session URL (no token in it).
        const response = await fetchImpl(`${basePath}/bff/logout`, {
          method: 'POST',
          credentials: 'same-origin',
          headers: { [CSRF_HEADER]: '1', accept: 'application/json' },
        })
        if (!response.ok) throw await requestErrorOf(response)
        const { logoutUrl } = /** @type {{ logoutUrl: string }} */ (await response.json())
        announce('logout')
        return logoutUrl
      } catch (err) {
        over = false
        connect()
        throw err
      }
    },

    onSessionEnded(listener) {
      return listen(endedListeners, listener)
    },

    onSessionExpiring(listener) {
      return listen(expiringListeners, listener)
    },

    close() {
      endedListeners.clear()
      expiringListeners.clear()
      disconnect()
      if (channel === undefined) return
      channel.removeEventListener('message', onMessage)
      channel.close()
      channel = undefined
    },
  }
  return client
}
