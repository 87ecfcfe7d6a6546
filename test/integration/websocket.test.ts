import assert from 'node:assert/strict'
import { once } from 'node:events'
import { after, before, test } from 'node:test'
import { WebSocket } from 'ws'
import type { Browser } from '../helpers/browser.ts'
import { startTestRedis, type TestRedis } from '../helpers/redis.ts'
import { startReplica } from '../helpers/replica.ts'
import { startStack, type Stack, sessionCookieHeader } from '../helpers/stack.ts'

let redis: TestRedis
let stack: Stack
before(async () => {
  redis = await startTestRedis()
  stack = await startStack({
    redis,
    backchannel: true,
    routes: (api) => [{ path: '/api', upstream: api, websocket: true }],
  })
})
after(async () => {
  await stack?.close()
  await redis?.stop()
})

const cookieOf = (browser: Browser) => sessionCookieHeader(stack, browser)

function connect(base: string, headers: Record<string, string>): Promise<WebSocket> {
  const socket = new WebSocket(`${base.replace('http', 'ws')}/api/socket`, { headers })
  return new Promise((resolve, reject) => {
    socket.once('open', () => resolve(socket))
    socket.once('unexpected-response', (_req, res) =>
      reject(Object.assign(new Error(`handshake refused: ${res.statusCode}`), { status: res.statusCode })),
    )
    socket.once('error', reject)
  })
}

async function roundTrip(
  socket: WebSocket,
  message: string,
): Promise<{ sub: string; message: string; headers: Record<string, string> }> {
  const reply = once(socket, 'message')
  socket.send(message)
  const [data] = await reply
  return JSON.parse(String(data)) as { sub: string; message: string; headers: Record<string, string> }
}

test('a WebSocket through the proxy carries the access token upstream and never the cookie', async () => {
  const cookie = cookieOf((await stack.login()).browser)
  const socket = await connect(stack.url, { cookie, origin: stack.url })
  const echo = await roundTrip(socket, 'hello')
  assert.equal(echo.sub, 'user-alice')
  assert.equal(echo.message, 'hello')
  assert.match(echo.headers.authorization ?? '', /^Bearer eyJ/)
  assert.equal(echo.headers.cookie, undefined)
  socket.close()
})

test('a WebSocket handshake from another origin, without an origin, or without a session is refused', async () => {
  const cookie = cookieOf((await stack.login()).browser)
  const upstreamCalls = stack.api.requests().length
  await assert.rejects(connect(stack.url, { cookie, origin: 'https://evil.example' }), { status: 403 })
  await assert.rejects(connect(stack.url, { cookie }), { status: 403 })
  await assert.rejects(connect(stack.url, { origin: stack.url }), { status: 401 })
  assert.equal(stack.api.requests().length, upstreamCalls, 'a refused handshake reached the upstream')
})

test('when the session ends on another replica, its open WebSockets here are closed within a second', async (t) => {
  const replica = await startReplica({ ...stack.env, BFF_LOG_LEVEL: 'warn' })
  t.after(async () => {
    await replica.stop()
  })
  const cookie = cookieOf((await stack.login()).browser)
  const socket = await connect(replica.url, { cookie, origin: stack.url })
  assert.equal((await roundTrip(socket, 'ping')).sub, 'user-alice')
  const closed = once(socket, 'close')
  const started = performance.now()
  await stack.idp.revokeSessions('user-alice') // back-channel logout, received by the other process
  const [code, reason] = await closed
  const elapsed = performance.now() - started
  assert.equal(code, 1008)
  assert.equal(String(reason), 'session_ended')
  assert.ok(elapsed < 1000, `closed after ${elapsed.toFixed(0)} ms`)
})
