import type { RedisConnection } from './redis-connection.ts'

/** What a read of a session key found: the sealed record and its remaining lifetime. */
export interface SessionEntry {
  readonly sealed: Buffer
  readonly ttlMs: number
}

interface PendingRead {
  readonly key: string
  resolve(entry: SessionEntry | undefined): void
  reject(err: unknown): void
}

/**
 * Reads made in the same turn of the event loop (one per proxied request, many at once under
 * load) go out as one pipeline: one socket write and one reply parse for all of them instead
 * of one each (bench/README.md has the measurement). Each read is still its own GET answered
 * in the same single round trip; only the write is shared. Not for a Cluster: a pipeline
 * there cannot span nodes.
 */
export function createReadBatcher(
  redis: RedisConnection,
  options: {
    /** The entry a GET's answer holds, if any is left. */
    readonly entryOf: (value: Buffer | null) => SessionEntry | undefined
    /** Told each read's duration and outcome. */
    readonly observe: (seconds: number, outcome: 'ok' | 'error') => void
    /** The error a failed read rejects with. */
    readonly failure: (err: unknown) => Error
  },
): (key: string) => Promise<SessionEntry | undefined> {
  const { entryOf, observe, failure } = options
  let pendingReads: PendingRead[] = []
  const flushReads = (): void => {
    const batch = pendingReads
    pendingReads = []
    const pipeline = redis.pipeline()
    for (const { key } of batch) pipeline.getBuffer(key)
    pipeline.exec().then(
      (results) => {
        batch.forEach((read, i) => {
          const result = results?.[i]
          // No answer is a failure (503), never "no session" (which would clear the cookie).
          if (result === undefined) read.reject(new Error('no reply for a pipelined read'))
          else if (result[0]) read.reject(result[0])
          else read.resolve(entryOf(result[1] as Buffer | null))
        })
      },
      (err: unknown) => {
        for (const read of batch) read.reject(err)
      },
    )
  }
  /** A read of the next batch, observed, its failure mapped by `failure`. */
  return (key) =>
    new Promise((resolve, reject) => {
      const started = performance.now()
      // setImmediate, not nextTick: it runs after every socket callback of this poll phase.
      if (pendingReads.length === 0) setImmediate(flushReads)
      pendingReads.push({
        key,
        resolve(entry) {
          observe((performance.now() - started) / 1000, 'ok')
          resolve(entry)
        },
        reject(err) {
          observe((performance.now() - started) / 1000, 'error')
          reject(failure(err))
        },
      })
    })
}
