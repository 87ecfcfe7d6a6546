import type { Socket } from 'node:net'
import type { LoadedSession, SessionStore } from '../session/types.ts'

/** The part of a `ws` WebSocket this registry uses (a long-lived HTTP answer is adapted to it). */
export interface ClosableSocket {
  close(code: number, reason: string): void
  once(event: 'close', listener: () => void): unknown
}

/** WebSocket close code for "the session behind this connection has ended" (1008: policy violation). */
const SESSION_ENDED_CLOSE_CODE = 1008

/**
 * The WebSocket connections and long-lived HTTP answers (server-sent events, streamed
 * downloads) this replica proxies, by session. A session ended on any replica (logout,
 * back-channel logout, teardown: the store announces it) closes its connections here at
 * once; a periodic sweep closes those whose session simply expired.
 */
export function createWebSocketSessions(
  store: SessionStore,
  options: { log: { info(obj: object, msg: string): void } },
) {
  /** Upgrade sockets between the session check and the WebSocket handshake. */
  const pending = new WeakMap<Socket, LoadedSession>()
  const open = new Map<string, { session: LoadedSession; sockets: Set<ClosableSocket> }>()

  const closeSessions = (storageKeys: readonly string[], reason: string) => {
    for (const key of storageKeys) {
      const entry = open.get(key)
      if (entry === undefined) continue
      open.delete(key)
      for (const socket of entry.sockets) socket.close(SESSION_ENDED_CLOSE_CODE, 'session_ended')
      options.log.info(
        { event: 'websocket.closed', reason, connections: entry.sockets.size },
        'closed the connections of an ended session',
      )
    }
  }
  store.onSessionsEnded((keys) => closeSessions(keys, 'session_ended'))

  const sweep = setInterval(() => {
    for (const [key, entry] of open) {
      store.reload(entry.session.handle).then(
        (current) => {
          if (current === undefined) closeSessions([key], 'session_expired')
        },
        () => {},
      ) // Redis away: try again next sweep
    }
  }, 30_000)
  sweep.unref()

  const track = (session: LoadedSession, socket: ClosableSocket): void => {
    const key = session.handle.storageKey
    const entry = open.get(key) ?? { session, sockets: new Set<ClosableSocket>() }
    entry.sockets.add(socket)
    open.set(key, entry)
    socket.once('close', () => {
      entry.sockets.delete(socket)
      if (entry.sockets.size === 0 && open.get(key) === entry) open.delete(key)
    })
  }

  return {
    /** Remembers which session an upgrade request belongs to, until its WebSocket opens. */
    expect(rawSocket: Socket, session: LoadedSession): void {
      pending.set(rawSocket, session)
    },
    /** Binds an opened WebSocket (`ws` keeps its raw socket as `_socket`) to its session. */
    opened(socket: ClosableSocket): void {
      // ws keeps the upgraded connection as `_socket`; it is how the opened WebSocket and the
      // checked upgrade request meet, since @fastify/http-proxy's hook receives no request.
      const raw = Reflect.get(socket, '_socket') as Socket | undefined
      const session = raw === undefined ? undefined : pending.get(raw)
      if (session !== undefined) track(session, socket)
    },
    /** Binds a connection to its session until it closes: it is closed when the session ends. */
    track,
    close(): void {
      clearInterval(sweep)
    },
  }
}

export type WebSocketSessions = ReturnType<typeof createWebSocketSessions>
