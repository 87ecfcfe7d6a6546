import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { test } from 'node:test'
import type { CompactJWSHeaderParameters, FlattenedJWSInput } from 'jose'
import { createCriticalMembersSource, createIssuerKeys, FAILURE_COOLDOWN_MS } from '../../../src/revocation/keys.ts'

/** A real HTTP server answering every request with `status`; counts the requests. */
async function countingServer(
  t: { after: (fn: () => void) => void },
  status: number,
): Promise<{ issuer: string; hits: () => number }> {
  let hits = 0
  const server: Server = createServer((_request, response) => {
    hits++
    response.writeHead(status).end()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(() => {
    server.closeAllConnections()
    server.close()
  })
  return { issuer: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, hits: () => hits }
}

const header: CompactJWSHeaderParameters = { alg: 'ES256', kid: 'k' }
const token = {} as FlattenedJWSInput
/** One key check, as jwtVerify makes it. */
const check = async (keys: ReturnType<typeof createIssuerKeys>): Promise<unknown> => keys(header, token)

test('a failed key lookup is answered from memory for the cooldown, one request in flight, then tried again', async (t) => {
  const { issuer, hits } = await countingServer(t, 404)
  let clock = 1_000_000
  const keys = createIssuerKeys({
    issuer,
    metadataUrls: [`${issuer}.well-known/openid-configuration`, `${issuer}.well-known/oauth-authorization-server`],
    timeoutMs: 2000,
    now: () => clock,
  })
  // 25 concurrent checks, then 25 one after another, all within the cooldown.
  const concurrent = await Promise.allSettled(Array.from({ length: 25 }, () => check(keys)))
  for (let i = 0; i < 25; i++) await assert.rejects(check(keys), /answered 404/)
  assert.ok(concurrent.every((r) => r.status === 'rejected'))
  assert.equal(hits(), 2, 'one lookup (its two metadata URLs) for 50 token checks')
  clock += FAILURE_COOLDOWN_MS - 1
  await assert.rejects(check(keys))
  assert.equal(hits(), 2, 'tried again before the cooldown ended')
  clock += 1
  await assert.rejects(check(keys))
  assert.equal(hits(), 4, 'not tried again after the cooldown')
})

test('an unreadable SSF configuration is fetched again only after the cooldown, with one warning per attempt', async (t) => {
  const { issuer, hits } = await countingServer(t, 503)
  let clock = 1_000_000
  const warnings: string[] = []
  const members = createCriticalMembersSource({
    issuer: issuer.replace(/\/$/, ''),
    timeoutMs: 2000,
    onError: (reason) => warnings.push(reason),
    now: () => clock,
  })
  for (let i = 0; i < 50; i++) assert.deepEqual(await members(), [])
  assert.equal(hits(), 1)
  assert.equal(warnings.length, 1)
  clock += FAILURE_COOLDOWN_MS
  assert.deepEqual(await members(), [])
  assert.equal(hits(), 2)
  assert.equal(warnings.length, 2)
})
