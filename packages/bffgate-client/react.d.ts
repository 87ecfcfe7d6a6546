/**
 * @bffgate/client/react: hooks for a React app behind bffgate (React 18 or 19, an optional
 * peer dependency: only this entry point needs it).
 */
import type { ReactElement, ReactNode } from 'react'
import type { BffClaims, BffClient, BffUser, SessionEndedEvent, SessionExpiringEvent } from './index.js'

/** What {@link useUser} returns. */
export interface UserState<Claims extends BffClaims = BffClaims> {
  /** `loading` until `/bff/user` answers; `anonymous` also once the session ended. */
  status: 'loading' | 'anonymous' | 'authenticated' | 'error'
  user: BffUser<Claims> | null
  /** The failure when `status` is `error` (a `BffRequestError`, or a network error). */
  error: unknown
  loading: boolean
  /** Asks `/bff/user` again. */
  refresh(): void
  /** `client.login`. */
  login: BffClient['login']
  /** `client.logout`. */
  logout: BffClient['logout']
}

/** Makes `client` the one the hooks use (default: one `createBffClient()` per page). */
export declare function BffClientProvider(props: { client: BffClient; children?: ReactNode }): ReactElement

/** The client of the nearest {@link BffClientProvider}, or the page's default one. */
export declare function useBffClient(): BffClient

/** The signed-in user (`GET /bff/user`); `null` once bffgate pushes the session's end. Never extends the session. */
export declare function useUser<Claims extends BffClaims = BffClaims>(): UserState<Claims>

/** Calls the latest `callback` when bffgate pushes the end of this session (`client.onSessionEnded`). */
export declare function useSessionEnded(callback: (event: SessionEndedEvent) => void): void

/** Calls the latest `callback` `BFF_SESSION_WARNING_SECONDS` before the session's absolute end. */
export declare function useSessionExpiring(callback: (event: SessionExpiringEvent) => void): void
