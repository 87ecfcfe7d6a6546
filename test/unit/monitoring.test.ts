/**
 * The shipped Grafana dashboard and Prometheus alert rules: every expression parses with
 * Prometheus' own PromQL grammar (@prometheus-io/lezer-promql, the parser of the Prometheus
 * UI), every rule is well formed, and every series they query is one bffgate exports.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, test } from 'node:test'
import { parser } from '@prometheus-io/lezer-promql'
import { parse as parseYaml } from 'yaml'
import { createMetrics } from '../../src/metrics.ts'

const files = new URL('../../charts/bffgate/files/', import.meta.url)
const rules = parseYaml(readFileSync(new URL('prometheus-rules.yaml', files), 'utf8')) as {
  groups: Array<{ name: string; rules: Array<Record<string, unknown>> }>
}
const dashboard = JSON.parse(readFileSync(new URL('grafana-dashboard.json', files), 'utf8')) as {
  uid: string
  panels: Array<{ type: string; title: string; targets?: Array<{ expr: string }> }>
  templating: { list: Array<{ name: string; definition?: string }> }
}

/** Grafana's own variables, replaced by what Grafana would put there before Prometheus sees the query. */
function expandGrafanaVariables(expr: string): string {
  return expr.replaceAll('$__rate_interval', '5m').replaceAll('$__interval', '1m').replaceAll('$__range', '1h')
}

/** The metric names an expression selects, or the parse errors it has. */
function selectedMetrics(expr: string): { names: string[]; errors: string[] } {
  const tree = parser.parse(expr)
  const names: string[] = []
  const errors: string[] = []
  tree.iterate({
    enter(node) {
      if (node.type.isError)
        errors.push(`at ${node.from}: ${JSON.stringify(expr.slice(Math.max(0, node.from - 10), node.to + 10))}`)
      if (node.name === 'Identifier' && node.node.parent?.name === 'VectorSelector')
        names.push(expr.slice(node.from, node.to))
    },
  })
  return { names, errors }
}

const exported = new Map((await createMetrics().registry.getMetricsAsJSON()).map((m) => [m.name, String(m.type)]))

/** The exported series a selected name belongs to: histograms are queried by their `_bucket`, `_count`, `_sum`. */
function exportedSeries(name: string): string | undefined {
  if (exported.has(name)) return exported.get(name) === 'histogram' ? undefined : name
  const base = name.replace(/_(bucket|count|sum)$/, '')
  return base !== name && exported.get(base) === 'histogram' ? base : undefined
}

const alertRules = rules.groups.flatMap((g) => g.rules)
const dashboardExprs = dashboard.panels.flatMap((p) =>
  (p.targets ?? []).map((t) => ({ where: p.title, expr: expandGrafanaVariables(t.expr) })),
)

describe('the PromQL checker', () => {
  test('rejects broken expressions and unknown functions, so a pass means something', () => {
    for (const bad of [
      'rate(bff_http_requests_total[5m]',
      'sum by (route) bff_http_requests_total',
      'rte(bff_http_requests_total[5m])',
      'bff_http_requests_total{route=}',
    ]) {
      assert.ok(selectedMetrics(bad).errors.length > 0, `accepted: ${bad}`)
    }
    assert.deepEqual(
      selectedMetrics(
        'histogram_quantile(0.99, sum by (le) (rate(bff_idp_request_duration_seconds_bucket{job=~"$job"}[5m])))',
      ),
      { names: ['bff_idp_request_duration_seconds_bucket'], errors: [] },
    )
  })
})

describe('alert rules', () => {
  test('every rule is well formed and its expression parses', () => {
    assert.ok(rules.groups.length > 0)
    const names = new Set<string>()
    for (const rule of alertRules) {
      const name = String(rule.alert)
      assert.match(name, /^Bffgate[A-Z][A-Za-z]+$/, 'alert names are CamelCase and start with Bffgate')
      assert.ok(!names.has(name), `${name} twice`)
      names.add(name)
      assert.deepEqual(
        Object.keys(rule).filter((k) => !['alert', 'expr', 'for', 'labels', 'annotations'].includes(k)),
        [],
        name,
      )
      assert.match(String(rule.for), /^\d+[smh]$/, `${name}: for`)
      const labels = rule.labels as Record<string, string>
      assert.ok(['critical', 'warning', 'info'].includes(labels.severity!), `${name}: severity`)
      const annotations = rule.annotations as Record<string, string>
      assert.ok(annotations.summary && annotations.description, `${name}: summary and description`)
      // Go templates in annotations: balanced and only the variables Prometheus provides.
      for (const text of Object.values(annotations)) {
        for (const [, inner] of text.matchAll(/\{\{(.*?)\}\}/g))
          assert.match(
            inner!,
            /^\s*\$(value|labels\.[a-z_]+)(\s*\|\s*humanize(Percentage|Duration)?)?\s*$/,
            `${name}: template ${inner}`,
          )
        assert.equal(text.split('{{').length, text.split('}}').length, `${name}: unbalanced braces`)
      }
      const { errors } = selectedMetrics(String(rule.expr))
      assert.deepEqual(errors, [], `${name}: ${rule.expr}`)
    }
  })

  test('every series the rules query is one bffgate exports', () => {
    for (const rule of alertRules) {
      for (const name of selectedMetrics(String(rule.expr)).names) {
        assert.ok(exportedSeries(name) !== undefined, `${rule.alert} queries ${name}, which bffgate does not export`)
      }
    }
  })

  test('the rules cover refresh failures, teardown causes, IdP latency and errors, Redis errors, lock waits, 5xx and load shedding', () => {
    const queried = new Set(
      alertRules.flatMap((r) => selectedMetrics(String(r.expr)).names.map((n) => exportedSeries(n))),
    )
    for (const series of [
      'bff_token_exchanges_total',
      'bff_sessions_ended_total',
      'bff_idp_request_duration_seconds',
      'bff_redis_errors_total',
      'bff_refresh_lock_waits_total',
      'bff_http_requests_total',
      'bff_load_shed_total',
    ]) {
      assert.ok(queried.has(series), `no alert on ${series}`)
    }
  })
})

describe('Grafana dashboard', () => {
  test('every panel query parses, and every series it queries is one bffgate exports', () => {
    assert.equal(dashboard.uid, 'bffgate')
    assert.ok(dashboardExprs.length >= 15)
    for (const { where, expr } of dashboardExprs) {
      const { names, errors } = selectedMetrics(expr)
      assert.deepEqual(errors, [], `${where}: ${expr}`)
      assert.ok(names.length > 0, `${where}: selects nothing`)
      for (const name of names)
        assert.ok(exportedSeries(name) !== undefined, `${where} queries ${name}, which bffgate does not export`)
      assert.match(expr, /job=~"\$job"/, `${where}: not filtered by the job variable`)
    }
    const job = dashboard.templating.list.find((v) => v.name === 'job')
    const variableMetric = /^label_values\((\w+), job\)$/.exec(job?.definition ?? '')?.[1]
    assert.ok(
      variableMetric !== undefined && exported.has(variableMetric),
      'the job variable lists the jobs that export bffgate series',
    )
  })

  test('the dashboard shows every bff_ series bffgate exports', () => {
    const shown = new Set(
      dashboardExprs.flatMap(({ expr }) => selectedMetrics(expr).names.map((n) => exportedSeries(n))),
    )
    const missing = [...exported.keys()].filter((name) => name.startsWith('bff_') && !shown.has(name))
    assert.deepEqual(missing, [])
  })
})
