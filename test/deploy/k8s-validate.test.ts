/**
 * The manifest validator the chart check uses (scripts/deploy/k8s-validate.ts): a correct
 * Deployment passes, and each planted mistake is reported where it is.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { stringify } from 'yaml'
import { validateManifests } from '../../scripts/deploy/k8s-validate.ts'

interface TestDeployment {
  apiVersion: string
  kind: string
  metadata: Record<string, unknown>
  spec: {
    replicas: unknown
    selector?: unknown
    template: {
      metadata: { labels: Record<string, string> }
      containers?: unknown
      spec: {
        containers: Array<Record<string, unknown> & { ports: Array<Record<string, unknown>> }>
        volumes: unknown[]
      }
    }
  }
}

function deployment(): TestDeployment {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web', labels: { app: 'web' } },
    spec: {
      replicas: 2,
      selector: { matchLabels: { app: 'web' } },
      template: {
        metadata: { labels: { app: 'web' } },
        spec: {
          containers: [
            {
              name: 'web',
              image: 'bffgate:0.1.0',
              ports: [{ name: 'http', containerPort: 8080 }],
              resources: { limits: { memory: '256Mi' } },
              volumeMounts: [{ name: 'tmp', mountPath: '/tmp' }],
            },
          ],
          volumes: [{ name: 'tmp', emptyDir: {} }],
        },
      },
    },
  }
}

const service = {
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name: 'web' },
  spec: { selector: { app: 'web' }, ports: [{ port: 80, targetPort: 'http' }] },
}

async function errorsOf(...docs: unknown[]): Promise<string[]> {
  const result = await validateManifests(docs.map((d) => stringify(d)).join('---\n'))
  return result.errors.map((e) => `${e.resource} ${e.path}: ${e.message}`)
}

test('a correct Deployment and Service pass, checked against the schemas; a custom resource is counted as unchecked', async () => {
  const monitor = {
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'ServiceMonitor',
    metadata: { name: 'web' },
    spec: { endpoints: [] },
  }
  const result = await validateManifests([deployment(), service, monitor].map((d) => stringify(d)).join('---\n'))
  assert.deepEqual(result.errors, [])
  assert.deepEqual(result.checked, ['Deployment/web', 'Service/web'])
  assert.deepEqual(result.unchecked, ['monitoring.coreos.com/v1 ServiceMonitor/web'])
})

test('unknown fields are errors, at any depth: a misspelt key, a misindented block', async () => {
  const typo = deployment()
  const container = typo.spec.template.spec.containers[0]!
  container.resource = container.resources
  delete container.resources
  assert.deepEqual(await errorsOf(typo), ['Deployment/web spec.template.spec.containers[0].resource: unknown field'])
  const misindented = deployment()
  misindented.spec.template.containers = misindented.spec.template.spec.containers
  assert.deepEqual(await errorsOf(misindented), ['Deployment/web spec.template.containers: unknown field'])
  assert.deepEqual(await errorsOf({ ...service, metadata: { name: 'web', label: { a: 'b' } } }), [
    'Service/web metadata.label: unknown field',
  ])
})

test('schema errors: a wrong type, a missing required field, a value outside an enum', async () => {
  const wrongType = deployment()
  wrongType.spec.replicas = 'two'
  assert.ok((await errorsOf(wrongType)).some((e) => e.startsWith('Deployment/web spec.replicas: must be integer')))
  const noSelector = deployment()
  delete noSelector.spec.selector
  assert.ok((await errorsOf(noSelector)).some((e) => /spec: must have required property '?selector'?/.test(e)))
  const badPolicy = deployment()
  badPolicy.spec.template.spec.containers[0]!.imagePullPolicy = 'Sometimes'
  assert.ok(
    (await errorsOf(badPolicy)).some((e) =>
      /imagePullPolicy: must be equal to one of the allowed values \(Always, IfNotPresent, Never\)/.test(e),
    ),
  )
})

test('a selector that does not match the pod template, an undeclared volume, duplicate resources, YAML 1.1 booleans', async () => {
  const mismatch = deployment()
  mismatch.spec.template.metadata.labels = { app: 'other' }
  assert.deepEqual(await errorsOf(mismatch), [
    "Deployment/web spec.selector.matchLabels.app: selects app=web, but the pod template's labels have app=other",
  ])
  const volume = deployment()
  volume.spec.template.spec.volumes = []
  assert.deepEqual(await errorsOf(volume), [
    'Deployment/web spec.template.spec.containers[0].volumeMounts: mounts volume tmp, which the pod does not declare',
  ])
  assert.deepEqual(await errorsOf(service, service), [
    'Service/web metadata.name: Service/web in default is rendered twice',
  ])
  const yes = await validateManifests('apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  enabled: yes\n')
  assert.ok(
    yes.errors.some((e) => e.path === 'data.enabled'),
    'an unquoted yes is a boolean to Kubernetes, not a string',
  )
  const duplicateKey = await validateManifests('apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  name: d\n')
  assert.match(duplicateKey.errors[0]?.message ?? '', /unique|duplicate/i)
})
