import type { Registry } from 'prom-client'

/*
 * The per-request metrics (a counter and three histograms on every proxied request) as prom-client
 * metric objects of our own: observed by label values given in order, the series found by one
 * Map lookup per label. prom-client's own `observe({ ... })` validates the label object, sorts
 * and joins it into a key and converts the bucket bound to a property name on every call, ~1 µs
 * each (2.5 % of the gateway's busy CPU under load, bench/README.md). The exposition is
 * prom-client's: its registry formats these (`get()`), so /metrics reads as before.
 */

type Label = string

/** What prom-client's registry reads from a metric (its own types for it are not exported). */
export interface MetricSnapshot {
  readonly name: string
  readonly help: string
  readonly type: 'counter' | 'histogram'
  readonly values: { labels: Record<string, string | number>; value: number; metricName?: string }[]
  readonly aggregator: 'sum'
}
/** One series' values, found by walking one map level per label. */
type Level<S> = Map<Label, Level<S> | S>

function seriesOf<S>(root: Level<S>, depth: number, values: readonly Label[], make: () => S): S {
  if (values.length !== depth) throw new TypeError(`${depth} label values expected, not ${values.length}`)
  let level = root
  const last = values.length - 1
  for (let i = 0; i < last; i++) {
    let next = level.get(values[i]!) as Level<S> | undefined
    if (next === undefined) level.set(values[i]!, (next = new Map()))
    level = next
  }
  let series = level.get(values[last]!) as S | undefined
  if (series === undefined) level.set(values[last]!, (series = make()))
  return series
}

function* walk<S>(level: Level<S>, depth: number, path: Label[]): Generator<[Label[], S]> {
  for (const [label, next] of level) {
    path.push(label)
    if (depth === 1) yield [path.slice(), next as S]
    else yield* walk(next as Level<S>, depth - 1, path)
    path.pop()
  }
}

interface MetricOptions<N extends string> {
  readonly name: string
  readonly help: string
  /** At least one; values are given in this order. */
  readonly labelNames: readonly N[]
  readonly registers: readonly Registry[]
}

abstract class LabelledMetric<N extends string, S> {
  readonly name: string
  readonly help: string
  readonly labelNames: readonly N[]
  readonly aggregator = 'sum' as const
  protected series: Level<S> = new Map()

  constructor(options: MetricOptions<N>) {
    if (options.labelNames.length === 0) throw new TypeError(`${options.name}: at least one label name`)
    this.name = options.name
    this.help = options.help
    this.labelNames = options.labelNames
    // prom-client's registry calls only name, help, type, get() and reset().
    for (const registry of options.registers) registry.registerMetric(this as never)
  }

  protected labelsOf(values: readonly Label[]): Record<string, Label> {
    const labels: Record<string, Label> = {}
    this.labelNames.forEach((name, i) => (labels[name] = values[i]!))
    return labels
  }

  protected entries(): Generator<[Label[], S]> {
    return walk(this.series, this.labelNames.length, [])
  }

  reset(): void {
    this.series = new Map()
  }
}

/** A counter whose series are named by label values in `labelNames` order. */
export class LabelledCounter<N extends string> extends LabelledMetric<N, { value: number }> {
  readonly type = 'counter' as const

  /** Adds `by` (default 1) to the series `values` names. */
  inc(values: readonly Label[], by = 1): void {
    seriesOf(this.series, this.labelNames.length, values, () => ({ value: 0 })).value += by
  }

  async get(): Promise<MetricSnapshot> {
    const values: MetricSnapshot['values'] = []
    for (const [labels, { value }] of this.entries()) values.push({ value, labels: this.labelsOf(labels) })
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator }
  }
}

interface HistogramSeries {
  /** Per bucket (not cumulative); the last one is +Inf. */
  readonly counts: number[]
  sum: number
  count: number
}

/** A histogram whose series are named by label values in `labelNames` order. */
export class LabelledHistogram<N extends string> extends LabelledMetric<N, HistogramSeries> {
  readonly type = 'histogram' as const
  readonly buckets: readonly number[]

  constructor(options: MetricOptions<N> & { readonly buckets: readonly number[] }) {
    super(options)
    this.buckets = [...options.buckets].sort((a, b) => a - b)
  }

  /** Records `value` in the series `values` names. A value that is not a finite number is refused. */
  observe(values: readonly Label[], value: number): void {
    if (!Number.isFinite(value)) throw new TypeError(`${this.name}: not a finite number: ${value}`)
    const series = seriesOf(this.series, this.labelNames.length, values, () => ({
      counts: Array.from({ length: this.buckets.length + 1 }, () => 0),
      sum: 0,
      count: 0,
    }))
    const { buckets } = this
    let i = 0
    while (i < buckets.length && value > buckets[i]!) i++
    series.counts[i]!++
    series.sum += value
    series.count++
  }

  async get(): Promise<MetricSnapshot> {
    const values: MetricSnapshot['values'] = []
    for (const [names, series] of this.entries()) {
      const labels = this.labelsOf(names)
      let cumulative = 0
      this.buckets.forEach((le, i) => {
        cumulative += series.counts[i]!
        values.push({ labels: { ...labels, le }, value: cumulative, metricName: `${this.name}_bucket` })
      })
      values.push(
        { labels: { ...labels, le: '+Inf' }, value: series.count, metricName: `${this.name}_bucket` },
        { labels, value: series.sum, metricName: `${this.name}_sum` },
        { labels, value: series.count, metricName: `${this.name}_count` },
      )
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator }
  }
}
