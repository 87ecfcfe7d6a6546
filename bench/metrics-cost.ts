/**
 * `node bench/metrics-cost.ts`: CPU per request of the metrics every proxied request records
 * (one counter and three histograms, src/metrics.ts), through prom-client's own Counter and
 * Histogram against src/labelled-metrics.ts, in interleaved rounds, in-process.
 */
import { Counter, Histogram, Registry } from 'prom-client'
import { LabelledCounter, LabelledHistogram } from '../src/labelled-metrics.ts'

const LATENCY = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]
const REDIS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 2.5]
const ROUNDS = Number(process.env.ROUNDS ?? 7)
const REQUESTS = 300_000

/** What src/metrics.ts records for one proxied request, with prom-client's metrics. */
function promClient(): (seconds: number) => void {
  const registers = [new Registry()]
  const requests = new Counter({
    name: 'c',
    help: 'c',
    labelNames: ['frontend', 'route', 'method', 'status_class'],
    registers,
  })
  const request = new Histogram({
    name: 'h',
    help: 'h',
    labelNames: ['frontend', 'route', 'status_class'],
    buckets: LATENCY,
    registers,
  })
  const upstream = new Histogram({
    name: 'u',
    help: 'u',
    labelNames: ['route', 'status_class'],
    buckets: LATENCY,
    registers,
  })
  const redis = new Histogram({ name: 'r', help: 'r', labelNames: ['operation', 'outcome'], buckets: REDIS, registers })
  return (seconds) => {
    requests.inc({ frontend: 'none', route: '/api', method: 'GET', status_class: '2xx' })
    request.observe({ frontend: 'none', route: '/api', status_class: '2xx' }, seconds)
    upstream.observe({ route: '/api', status_class: '2xx' }, seconds)
    redis.observe({ operation: 'read', outcome: 'ok' }, seconds / 10)
  }
}

/** The same with src/labelled-metrics.ts. */
function labelled(): (seconds: number) => void {
  const registers = [new Registry()]
  const requests = new LabelledCounter({
    name: 'c',
    help: 'c',
    labelNames: ['frontend', 'route', 'method', 'status_class'],
    registers,
  })
  const request = new LabelledHistogram({
    name: 'h',
    help: 'h',
    labelNames: ['frontend', 'route', 'status_class'],
    buckets: LATENCY,
    registers,
  })
  const upstream = new LabelledHistogram({
    name: 'u',
    help: 'u',
    labelNames: ['route', 'status_class'],
    buckets: LATENCY,
    registers,
  })
  const redis = new LabelledHistogram({
    name: 'r',
    help: 'r',
    labelNames: ['operation', 'outcome'],
    buckets: REDIS,
    registers,
  })
  return (seconds) => {
    requests.inc(['none', '/api', 'GET', '2xx'])
    request.observe(['none', '/api', '2xx'], seconds)
    upstream.observe(['/api', '2xx'], seconds)
    redis.observe(['read', 'ok'], seconds / 10)
  }
}

const setups = { 'prom-client': promClient(), labelled: labelled() }
const results: Record<string, number[]> = { 'prom-client': [], labelled: [] }
for (let round = 0; round < ROUNDS; round++) {
  const order = Object.entries(setups)
  if (round % 2 === 1) order.reverse()
  for (const [name, record] of order) {
    const started = process.cpuUsage()
    for (let i = 0; i < REQUESTS; i++) record(0.001 + (i % 100) / 1000)
    const used = process.cpuUsage(started)
    results[name]!.push(((used.user + used.system) * 1000) / REQUESTS)
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
for (const [name, ns] of Object.entries(results))
  console.log(
    `${name.padEnd(12)} median ${median(ns).toFixed(0)} ns CPU per request; rounds ${ns.map((n) => n.toFixed(0)).join(' / ')}`,
  )
