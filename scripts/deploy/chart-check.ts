/**
 * Renders a chart once per `ci/*-values.yaml` (as chart-testing does) with the pinned helm 4
 * and helm 3, checks that both render the same resources, and validates helm 4's render
 * against the Kubernetes schemas (scripts/deploy/k8s-validate.ts).
 */
import { isDeepStrictEqual } from 'node:util'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { parseAllDocuments } from 'yaml'
import { helmReleases, installHelm } from './helm.ts'
import { formatFindings, validateManifests, type Finding } from './k8s-validate.ts'
import { runAsync } from './tools.ts'

/** The cluster version the templates see, the same for both helms (their defaults differ: 1.35 and 1.32). */
export const kubeVersion = '1.33.0'

export interface ScenarioCheck {
  values: string
  errors: Finding[]
  /** Resources helm 3 and helm 4 render differently (or only one of them renders). */
  differences: string[]
  checked: number
  unchecked: string[]
}

function byIdentity(yamlText: string): Map<string, unknown> {
  const docs = new Map<string, unknown>()
  for (const document of parseAllDocuments(yamlText)) {
    const doc = document.toJS() as { kind?: string; metadata?: { name?: string; namespace?: string } } | null
    if (doc === null) continue
    docs.set(`${doc.kind}/${doc.metadata?.namespace ?? ''}/${doc.metadata?.name}`, doc)
  }
  return docs
}

export async function checkChart(
  chartDir: string,
  options: { release: string; namespace: string },
): Promise<ScenarioCheck[]> {
  const helm4 = installHelm(helmReleases[4])
  const helm3 = installHelm(helmReleases[3])
  const files = readdirSync(join(chartDir, 'ci'))
    .filter((f) => f.endsWith('-values.yaml'))
    .sort()
  return Promise.all(
    files.map(async (values) => {
      const args = [
        'template',
        options.release,
        chartDir,
        '--namespace',
        options.namespace,
        '--kube-version',
        kubeVersion,
        '-f',
        join(chartDir, 'ci', values),
      ]
      const [four, three] = await Promise.all([runAsync(helm4, args), runAsync(helm3, args)])
      const check: ScenarioCheck = { values, errors: [], differences: [], checked: 0, unchecked: [] }
      for (const [name, result] of [
        ['helm 4', four],
        ['helm 3', three],
      ] as const) {
        if (result.status !== 0)
          check.errors.push({ resource: values, path: '', message: `${name} template failed: ${result.stderr.trim()}` })
      }
      if (check.errors.length > 0) return check
      const a = byIdentity(four.stdout)
      const b = byIdentity(three.stdout)
      for (const key of new Set([...a.keys(), ...b.keys()])) {
        if (!isDeepStrictEqual(a.get(key), b.get(key))) check.differences.push(key)
      }
      const validation = await validateManifests(four.stdout, options.namespace)
      check.errors.push(...validation.errors)
      check.checked = validation.checked.length
      check.unchecked = validation.unchecked
      return check
    }),
  )
}

export function describe(checks: readonly ScenarioCheck[]): string {
  return checks
    .map((c) =>
      [
        `${c.values}: ${c.checked} resources checked against the Kubernetes schemas${c.unchecked.length > 0 ? `; no schema for ${c.unchecked.join(', ')}` : ''}`,
        ...(c.differences.length > 0 ? [`  helm 3 and helm 4 differ on ${c.differences.join(', ')}`] : []),
        ...(c.errors.length > 0 ? [formatFindings(c.errors).replace(/^/gm, '  ')] : []),
      ].join('\n'),
    )
    .join('\n')
}
