/**
 * Loaded into a measured process with `--import` when `BENCH_GC=1`: counts V8's garbage
 * collections by kind (scavenges, incremental marking, full collections) and their pause
 * time, and writes the totals and percentiles to `BENCH_GC_FILE` when the process exits. Plain
 * JavaScript, so that observing a process does not load Node's type stripper into it.
 */
import { writeFileSync } from 'node:fs'
import { constants, PerformanceObserver } from 'node:perf_hooks'

/** @type {Record<number, string>} */
const KINDS = {
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
}
/** @type {Record<string, number[]>} */
const pauses = {}
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    const kind = KINDS[/** @type {{ detail?: { kind?: number } }} */ (entry).detail?.kind ?? -1] ?? 'other'
    ;(pauses[kind] ??= []).push(entry.duration)
  }
}).observe({ entryTypes: ['gc'] })

process.on('exit', () => {
  const file = process.env.BENCH_GC_FILE
  if (file === undefined) return
  /** @type {Record<string, { count: number; totalMs: number; p50Ms: number; p99Ms: number; maxMs: number }>} */
  const summary = {}
  for (const [kind, durations] of Object.entries(pauses)) {
    durations.sort((a, b) => a - b)
    const at = (/** @type {number} */ q) =>
      Math.round(durations[Math.min(durations.length - 1, Math.floor(durations.length * q))] * 100) / 100
    summary[kind] = {
      count: durations.length,
      totalMs: Math.round(durations.reduce((a, b) => a + b, 0) * 10) / 10,
      p50Ms: at(0.5),
      p99Ms: at(0.99),
      maxMs: at(1),
    }
  }
  writeFileSync(file, JSON.stringify(summary))
})
