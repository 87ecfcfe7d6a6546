/**
 * In-process A/B of the session store's miss path (issue #20, 100,000 sessions): CPU µs per
 * `find()` with N sessions visited round-robin, every pass within the caches' minute (a
 * workload where each session comes back within a minute but the sessions outnumber a cache),
 * this checkout's store against another checkout's (BENCH_AB_ROOT), on one in-memory backend
 * (no network: the store's own CPU only, without idle slides), in interleaved rounds.
 * Usage: `BENCH_AB_ROOT=<dir> node bench/store-ab.ts [sessions ...]` (default 10000 30000 100000).
 */
import { join } from 'node:path'
import { createKeyNames } from '../src/session/keys.ts'
import { createKeyring } from '../src/session/keyring.ts'
import { createMemoryBackend } from '../src/session/memory-backend.ts'
import { createSessionStore } from '../src/session/store.ts'
import type { SessionStoreOptions } from '../src/session/store.ts'
import type { SessionStore } from '../src/session/types.ts'
import { sampleRecord, SECRET_A } from '../test/contracts/session-store.contract.ts'

const abRoot = process.env.BENCH_AB_ROOT
if (abRoot === undefined) throw new Error('set BENCH_AB_ROOT to the other checkout')
const other = (await import(join(abRoot, 'src/session/store.ts'))) as {
  createSessionStore: (options: SessionStoreOptions) => SessionStore
}
const ROUNDS = 6
const cpuUs = (): number => {
  const u = process.cpuUsage()
  return u.user + u.system
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!

for (const sessions of (process.argv.length > 2 ? process.argv.slice(2) : ['10000', '30000', '100000']).map(Number)) {
  let clock = Date.now()
  const now = (): number => clock
  const backend = createMemoryBackend({ now })
  const options = (): SessionStoreOptions => ({
    backend,
    keyring: createKeyring([SECRET_A]),
    keys: createKeyNames('bench:'),
    idleSeconds: 259_200,
    now,
  })
  const record = { ...sampleRecord(), absolute_expires_at: Math.floor(clock / 1000) + 30 * 86_400 }
  const writer = createSessionStore(options())
  const cookies: string[] = []
  for (let i = 0; i < sessions; i++) cookies.push((await writer.create(record)).cookieValue)
  const stores = { this: createSessionStore(options()), ab: other.createSessionStore(options()) }
  const figures: Record<keyof typeof stores, number[]> = { this: [], ab: [] }
  for (let round = 0; round < ROUNDS; round++) {
    for (const name of round % 2 === 0 ? (['this', 'ab'] as const) : (['ab', 'this'] as const)) {
      const before = cpuUs()
      for (let i = 0; i < sessions; i++) {
        if ('missing' in (await stores[name].find(cookies[i]!, { slide: false }))) throw new Error('session not found')
        if (i % 1000 === 0) clock += 100 // a pass of 100,000 takes 10 s of the stores' clock
      }
      if (round > 0) figures[name].push(Math.round((cpuUs() - before) / sessions)) // round 0 fills the caches
    }
  }
  process.stdout.write(
    `${sessions} sessions: CPU µs per find, this ${median(figures.this)} (rounds ${figures.this.join(' / ')}), ${abRoot} ${median(figures.ab)} (rounds ${figures.ab.join(' / ')}); RSS ${Math.round(process.memoryUsage().rss / 2 ** 20)} MiB\n`,
  )
}
