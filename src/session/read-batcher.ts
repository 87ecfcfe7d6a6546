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
 * load) go out as one command: a lone read as a GET, several as one MGET. That is one socket
 * write, one reply parse, one command timer and one promise for all of them instead of one
 * each; a pipeline of GETs (the way before) still made a command, a timer and a promise per
 * read (bench/README.md has both measurements). Each key's value comes back in the same single
 * round trip. Not for a Cluster: an MGET there cannot span slots.
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
    if (batch.length === 1) {
      const read = batch[0]!
      redis.getBuffer(read.key).then(
        (value) => read.resolve(entryOf(value)),
        (err: unknown) => read.reject(err),
      )
      return
    }
    redis.mgetBuffer(batch.map(({ key }) => key)).then(
      (values) => {
        batch.forEach((read, i) => {
          const value = values[i]
          // No answer is a failure (503), never "no session" (which would clear the cookie).
          if (value === undefined) read.reject(new Error('no reply for a batched read'))
          else read.resolve(entryOf(value))
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
