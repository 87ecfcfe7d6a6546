/**
 * The per-request metrics of our own (src/labelled-metrics.ts) expose exactly what prom-client's
 * Counter and Histogram expose for the same observations, through prom-client's registry, in
 * both of its text formats.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { Counter, Histogram, Registry } from 'prom-client'
import { LabelledCounter, LabelledHistogram } from '../../src/labelled-metrics.ts'

const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]

/** Samples of an exposition as `name{sorted labels} value` lines (label order is not part of the format). */
function samples(text: string): string[] {
  return text
    .split('\n')
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const match = /^([^{ ]+)(?:\{(.*)\})? (.+)$/.exec(line)
      assert.ok(match, line)
      const labels = (match[2] ?? '').match(/[a-z_]+="(?:[^"\\]|\\.)*"/g) ?? []
      return `${match[1]}{${labels.sort().join(',')}} ${match[3]}`
    })
    .sort()
}

function registryOf(contentType: string): Registry {
  const registry = new Registry()
  registry.setContentType(contentType as never)
  return registry
}

function headers(text: string): string[] {
  return text.split('\n').filter((line) => line.startsWith('#'))
}

/** Label values that would collide if a series key were the values joined by any one separator. */
const LABELS: [string, string, string][] = [
  ['web', '/api', '2xx'],
  ['web', '/api', '5xx'],
  ['admin', '/api', '2xx'],
  ['a\u0000b', 'c', '2xx'],
  ['a', 'b\u0000c', '2xx'],
  ['a|b', 'c', '2xx'],
  ['a', 'b|c', '2xx'],
  ['quote"and\\slash', 'new\nline', '4xx'],
]
/** On bucket bounds, between them, below the first, above the last, zero. */
const VALUES = [0, 0.001, 0.005, 0.0051, 0.01, 0.3, 1, 2.5, 29.9, 30, 31, 1e6]

for (const contentType of [Registry.PROMETHEUS_CONTENT_TYPE, Registry.OPENMETRICS_CONTENT_TYPE]) {
  describe(`labelled metrics against prom-client's (${contentType.split(';')[0]})`, () => {
    test('a histogram exposes the same buckets, sums and counts', async () => {
      const theirs = registryOf(contentType)
      const ours = registryOf(contentType)
      const labelNames = ['frontend', 'route', 'status_class'] as const
      const options = { name: 'x_duration_seconds', help: 'Help with "quotes" and \\.', buckets: BUCKETS }
      const reference = new Histogram({ ...options, labelNames, registers: [theirs] })
      const histogram = new LabelledHistogram({ ...options, labelNames, registers: [ours] })
      LABELS.forEach(([frontend, route, status_class], i) => {
        for (const value of VALUES.slice(i)) {
          reference.observe({ frontend, route, status_class }, value)
          histogram.observe([frontend, route, status_class], value)
        }
      })
      const [expected, actual] = [await theirs.metrics(), await ours.metrics()]
      assert.deepEqual(samples(actual), samples(expected))
      assert.deepEqual(headers(actual), headers(expected))
      assert.equal(samples(actual).length, LABELS.length * (BUCKETS.length + 3))
    })

    test('a counter exposes the same series and values', async () => {
      const theirs = registryOf(contentType)
      const ours = registryOf(contentType)
      const options = { name: 'x_requests_total', help: 'Requests.', labelNames: ['frontend', 'route', 'status_class'] }
      const reference = new Counter({ ...options, registers: [theirs] })
      const counter = new LabelledCounter({ ...options, registers: [ours] })
      LABELS.forEach(([frontend, route, status_class], i) => {
        reference.inc({ frontend, route, status_class }, i + 1)
        counter.inc([frontend, route, status_class], i + 1)
        reference.inc({ frontend, route, status_class })
        counter.inc([frontend, route, status_class])
      })
      const [expected, actual] = [await theirs.metrics(), await ours.metrics()]
      assert.deepEqual(samples(actual), samples(expected))
      assert.deepEqual(headers(actual), headers(expected))
      // The JSON form too, series in any order.
      const json = async (registry: Registry) =>
        (await registry.getMetricsAsJSON()).map((metric) => ({
          ...metric,
          values: metric.values.map((v) => JSON.stringify(v)).sort(),
        }))
      assert.deepEqual(await json(ours), await json(theirs))
    })
  })
}

test('a histogram refuses a value that is not a finite number, both refuse the wrong number of label values, and reset empties both', async () => {
  const registry = new Registry()
  const histogram = new LabelledHistogram({
    name: 'h',
    help: 'h',
    labelNames: ['a'],
    buckets: [1],
    registers: [registry],
  })
  const counter = new LabelledCounter({ name: 'c', help: 'c', labelNames: ['a'], registers: [registry] })
  for (const value of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY])
    assert.throws(() => histogram.observe(['x'], value), /h: not a finite number/)
  assert.throws(() => histogram.observe([], 1), /1 label values expected, not 0/)
  assert.throws(() => counter.inc(['x', 'y']), /1 label values expected, not 2/)
  histogram.observe(['x'], 0.5)
  counter.inc(['x'])
  assert.match(await registry.metrics(), /^h_count\{a="x"\} 1$/m)
  registry.resetMetrics()
  assert.deepEqual(samples(await registry.metrics()), [])
  assert.throws(
    () => new LabelledCounter({ name: 'none', help: 'n', labelNames: [], registers: [] }),
    /at least one label name/,
  )
  assert.throws(
    () => new LabelledCounter({ name: 'c', help: 'again', labelNames: ['a'], registers: [registry] }),
    /already been registered/,
  )
})
