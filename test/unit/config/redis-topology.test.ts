import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { ConfigError, loadConfig } from '../../../src/config/load.ts'

const minimal = {
  BFF_PUBLIC_URL: 'https://app.example.com',
  BFF_OIDC_ISSUER: 'https://tenant.auth0.com/',
  BFF_OIDC_CLIENT_ID: 'client-1',
  BFF_OIDC_CLIENT_SECRET: 'client-secret-value',
  BFF_SESSION_SECRET: 'unit-test-secret-0123456789-abcdefghijklmnopqrstuvwxyz',
}

function problemsOf(env: Record<string, string>): readonly string[] {
  try {
    loadConfig({ ...minimal, ...env })
  } catch (err) {
    assert.ok(err instanceof ConfigError)
    return err.problems
  }
  assert.fail('configuration was accepted')
}

describe('Redis topology and limit settings', () => {
  test('a standalone Redis is the default; limits and the upstream timeout have their documented defaults', () => {
    const config = loadConfig(minimal)
    assert.deepEqual(config.redis, { url: 'redis://127.0.0.1:6379', keyPrefix: 'bff:' })
    assert.equal(config.upstreamTimeoutSeconds, 30)
    assert.deepEqual(config.server, {
      connectionTimeoutSeconds: 60,
      requestTimeoutSeconds: 120,
      keepAliveTimeoutSeconds: 72,
      maxHeaderBytes: 16384,
      maxEventLoopDelayMs: 1000,
    })
  })

  test('sentinels with a master name and passwords (also from files) make a Sentinel configuration', () => {
    const files: Record<string, string> = {
      '/run/secrets/redis': 'node-pass\n',
      '/run/secrets/sentinel': 'sentinel-pass',
    }
    const config = loadConfig(
      {
        ...minimal,
        BFF_REDIS_SENTINELS: 'sentinel-0:26379, sentinel-1:26379,[::1]:26380',
        BFF_REDIS_SENTINEL_MASTER_NAME: 'mymaster',
        BFF_REDIS_SENTINEL_PASSWORD_FILE: '/run/secrets/sentinel',
        BFF_REDIS_USERNAME: 'bff',
        BFF_REDIS_PASSWORD_FILE: '/run/secrets/redis',
      },
      { readFile: (path) => files[path]! },
    )
    assert.deepEqual(config.redis.sentinel, {
      nodes: [
        { host: 'sentinel-0', port: 26379 },
        { host: 'sentinel-1', port: 26379 },
        { host: '::1', port: 26380 },
      ],
      masterName: 'mymaster',
      password: 'sentinel-pass',
    })
    assert.equal(config.redis.username, 'bff')
    assert.equal(config.redis.password, 'node-pass')
    assert.equal(config.redis.cluster, undefined)
  })

  test('cluster seeds make a Cluster configuration', () => {
    const config = loadConfig({ ...minimal, BFF_REDIS_CLUSTER_NODES: 'redis-0:6379,redis-1:6379' })
    assert.deepEqual(config.redis.cluster, {
      nodes: [
        { host: 'redis-0', port: 6379 },
        { host: 'redis-1', port: 6379 },
      ],
    })
  })

  test('Sentinel and Cluster exclude each other, and every problem names its variable', () => {
    const problems = problemsOf({ BFF_REDIS_SENTINELS: 'a:1', BFF_REDIS_CLUSTER_NODES: 'b:2' })
    assert.ok(problems.some((p) => p.includes('"BFF_REDIS_SENTINELS" and "BFF_REDIS_CLUSTER_NODES" are both set')))
    assert.ok(problems.some((p) => p.includes('"BFF_REDIS_SENTINEL_MASTER_NAME" is required')))
  })

  test('bad host:port items, a master name or sentinel password without sentinels, and bad limits are refused', () => {
    assert.ok(
      problemsOf({ BFF_REDIS_CLUSTER_NODES: 'redis-0:6379,redis-1' }).some((p) =>
        p.startsWith('"BFF_REDIS_CLUSTER_NODES" must be a comma-separated list of host:port'),
      ),
    )
    assert.ok(
      problemsOf({ BFF_REDIS_SENTINELS: 'x:99999', BFF_REDIS_SENTINEL_MASTER_NAME: 'm' }).some((p) =>
        p.startsWith('"BFF_REDIS_SENTINELS"'),
      ),
    )
    assert.ok(
      problemsOf({ BFF_REDIS_SENTINEL_MASTER_NAME: 'm' }).some((p) =>
        p.includes('"BFF_REDIS_SENTINEL_MASTER_NAME" is set but "BFF_REDIS_SENTINELS" is not'),
      ),
    )
    assert.ok(
      problemsOf({ BFF_REDIS_SENTINEL_PASSWORD: 'p' }).some((p) =>
        p.includes('"BFF_REDIS_SENTINEL_PASSWORD" is set but "BFF_REDIS_SENTINELS" is not'),
      ),
    )
    assert.ok(
      problemsOf({ BFF_UPSTREAM_TIMEOUT_SECONDS: '0' }).some((p) =>
        p.startsWith('"BFF_UPSTREAM_TIMEOUT_SECONDS" must be a positive integer'),
      ),
    )
    assert.ok(problemsOf({ BFF_MAX_HEADER_BYTES: '100' }).some((p) => p.startsWith('"BFF_MAX_HEADER_BYTES"')))
  })

  test('no password appears in an error message', () => {
    const problems = problemsOf({
      BFF_REDIS_PASSWORD: 'hunter2-secret',
      BFF_REDIS_SENTINEL_PASSWORD: 'sentinel-secret',
    })
    assert.ok(!problems.join('\n').includes('hunter2') && !problems.join('\n').includes('sentinel-secret'))
  })
})
