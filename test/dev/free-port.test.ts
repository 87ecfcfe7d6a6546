/** The tests' port picker: every port it hands out is free, and none twice in one process. */
import assert from 'node:assert/strict'
import { createServer } from 'node:net'
import { test } from 'node:test'
import { freePort } from '../helpers/redis.ts'

test('freePort never hands out the same port twice in a process, and each one can be bound', async () => {
  const ports: number[] = []
  for (let i = 0; i < 200; i++) ports.push(await freePort())
  assert.equal(new Set(ports).size, ports.length)
  for (const port of ports.slice(-5)) {
    const server = createServer()
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, '127.0.0.1', resolve)
    })
    await new Promise((resolve) => server.close(resolve))
  }
})
