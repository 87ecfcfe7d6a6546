// @ts-check
/**
 * @bffgate/client/react: hooks for a React app behind bffgate. React is an optional peer
 * dependency of @bffgate/client: only this entry point imports it.
 *
 * Plain ES module, no JSX, no build step; the types are in react.d.ts.
 */
import { createContext, createElement, useCallback, useContext, useEffect, useRef, useState } from 'react'
import { createBffClient } from './index.js'

/** @import { ReactNode } from 'react' */
/** @import { BffClaims, BffClient, BffUser, SessionEndedEvent, SessionExpiringEvent } from './index.js' */
/** @import { UserState } from './react.js' */

/** @type {import('react').Context<BffClient | null>} */
const BffClientContext = createContext(/** @type {BffClient | null} */ (null))

/** @type {BffClient | undefined} */
let defaultClient

/**
 * Makes `client` the one the hooks below use (default: one `createBffClient()` per page).
 * @param {{ client: BffClient, children?: ReactNode }} props
 */
export function BffClientProvider({ client, children }) {
  return createElement(BffClientContext.Provider, { value: client }, children)
}

/** The client of the nearest {@link BffClientProvider}, or the page's default one. */
export function useBffClient() {
  const client = useContext(BffClientContext)
  if (client !== null) return client
  defaultClient ??= createBffClient()
  return defaultClient
}

/**
 * The signed-in user (`GET /bff/user`), and `null` once the session ends (pushed by bffgate).
 * @template {BffClaims} [Claims=BffClaims]
 * @returns {UserState<Claims>}
 */
export function useUser() {
  const client = useBffClient()
  const [state, setState] = useState(
    /** @type {{ status: UserState['status'], user: BffUser<Claims> | null, error: unknown }} */ ({
      status: 'loading',
      user: null,
      error: undefined,
    }),
  )
  const [generation, setGeneration] = useState(0)

  useEffect(() => {
    let current = true
    client.getUser().then(
      (user) => {
        if (current)
          setState({
            status: user === null ? 'anonymous' : 'authenticated',
            user: /** @type {BffUser<Claims> | null} */ (user),
            error: undefined,
          })
      },
      (/** @type {unknown} */ error) => {
        if (current) setState({ status: 'error', user: null, error })
      },
    )
    return () => {
      current = false
    }
  }, [client, generation])

  // Only a signed-in page listens: the stream needs a session.
  const signedIn = state.status === 'authenticated'
  useEffect(() => {
    if (!signedIn) return undefined
    return client.onSessionEnded(() => setState({ status: 'anonymous', user: null, error: undefined }))
  }, [client, signedIn])

  const refresh = useCallback(() => setGeneration((n) => n + 1), [])
  return { ...state, loading: state.status === 'loading', refresh, login: client.login, logout: client.logout }
}

/**
 * Calls `callback` when bffgate pushes the end of this session (logout in another tab,
 * back-channel logout, revocation, idle or absolute expiry). The latest `callback` is called;
 * changing it does not reopen the stream.
 * @param {(event: SessionEndedEvent) => void} callback
 */
export function useSessionEnded(callback) {
  const client = useBffClient()
  const latest = useRef(callback)
  useEffect(() => {
    latest.current = callback
  })
  useEffect(() => client.onSessionEnded((event) => latest.current(event)), [client])
}

/**
 * Calls `callback` `BFF_SESSION_WARNING_SECONDS` before the session's absolute end.
 * @param {(event: SessionExpiringEvent) => void} callback
 */
export function useSessionExpiring(callback) {
  const client = useBffClient()
  const latest = useRef(callback)
  useEffect(() => {
    latest.current = callback
  })
  useEffect(() => client.onSessionExpiring((event) => latest.current(event)), [client])
}
