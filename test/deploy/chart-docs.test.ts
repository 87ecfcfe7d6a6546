import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'
import { parse as parseYaml } from 'yaml'
import { settings } from '../../src/config/schema.ts'
import {
  chartManagedSettings,
  outdatedFiles,
  readParams,
  renderConfigSchema,
  valuesFile,
  valuesSchemaFile,
} from '../../scripts/generate-chart-docs.ts'

const valuesText = readFileSync(valuesFile, 'utf8')

/** Dotted paths of the leaves of values.yaml (`config` counts as one: its keys are the schema's). */
function leaves(node: unknown, prefix = ''): string[] {
  if (
    node === null ||
    typeof node !== 'object' ||
    Array.isArray(node) ||
    Object.keys(node).length === 0 ||
    prefix === 'config'
  )
    return [prefix]
  return Object.entries(node).flatMap(([key, value]) => leaves(value, prefix === '' ? key : `${prefix}.${key}`))
}

test('values.schema.json and the chart README are generated from the configuration schema and values.yaml, and up to date', () => {
  const outdated = outdatedFiles().map(({ file }) => file.pathname.split('/').slice(-2).join('/'))
  assert.deepEqual(outdated, [], 'run `node scripts/generate-chart-docs.ts`')
})

test("every bffgate setting is settable through the chart: under config, or from the chart's own secret and Redis values", () => {
  const config = Object.keys(renderConfigSchema().properties as Record<string, unknown>)
  for (const spec of settings) {
    const placed = config.includes(spec.name) || spec.name in chartManagedSettings
    assert.ok(placed, `${spec.name} cannot be set through the chart`)
    assert.ok(
      !(config.includes(spec.name) && 'secret' in spec && spec.secret),
      `secret ${spec.name} would land in the ConfigMap`,
    )
  }
  const names = new Set<string>(settings.map((s) => s.name))
  for (const name of Object.keys(chartManagedSettings))
    assert.ok(names.has(name), `chartManagedSettings names ${name}, which the schema no longer has`)
  const schema = JSON.parse(readFileSync(valuesSchemaFile, 'utf8')) as {
    properties: { config: { additionalProperties: boolean } }
  }
  assert.equal(schema.properties.config.additionalProperties, false, 'a misspelt setting must be refused')
})

test('every value of values.yaml has an @param comment, and every @param names a value', () => {
  const documented = readParams(valuesText).flatMap((b) => b.params.map((p) => p.path))
  const values = leaves(parseYaml(valuesText))
  const missing = values.filter((path) => !documented.some((d) => path === d || path.startsWith(`${d}.`)))
  assert.deepEqual(missing, [], 'values without a `## @param` comment in values.yaml')
  const stale = documented.filter((d) => !values.some((path) => path === d || path.startsWith(`${d}.`)))
  assert.deepEqual(stale, [], '`## @param` comments naming no value')
  assert.equal(new Set(documented).size, documented.length, 'a value is documented twice')
})
