import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { decodeJwt } from 'jose'
import { Cluster } from 'ioredis'
import type { RedisConfig } from '../../src/config/types.ts'
import { createKeyNames } from '../../src/session/keys.ts'
import { createKeyring } from '../../src/session/keyring.ts'
import { createRedisBackend } from '../../src/session/redis-backend.ts'
import { createRedisConnection } from '../../src/session/redis-connection.ts'
import { createSessionStore } from '../../src/session/store.ts'
import { runSessionStoreContract, SECRET_A } from '../contracts/session-store.contract.ts'
import {
  startRedisCluster,
  startRedisSentinel,
  type TestRedisCluster,
  type TestRedisSentinel,
} from '../helpers/redis-topologies.ts'
import { dumpRedis } from '../helpers/redis.ts'
import { startStack, type Stack, cookieHeader } from '../helpers/stack.ts'

const CSRF = { 'x-csrf': '1' }
let cluster: TestRedisCluster
let sentinel: TestRedisSentinel
let prefixes = 0
const freshPrefix = () => `topo:${process.pid}:${++prefixes}:`

before(async () => {
  ;[cluster, sentinel] = await Promise.all([startRedisCluster(), startRedisSentinel()])
})
after(async () => {
  await Promise.all([cluster?.stop(), sentinel?.stop()])
})

const hostPorts = (list: string) =>
  list.split(',').map((hp) => ({ host: hp.split(':')[0]!, port: Number(hp.split(':')[1]) }))
const clusterConfig = (keyPrefix: string): RedisConfig => ({
  url: 'redis://127.0.0.1:6379',
  keyPrefix,
  cluster: { nodes: hostPorts(cluster.nodes) },
})
const sentinelConfig = (keyPrefix: string): RedisConfig => ({
  url: 'redis://127.0.0.1:6379',
  keyPrefix,
  sentinel: { nodes: hostPorts(sentinel.sentinels), masterName: sentinel.masterName },
})

function contractOn(name: string, configFor: (prefix: string) => RedisConfig): void {
  runSessionStoreContract(name, async ({ idleSeconds, secrets = [SECRET_A], prefix }) => {
    const keyPrefix = prefix ?? freshPrefix()
    const connection = createRedisConnection(configFor(keyPrefix))
    const keys = createKeyNames(keyPrefix)
    const backend = createRedisBackend(connection, { removedChannel: keys.removedChannel })
    const store = createSessionStore({ backend, keyring: createKeyring(secrets), keys, idleSeconds })
    return {
      store,
      subIndex: (iss, sub) => backend.members(keys.subIndex(iss, sub)),
      async dump() {
        const masters = connection instanceof Cluster ? connection.nodes('master') : [connection]
        const dumps = await Promise.all(masters.map((node) => dumpRedis(node, keyPrefix)))
        return dumps.flatMap((d) => d.values)
      },
    }
  })
}

contractOn('redis cluster (3 masters)', clusterConfig)
contractOn('redis sentinel (master, replica, 3 sentinels)', sentinelConfig)

interface Echo {
  claims: Record<string, unknown>
  headers: Record<string, string>
}

async function callApi(
  stack: Stack,
  cookie: string,
): Promise<{ status: number; body: Echo & { error?: string }; headers: Headers }> {
  const res = await fetch(`${stack.url}/api/hello`, { headers: { ...CSRF, cookie } })
  return { status: res.status, body: (await res.json()) as Echo & { error?: string }, headers: res.headers }
}

/** Login, a proxied call, then a call after the access token expired (a real refresh). */
async function loginProxyRefresh(stack: Stack): Promise<string> {
  const { browser } = await stack.login()
  const cookie = cookieHeader(stack, browser)
  const first = await callApi(stack, cookie)
  assert.equal(first.status, 200)
  const token = first.body.headers.authorization!.replace(/^Bearer /, '')
  const { exp } = decodeJwt(token)
  // Until the token's own expiry: bffgate's stored deadline may lag the JWT's `exp` by the
  // time the token took to arrive, up to the refresh skew (1 s here) on a loaded machine.
  await sleep(Math.max(0, exp! * 1000 - Date.now()) + 150)
  stack.idp.resetStats()
  const second = await callApi(stack, cookie)
  assert.equal(second.status, 200)
  assert.notEqual(
    second.body.headers.authorization,
    first.body.headers.authorization,
    'a new access token after the refresh',
  )
  assert.equal(stack.idp.stats().tokenRequests.refresh_token, 1)
  return cookie
}

const shortTokens = { accessTokenTtlSeconds: 3 }

describe('gateway on Redis Cluster', () => {
  test('login, proxy and refresh work on a 3-master cluster; logout removes the session and its indexes', async (t) => {
    const stack = await startStack({
      idp: shortTokens,
      env: {
        BFF_SESSION_STORE: 'redis',
        BFF_REDIS_CLUSTER_NODES: cluster.nodes,
        BFF_REDIS_KEY_PREFIX: freshPrefix(),
        BFF_REFRESH_SKEW_SECONDS: '1',
      },
    })
    t.after(() => stack.close())
    const cookie = await loginProxyRefresh(stack)
    const logout = await fetch(`${stack.url}/bff/logout`, { method: 'POST', headers: { ...CSRF, cookie } })
    assert.equal(logout.status, 200)
    assert.equal((await callApi(stack, cookie)).status, 401)
  })
})

describe('gateway on Redis Sentinel', () => {
  test('login, proxy and refresh work through sentinels, and sessions survive a failover during traffic', async (t) => {
    const stack = await startStack({
      idp: { accessTokenTtlSeconds: 60 },
      env: {
        BFF_SESSION_STORE: 'redis',
        BFF_REDIS_SENTINELS: sentinel.sentinels,
        BFF_REDIS_SENTINEL_MASTER_NAME: sentinel.masterName,
        BFF_REDIS_KEY_PREFIX: freshPrefix(),
        // Every call touches Redis (a refresh lock and write) while the failover runs.
        BFF_SESSION_CHECK_SECONDS: '1',
      },
    })
    t.after(() => stack.close())
    const { browser } = await stack.login()
    const cookie = cookieHeader(stack, browser)
    assert.equal((await callApi(stack, cookie)).status, 200)
    // Let the replica receive the session before the switch.
    await (await sentinel.master()).wait(1, 2000)

    const statuses: number[] = []
    const done = new AbortController()
    const traffic = (async () => {
      while (!done.signal.aborted) {
        const res = await callApi(stack, cookie).catch(() => ({ status: 0, headers: new Headers() }))
        statuses.push(res.status)
        if (res.status === 503) assert.ok(res.headers.get('retry-after'), '503 carries Retry-After')
        await sleep(50)
      }
    })()
    const previous = await sentinel.masterPort()
    const now = await sentinel.failover()
    assert.notEqual(now, previous)
    // Recovers by itself: keep calling until a 200 comes back through the new master.
    const deadline = Date.now() + 20_000
    for (;;) {
      const res = await callApi(stack, cookie)
      if (res.status === 200) break
      assert.ok(Date.now() < deadline, `no recovery after the failover (last status ${res.status})`)
      await sleep(100)
    }
    await sleep(1000)
    done.abort()
    await traffic
    t.diagnostic(`failover ${previous} -> ${now}; statuses during traffic: ${statuses.join(',')}`)
    const unexpected = statuses.filter((s) => s !== 200 && s !== 503)
    assert.deepEqual(unexpected, [], `only 200 or 503 during the failover, got ${statuses.join(',')}`)
    assert.equal(statuses.at(-1), 200, 'the session survived the failover')
    // Writes go to the new master: a fresh login works.
    const again = await stack.login()
    assert.equal((await callApi(stack, cookieHeader(stack, again.browser))).status, 200)
  })

  test('login, proxy and refresh work through sentinels', async (t) => {
    const stack = await startStack({
      idp: shortTokens,
      env: {
        BFF_SESSION_STORE: 'redis',
        BFF_REDIS_SENTINELS: sentinel.sentinels,
        BFF_REDIS_SENTINEL_MASTER_NAME: sentinel.masterName,
        BFF_REDIS_KEY_PREFIX: freshPrefix(),
        BFF_REFRESH_SKEW_SECONDS: '1',
      },
    })
    t.after(() => stack.close())
    await loginProxyRefresh(stack)
  })
})
