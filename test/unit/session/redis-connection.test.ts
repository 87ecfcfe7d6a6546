import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { Cluster, Redis } from 'ioredis'
import { createRedisConnection, type RedisConnection } from '../../../src/session/redis-connection.ts'

/** Builds the connection, reads its options, and drops it before it gets anywhere. */
function optionsOf(connection: RedisConnection): Record<string, unknown> {
  connection.on('error', () => {})
  connection.disconnect()
  return connection.options as Record<string, unknown>
}

describe('createRedisConnection', () => {
  test('a rediss:// URL with ACL credentials and a database gives TLS, the user, the password and the db', () => {
    const connection = createRedisConnection({ url: 'rediss://bff:p%40ss@redis.example:6380/2', keyPrefix: 'bff:' })
    assert.ok(connection instanceof Redis)
    const options = optionsOf(connection)
    assert.equal(options.host, 'redis.example')
    assert.equal(options.port, 6380)
    assert.equal(options.db, 2)
    assert.equal(options.username, 'bff')
    assert.equal(options.password, 'p@ss')
    assert.deepEqual(options.tls, { servername: 'redis.example' })
    assert.equal(options.commandTimeout, 2000, 'a frozen Redis cannot hang requests')
  })

  test('BFF_REDIS_USERNAME and BFF_REDIS_PASSWORD override the URL', () => {
    const options = optionsOf(
      createRedisConnection({
        url: 'redis://old:old@127.0.0.1:1',
        keyPrefix: 'bff:',
        username: 'new-user',
        password: 'new-pass',
      }),
    )
    assert.equal(options.username, 'new-user')
    assert.equal(options.password, 'new-pass')
    assert.equal(options.tls, undefined)
  })

  test('sentinels: the master name, the sentinel password and the node credentials', () => {
    const options = optionsOf(
      createRedisConnection({
        url: 'redis://127.0.0.1:6379',
        keyPrefix: 'bff:',
        password: 'node-pass',
        sentinel: { nodes: [{ host: 's0', port: 26379 }], masterName: 'mymaster', password: 'sentinel-pass' },
      }),
    )
    assert.deepEqual(options.sentinels, [{ host: 's0', port: 26379 }])
    assert.equal(options.name, 'mymaster')
    assert.equal(options.sentinelPassword, 'sentinel-pass')
    assert.equal(options.password, 'node-pass')
  })

  test('cluster seeds make an ioredis Cluster whose nodes get the credentials', () => {
    const connection = createRedisConnection({
      url: 'redis://127.0.0.1:6379',
      keyPrefix: 'bff:',
      username: 'u',
      password: 'p',
      cluster: { nodes: [{ host: 'c0', port: 7000 }] },
    })
    assert.ok(connection instanceof Cluster)
    const options = optionsOf(connection)
    const redisOptions = options.redisOptions as Record<string, unknown>
    assert.equal(redisOptions.username, 'u')
    assert.equal(redisOptions.password, 'p')
  })
})
