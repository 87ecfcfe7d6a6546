/**
 * `node bench/read-cost.ts`: the gateway-side CPU of the session reads a proxied request makes,
 * in batches of 1, 5 and 20 reads issued in one turn (as concurrent requests issue them), with
 * src/session/read-batcher.ts (one GET, or one MGET per batch) against the pipeline of GETs it
 * replaced, on a real redis-server (pinned apart from this process when there are two CPUs),
 * over the connection options the gateway uses (a command timeout, so a timer per command).
 * Interleaved rounds; the median CPU µs per read of each is reported.
 */
import { execFileSync } from 'node:child_process'
import { Redis } from 'ioredis'
import { cpus } from 'node:os'
import { createReadBatcher, type SessionEntry } from '../src/session/read-batcher.ts'
import { startRedisServer } from '../test/helpers/redis.ts'

const ROUNDS = Number(process.env.ROUNDS ?? 7)
const READS = Number(process.env.READS ?? 20_000)
const KEYS = 1000
const BATCHES = [1, 5, 20]

type Read = (key: string) => Promise<SessionEntry | undefined>
/** Both batchers time each read and report it here (the gateway's metrics would take it). */
const observe = (_ms: number): void => {}
const entryOf = (value: Buffer | null): SessionEntry | undefined =>
  value === null ? undefined : { sealed: value, ttlMs: 1 }

/**
 * The batcher before the change (commit 99546ef's src/session/read-batcher.ts, kept here as the
 * baseline): the turn's reads as a pipeline of GETs, each read timed as that one did, so that
 * the two differ only in the command they send.
 */
function pipelinedReads(redis: Redis): Read {
  let pending: { key: string; resolve: (e: SessionEntry | undefined) => void; reject: (e: unknown) => void }[] = []
  const flush = (): void => {
    const batch = pending
    pending = []
    const pipeline = redis.pipeline()
    for (const { key } of batch) pipeline.getBuffer(key)
    pipeline.exec().then(
      (results) =>
        batch.forEach((read, i) => {
          const result = results?.[i]
          if (result === undefined || result[0]) read.reject(result?.[0] ?? new Error('no reply'))
          else read.resolve(entryOf(result[1] as Buffer | null))
        }),
      (err: unknown) => batch.forEach((read) => read.reject(err)),
    )
  }
  return (key) =>
    new Promise((resolve, reject) => {
      const started = performance.now()
      if (pending.length === 0) setImmediate(flush)
      pending.push({
        key,
        resolve: (entry) => {
          observe(performance.now() - started)
          resolve(entry)
        },
        reject,
      })
    })
}

const server = await startRedisServer()
if (cpus().length >= 2) execFileSync('taskset', ['-a', '-p', '-c', '0', String(server.pid)], { stdio: 'ignore' })
// The gateway's options that bear on the cost of a command (src/session/redis-connection.ts).
const redis = new Redis(server.url, { maxRetriesPerRequest: 1, commandTimeout: 2000, enableReadyCheck: true })
const value = Buffer.alloc(1100, 7) // about a stored session (record format 3, with its header)
for (let i = 0; i < KEYS; i++) await redis.set(`bench:read:${i}`, value)

const candidates: Record<string, Read> = {
  batcher: createReadBatcher(redis, { entryOf, observe, failure: (err) => err as Error }),
  pipeline: pipelinedReads(redis),
}

async function cpuPerRead(read: Read, batchSize: number): Promise<number> {
  const start = process.cpuUsage()
  let next = 0
  for (let done = 0; done < READS; done += batchSize) {
    const batch: Promise<unknown>[] = []
    for (let i = 0; i < batchSize; i++) batch.push(read(`bench:read:${next++ % KEYS}`))
    await Promise.all(batch)
  }
  const used = process.cpuUsage(start)
  return (used.user + used.system) / READS
}

const results: Record<string, number[]> = {}
for (const batchSize of BATCHES)
  for (const name of Object.keys(candidates)) await cpuPerRead(candidates[name]!, batchSize) // warm-up
for (let round = 0; round < ROUNDS; round++) {
  for (const batchSize of BATCHES) {
    const names = Object.keys(candidates)
    if (round % 2 === 1) names.reverse()
    for (const name of names)
      (results[`${name} ×${batchSize}`] ??= []).push(await cpuPerRead(candidates[name]!, batchSize))
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
process.stdout.write(
  `CPU µs per read (this process), ${READS} reads per round, median of ${ROUNDS} interleaved rounds:\n`,
)
for (const batchSize of BATCHES) {
  const ours = median(results[`batcher ×${batchSize}`]!)
  const before = median(results[`pipeline ×${batchSize}`]!)
  process.stdout.write(
    `batches of ${String(batchSize).padStart(2)}: batcher ${ours.toFixed(1)} µs, pipeline of GETs ${before.toFixed(1)} µs (${(ours / before).toFixed(2)}×)\n`,
  )
}
redis.disconnect()
await server.stop()
