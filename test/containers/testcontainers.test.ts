/**
 * testcontainers, the tests' first choice for Redis when an engine is reachable
 * (test/helpers/redis.ts): it starts a real redis:7-alpine container, which answers, and
 * removes it again. Skipped without an engine, except in CI, where that is a failure.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { startTestRedis } from '../helpers/redis.ts'
import { requireEngine, skipWithoutEngine, type ContainerSummary } from '../helpers/containers.ts'

const skip = await skipWithoutEngine()

test(
  "with an engine reachable, the tests' Redis is a container that testcontainers starts and removes",
  { skip, timeout: 180_000 },
  async () => {
    const engine = await requireEngine()
    const fromEnv = process.env.BFF_REDIS_URL
    delete process.env.BFF_REDIS_URL
    const redisContainers = async () =>
      (await engine.get<ContainerSummary[]>('/containers/json')).filter(
        (c) => c.Labels['org.testcontainers'] === 'true',
      )
    const before = new Set((await redisContainers()).map((c) => c.Id))
    const started = Date.now()
    const redis = await startTestRedis()
    try {
      assert.equal(redis.source, 'testcontainers')
      process.stderr.write(`# testcontainers started Redis in ${Date.now() - started} ms on ${engine.name}\n`)
      const ours = (await redisContainers()).filter((c) => !before.has(c.Id))
      assert.equal(ours.length, 1, 'no new testcontainers container in the engine')
      const client = redis.client()
      const key = `${redis.prefix()}probe`
      await client.set(key, 'through the container')
      assert.equal(await client.get(key), 'through the container')
      assert.match(await client.info('server'), /redis_version:7\./)
      await redis.stop()
      const left = (await redisContainers()).filter((c) => c.Id === ours[0]!.Id)
      assert.deepEqual(left, [], 'the container is still running after stop()')
    } finally {
      await redis.stop().catch(() => {})
      if (fromEnv !== undefined) process.env.BFF_REDIS_URL = fromEnv
    }
  },
)
