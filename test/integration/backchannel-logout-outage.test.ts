import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { Redis } from 'ioredis'
import type { JWK } from 'jose'
import { generateSigningKeys } from '../../dev/idp/index.ts'
import { createKeyNames } from '../../src/session/keys.ts'
import type { Browser } from '../helpers/browser.ts'
import { logoutTokenClaims, signLogoutToken } from '../helpers/logout-token.ts'
import { startRedisServer, type RedisServerProcess } from '../helpers/redis.ts'
import { CLIENT_ID, startStack, type Stack, sessionCookieHeader } from '../helpers/stack.ts'

// Issue 13 item 6: a store failure during back-channel logout must be retryable by the IdP.
let redis: RedisServerProcess
let admin: Redis
let keys: JWK[]
let stack: Stack
before(async () => {
  redis = await startRedisServer()
  admin = new Redis(redis.url, { maxRetriesPerRequest: 1 })
  keys = await generateSigningKeys()
  stack = await startStack({
    backchannel: true,
    idp: { keys },
    env: { BFF_SESSION_STORE: 'redis', BFF_REDIS_URL: redis.url, BFF_REDIS_KEY_PREFIX: `bcl-outage:${process.pid}:` },
  })
})
after(async () => {
  await stack?.close()
  admin?.disconnect()
  await redis?.stop()
})

const cookieOf = (browser: Browser) => sessionCookieHeader(stack, browser)
const userStatus = async (cookie: string) => (await fetch(`${stack.url}/bff/user`, { headers: { cookie } })).status

/** A logout token signed with the development IdP's own key, as the IdP would send it. */
const logoutToken = (claims: Record<string, unknown>) =>
  signLogoutToken(keys[0]!, logoutTokenClaims(stack.idp.issuer, CLIENT_ID, claims))

async function post(
  token: string,
): Promise<{ status: number; retryAfter: string | null; body: { error?: string; message?: string } | null }> {
  const res = await fetch(`${stack.url}/bff/backchannel-logout`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ logout_token: token }).toString(),
  })
  const text = await res.text()
  return {
    status: res.status,
    retryAfter: res.headers.get('retry-after'),
    body: text === '' ? null : (JSON.parse(text) as { error?: string }),
  }
}

/** The IdP session id of a logged-in browser, as the IdP knows it (its ID token's `sid`). */
async function sidOf(cookie: string): Promise<string> {
  // The session record is encrypted; the IdP's own back-channel logout would carry the sid it
  // issued. Read it from the id_token the IdP handed out last (what the IdP would send).
  const idToken = stack.idp
    .issuedTokens()
    .filter((t) => t.split('.').length === 3)
    .findLast((t) => JSON.parse(Buffer.from(t.split('.')[1]!, 'base64url').toString()).sid !== undefined)
  assert.ok(idToken !== undefined && (await userStatus(cookie)) === 200)
  return JSON.parse(Buffer.from(idToken.split('.')[1]!, 'base64url').toString()).sid as string
}

test("issue 13 item 6: a frozen store answers 503 with Retry-After, and the IdP's retry of the same token ends the sessions", async (t) => {
  const { browser } = await stack.login()
  const cookie = cookieOf(browser)
  const sid = await sidOf(cookie)
  const token = await logoutToken({ sid })

  // An outage that keeps the data: commands sent meanwhile run when it comes back.
  process.kill(redis.pid, 'SIGSTOP')
  let thawed = false
  const thaw = () => {
    if (!thawed) {
      thawed = true
      process.kill(redis.pid, 'SIGCONT')
    }
  }
  t.after(thaw)
  const during = await post(token)
  thaw()
  assert.equal(during.status, 503, JSON.stringify(during.body))
  assert.equal(during.body?.error, 'session_store_unavailable')
  assert.ok(Number(during.retryAfter) > 0, 'Retry-After tells the IdP when to retry')
  await admin.ping()

  const retry = await post(token)
  assert.equal(retry.status, 200, `the retry was refused: ${JSON.stringify(retry.body)}`)
  assert.equal(await userStatus(cookie), 401, 'the session survived the back-channel logout')
  // Once carried out, the same token is a replay.
  const replay = await post(token)
  assert.equal(replay.status, 400)
  assert.match(replay.body?.message ?? '', /jti already used/)
})

test('issue 13 item 6: a store that fails while deleting (after the token was checked) answers 503, and the retry succeeds', async (t) => {
  const one = cookieOf((await stack.login()).browser)
  const two = cookieOf((await stack.login()).browser)
  const token = await logoutToken({ sub: 'user-alice' })
  // The store refuses reading the index (a failing node, an ACL change): the deletion step fails
  // after the replay check and after any claim the old code made.
  await admin.call('ACL', 'SETUSER', 'default', '-hkeys', '-smembers')
  t.after(() => admin.call('ACL', 'SETUSER', 'default', '+@all'))
  const during = await post(token)
  await admin.call('ACL', 'SETUSER', 'default', '+@all')
  assert.equal(during.status, 503, JSON.stringify(during.body))
  assert.ok(Number(during.retryAfter) > 0)
  assert.equal(await userStatus(one), 200, 'nothing was deleted yet')

  const retry = await post(token)
  assert.equal(retry.status, 200, `the retry was refused: ${JSON.stringify(retry.body)}`)
  assert.equal(await userStatus(one), 401)
  assert.equal(await userStatus(two), 401)
})

test('issue 13 item 6: a token that fails validation is still a 400 and is not retried into success', async () => {
  const cookie = cookieOf((await stack.login()).browser)
  const res = await post(await logoutToken({ sub: 'user-alice', aud: 'someone-else' }))
  assert.equal(res.status, 400)
  assert.equal(res.body?.error, 'invalid_request')
  assert.equal(await userStatus(cookie), 200)
})

test('one logout token ends sessions once, however many copies of it arrive at once; the others are replays', async () => {
  // An index of 10,000 entries whose sessions are gone makes ending this user take many store
  // round trips: a window in which every copy has passed any check not made with the claim.
  const fields: Record<string, string> = {}
  for (let i = 0; i < 10_000; i++) fields[`${stack.keyPrefix}session:gone-${i}`] = ''
  await admin.hset(createKeyNames(stack.keyPrefix).subIndex(stack.idp.issuer, 'user-crowd'), fields)
  const token = await logoutToken({ sub: 'user-crowd' })
  const results = await Promise.all(Array.from({ length: 8 }, () => post(token)))
  assert.deepEqual(results.map((r) => r.status).sort(), [200, 400, 400, 400, 400, 400, 400, 400])
  for (const replay of results.filter((r) => r.status === 400))
    assert.match(replay.body?.message ?? '', /jti already used/)
})
