/// <reference lib="dom" />
/**
 * @bffgate/client: the browser side of a bffgate backend-for-frontend. A `fetch` wrapper that
 * adds the CSRF header and turns a lost session into a login, the user, login, logout, and a
 * logout signal shared by every tab of the app.
 */

/** The 401 `error` codes that mean "no session in this browser" (docs/errors.md). */
export type UnauthenticatedCode = 'login_required' | 'session_ended'

/** Why another tab says the session is over. */
export type LogoutReason = 'logout' | 'session_ended'

/**
 * Why bffgate ended the session (`session-ended` of `GET /bff/session-events`):
 * `logout` (this user logged out, in any tab, on any replica), `backchannel_logout` (the IdP
 * said so), `revoked` (the IdP refused the refresh token: the IdP session is gone),
 * `idle_timeout`, `absolute_timeout` (the maximum lifetime, or the IdP's `session_expiry`),
 * `expired` (no refresh token left), `replaced` (a new login in this browser), `ended`
 * (gone while the stream was down, or a reason this client does not know).
 */
export type SessionEndReason =
  | 'logout'
  | 'backchannel_logout'
  | 'revoked'
  | 'idle_timeout'
  | 'absolute_timeout'
  | 'expired'
  | 'replaced'
  | 'ended'

/** What `onSessionEnded` listeners receive. */
export interface SessionEndedEvent {
  reason: SessionEndReason
}

/** What `onSessionExpiring` listeners receive, `BFF_SESSION_WARNING_SECONDS` before the absolute end. */
export interface SessionExpiringEvent {
  /** When the session ends whatever happens, epoch seconds. */
  absoluteExpiresAt: number
  /** Seconds left when bffgate sent the warning. */
  secondsLeft: number
}

/** The parts of an EventSource the client uses. */
export interface EventSourceLike {
  readonly readyState: number
  addEventListener(type: string, listener: (event: Event) => void): void
  close(): void
}

/** Where bffgate pushes the session's end: `/bff/session-events`. */
export declare const DEFAULT_SESSION_EVENTS_URL: '/bff/session-events'

/** Name of the BroadcastChannel the tabs of one app talk on, unless `channelName` says otherwise. */
export declare const DEFAULT_CHANNEL_NAME: 'bffgate'

/** Claims from the ID token, protocol claims (exp, iat, nonce, ...) removed. */
export interface BffClaims {
  sub: string
  name?: string
  email?: string
  [claim: string]: unknown
}

/** `GET /bff/user`. */
export interface BffUser<Claims extends BffClaims = BffClaims> {
  claims: Claims
  session: {
    /** When the session ends if there is no API activity (idle or absolute, whichever first), epoch seconds. */
    expiresAt: number
    /** When the session ends whatever happens, epoch seconds. */
    absoluteExpiresAt: number
  }
  /** Where to navigate to log out: `/bff/logout?sid=...`, bound to this session. */
  logoutUrl: string
}

/** What `onUnauthenticated` receives. */
export interface UnauthenticatedEvent {
  code: UnauthenticatedCode
  /** The page's path, query and fragment: where the default reaction would return after login. */
  returnTo: string
  /** Starts the login, as `client.login`. */
  login(returnTo?: string): void
}

/** What `onOtherTabLogout` receives. */
export interface OtherTabLogoutEvent {
  /** `logout`: the user logged out in another tab; `session_ended`: another tab found the session over. */
  reason: LogoutReason
}

/** The parts of `window.location` the client uses. */
export interface BffLocation {
  readonly href: string
  readonly pathname: string
  readonly search: string
  readonly hash: string
  assign(url: string): void
}

/** The parts of a BroadcastChannel the client uses. */
export interface BroadcastChannelLike {
  postMessage(message: unknown): void
  addEventListener(type: 'message', listener: (event: MessageEvent) => void): void
  removeEventListener(type: 'message', listener: (event: MessageEvent) => void): void
  close(): void
}

export interface BffClientOptions {
  /**
   * Where bffgate serves this app's endpoints: the frontend's `pathPrefix` (`/admin` calls
   * `/admin/bff/user`, `/admin/bff/login` ...). Default `''` (at the root). `''`, or segments of
   * letters, digits, `.`, `_`, `~` and `-`, each after a `/`, without a trailing `/`;
   * `createBffClient` throws a `TypeError` on anything else.
   */
  basePath?: string
  /**
   * Called when a call through `client.fetch` answers 401 `login_required` or `session_ended`.
   * Default: navigate to `<basePath>/bff/login?returnTo=<this page>` (once, however many calls fail together).
   */
  onUnauthenticated?: (event: UnauthenticatedEvent) => void
  /**
   * Called when another tab of the app logged out or found the session ended. The cookie is
   * shared, so this tab is logged out too. Default: navigate to `<basePath>/`.
   * Do not start a login from here: see docs/spa.md, "Several tabs".
   */
  onOtherTabLogout?: (event: OtherTabLogoutEvent) => void
  /**
   * BroadcastChannel name (default `bffgate`, or `bffgate:<basePath>` with a `basePath`, so apps
   * under different prefixes of one origin, each with its own session, do not hear each
   * other); `false`: no cross-tab signal.
   */
  channelName?: string | false
  /** Default: the global `fetch`. */
  fetch?: typeof globalThis.fetch
  /** Default: `window.location`. */
  location?: BffLocation
  /** Default: the global `BroadcastChannel`; `null`: none (as in a browser without it). */
  BroadcastChannel?: (new (name: string) => BroadcastChannelLike) | null
  /** Default: the global `EventSource`; `null`: none (then `onSessionEnded` never fires). */
  EventSource?: (new (url: string) => EventSourceLike) | null
  /** Default: `<basePath>/bff/session-events`. */
  sessionEventsUrl?: string
}

export interface BffClient {
  /**
   * `fetch` for the APIs behind bffgate. Adds `x-csrf: 1` to same-origin calls and sends the
   * cookie (`credentials: 'same-origin'` unless given). Every answer is returned as `fetch`
   * would, except a 401 `login_required`/`session_ended` from bffgate: then the login
   * redirect starts (or `onUnauthenticated` runs), other tabs hear of an ended session, and
   * the promise rejects with a {@link BffUnauthenticatedError}.
   */
  fetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response>
  /** `GET /bff/user`: the user, or `null` when not logged in. Never redirects, never extends the session. */
  getUser<Claims extends BffClaims = BffClaims>(): Promise<BffUser<Claims> | null>
  /** Navigates to `<basePath>/bff/login`; after login the browser lands on `returnTo` (default: this page). */
  login(returnTo?: string): void
  /**
   * Tells the other tabs, then navigates to the session's own logout URL (`logoutUrl` of
   * `GET /bff/user`, `/bff/logout?sid=...`): bffgate ends the session and redirects to the
   * IdP's end-session endpoint, which brings the browser back to `/`. No token passes through
   * the page. Without a session it navigates to `<basePath>/`. With `navigate: false` it ends
   * the session at once (`POST <basePath>/bff/logout`) and only returns the IdP's end-session URL.
   * Every `/bff/*` path here is under `basePath`.
   */
  logout(options?: { navigate?: boolean }): Promise<string>
  /**
   * Calls `listener` once when bffgate says this session ended, pushed within a second over
   * `GET /bff/session-events` (opened with the first listener, closed with the last; the
   * browser reconnects it by itself after a network blip or a replica restart). Save work and
   * offer a login there. Subscribe while signed in: a stream refused at once (no session, too
   * many tabs) is given up silently. If a stream that was open is refused on reconnection, the
   * client asks `/bff/user` and reports `ended` when the session is gone. `logout()` of this
   * client closes the stream first: the tab that logs out hears nothing. Returns the
   * unsubscribe function.
   */
  onSessionEnded(listener: (event: SessionEndedEvent) => void): () => void
  /** Calls `listener` when the session's absolute end is `BFF_SESSION_WARNING_SECONDS` away. Returns the unsubscribe function. */
  onSessionExpiring(listener: (event: SessionExpiringEvent) => void): () => void
  /** Stops listening to other tabs and to the session's events. */
  close(): void
}

/** A bffgate endpoint answered with an error the client does not handle itself. */
export declare class BffRequestError extends Error {
  constructor(status: number, code: string, message: string)
  /** HTTP status. */
  readonly status: number
  /** bffgate's stable `error` code (docs/errors.md), or `http_<status>` when the body had none. */
  readonly code: string
}

/** Rejects `client.fetch` after a 401 `login_required`/`session_ended`, once the login redirect has started. */
export declare class BffUnauthenticatedError extends BffRequestError {
  constructor(code: UnauthenticatedCode, message: string)
  readonly status: 401
  readonly code: UnauthenticatedCode
}

/** Creates the client; one per page is enough. */
export declare function createBffClient(options?: BffClientOptions): BffClient
