/**
 * The Helm chart, rendered by the real helm for every ci/*-values.yaml scenario: lint, the
 * chart check (helm 3 and 4 alike, Kubernetes schema validation: scripts/deploy/chart-check.ts), and assertions on the
 * rendered manifests. Each scenario's pod is then read as the kubelet would start it, and its
 * environment and secret files are fed to bffgate's own configuration loader.
 */
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { before, test } from 'node:test'
import { parse as parseYaml } from 'yaml'
import { loadConfig } from '../../src/config/load.ts'
import type { Config } from '../../src/config/types.ts'
import { settings } from '../../src/config/schema.ts'
import {
  containerInput,
  ofKind,
  one,
  parseManifests,
  podSpec,
  renderedObjects,
  type Container,
  type ContainerInput,
  type Manifest,
  type Objects,
  type PodSpec,
} from '../../scripts/deploy/manifests.ts'
import { checkChart, describe, type ScenarioCheck } from '../../scripts/deploy/chart-check.ts'
import { findHelm, repoRoot, runAsync } from '../../scripts/deploy/tools.ts'

const chartDir = join(repoRoot, 'charts', 'bffgate')
const scenarios = readdirSync(join(chartDir, 'ci'))
  .filter((f) => f.endsWith('-values.yaml'))
  .sort()
const settingNames = new Set<string>(settings.map((s) => s.name))
const secretNames = new Set<string>(settings.filter((s) => 'secret' in s && s.secret).map((s) => s.name))
const release = 'gate'

/** Secrets and ConfigMaps the scenarios name but expect to exist already. */
const existing: Objects = new Map<string, Record<string, string>>([
  [
    'Secret/bffgate-credentials',
    {
      'auth0-client-secret': 'existing-client-secret',
      'cookie-secret': 'existing-session-secret-0123456789-abcdefghijklmnop',
    },
  ],
  ['Secret/redis', { 'redis-password': 'existing-redis-password' }],
  ['ConfigMap/spa-files', { 'index.html': '<!doctype html>' }],
])

let chartCheck: Promise<ScenarioCheck[]>

interface Rendered {
  manifests: Manifest[]
  deployment: Manifest
  pod: PodSpec
  container: Container
  input: ContainerInput
  /** bffgate's configuration from the pod's environment and files, or why it failed to load. */
  loaded: Config | Error
  values: Record<string, unknown>
}
const rendered = new Map<string, Rendered>()

async function template(args: readonly string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return runAsync(findHelm(), ['template', release, chartDir, '--namespace', 'bffgate', ...args])
}

async function render(args: readonly string[]): Promise<Manifest[]> {
  const result = await template(args)
  assert.equal(result.status, 0, `helm template ${args.join(' ')} failed:\n${result.stderr}`)
  return parseManifests(result.stdout)
}

/** As bffgate loads it. */
function load(input: ContainerInput): Config {
  return loadConfig(input.env, {
    readFile: (path) => {
      const content = input.files.get(path)
      if (content === undefined) throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' })
      return content
    },
  })
}

function scenario(name: string): Rendered & { config: Config } {
  const r = rendered.get(name)
  assert.ok(r, `${name} was not rendered`)
  const { loaded } = r
  if (loaded instanceof Error)
    assert.fail(`${name}: bffgate would not start with the rendered pod's configuration: ${loaded.message}`)
  return { ...r, config: loaded }
}

/** A scenario whose configuration may not load (for the checks that explain why it does not). */
function renderedScenario(name: string): Rendered {
  const r = rendered.get(name)
  assert.ok(r, `${name} was not rendered`)
  return r
}

before(async () => {
  findHelm()
  // The slowest check (two helm versions, schema validation): started first, awaited by its test.
  chartCheck = checkChart(chartDir, { release, namespace: 'bffgate' })
  await Promise.all(
    scenarios.map(async (file) => {
      const manifests = await render(['-f', join(chartDir, 'ci', file)])
      const deployment = one(manifests, 'Deployment')
      const pod = podSpec(deployment)
      const container = pod.containers[0]!
      const objects: Objects = new Map([...existing, ...renderedObjects(manifests)])
      const input = containerInput(pod, container, objects)
      const values = parseYaml(readFileSync(join(chartDir, 'ci', file), 'utf8')) as Record<string, unknown>
      let loaded: Config | Error
      try {
        loaded = load(input)
      } catch (err) {
        loaded = err as Error
      }
      rendered.set(file, { manifests, deployment, pod, container, input, loaded, values })
    }),
  )
})

test('helm lint --strict passes for every scenario', async () => {
  assert.ok(scenarios.length >= 6, `only ${scenarios.length} scenarios in charts/bffgate/ci`)
  const results = await Promise.all(
    scenarios.map((file) => runAsync(findHelm(), ['lint', chartDir, '--strict', '-f', join(chartDir, 'ci', file)])),
  )
  results.forEach((result, i) =>
    assert.equal(result.status, 0, `helm lint --strict -f ci/${scenarios[i]}:\n${result.stdout}${result.stderr}`),
  )
})

test('the chart check renders every scenario with helm 3 and 4 alike and validates it against the Kubernetes schemas', async () => {
  const checks = await chartCheck
  assert.deepEqual(
    checks.map((c) => c.values),
    scenarios,
  )
  const report = describe(checks)
  for (const check of checks) {
    assert.deepEqual(check.errors, [], report)
    assert.deepEqual(check.differences, [], report)
    assert.ok(
      check.checked >= 5,
      `${check.values}: only ${check.checked} resources checked against a schema\n${report}`,
    )
  }
})

test('every environment variable the chart sets is a bffgate setting or the _FILE form of a secret one; others come only from extraEnv or envFrom', () => {
  for (const file of scenarios) {
    const { input, values, manifests } = renderedScenario(file)
    const fromValues = new Set(((values.extraEnv ?? []) as Array<{ name: string }>).map((e) => e.name))
    const fromEnvFrom = new Set(
      ofKind(manifests, 'ConfigMap')
        .filter((c) => c.metadata.name !== one(manifests, 'Deployment').metadata.name)
        .flatMap((c) => Object.keys(c.data ?? {})),
    )
    for (const name of Object.keys(input.env)) {
      const known = settingNames.has(name) || (name.endsWith('_FILE') && secretNames.has(name.slice(0, -5)))
      if (name.startsWith('BFF_'))
        assert.ok(known, `${file}: the chart sets ${name}, which src/config/schema.ts does not declare`)
      else
        assert.ok(
          fromValues.has(name) || fromEnvFrom.has(name),
          `${file}: ${name} is set, but not by the scenario's extraEnv or envFrom`,
        )
    }
  }
})

test('the escape hatches reach the manifests: any extraEnv name, envFrom, init and sidecar containers, volumes, extraObjects through tpl, pod metadata, DNS, ServiceMonitor relabelings, ingress extra paths', () => {
  const { manifests, pod, container, input, deployment, config } = scenario('escape-hatches-values.yaml')
  assert.equal(input.env.NODE_EXTRA_CA_CERTS, '/etc/ssl/corp/ca.pem')
  assert.equal(input.env.HTTPS_PROXY, 'http://proxy.corp.example:3128')
  assert.equal(input.env.OTEL_SERVICE_NAME, `${release}-bffgate`, 'extraEnv is rendered with tpl')
  assert.equal(
    input.env.NO_PROXY,
    '.svc,.cluster.local,10.0.0.0/8',
    'envFrom reads the ConfigMap that extraObjects created',
  )
  assert.equal(config.logLevel, 'warn', 'a BFF_* extraEnv wins over the ConfigMap')
  assert.equal(input.files.get('/etc/ssl/corp/ca.pem'), '-----BEGIN CERTIFICATE-----', 'the extra volume is mounted')
  assert.deepEqual(
    container.envFrom?.map((e) => e.configMapRef?.name),
    [deployment.metadata.name, `${release}-proxy-env`],
  )
  const full = pod as PodSpec & {
    initContainers?: Container[]
    hostAliases?: unknown
    dnsConfig?: unknown
    priorityClassName?: string
  }
  assert.deepEqual(
    full.initContainers?.map((c) => [c.name, c.image]),
    [['wait-for-redis', container.image.replace(/@.*$/, '')]],
  )
  assert.deepEqual(
    pod.containers.map((c) => c.name),
    ['bffgate', 'log-shipper'],
  )
  assert.deepEqual(pod.containers[1]!.args, ['--source', 'bffgate'], 'sidecars are rendered with tpl')
  assert.deepEqual(full.hostAliases, [{ ip: '10.0.0.10', hostnames: ['login.example.com'] }])
  assert.deepEqual(full.dnsConfig, { options: [{ name: 'ndots', value: '2' }] })
  assert.equal(full.priorityClassName, 'business-critical')
  const podTemplate = podSpecTemplate(deployment)
  assert.equal(podTemplate.labels?.team, 'identity')
  assert.equal(podTemplate.annotations?.['sidecar.istio.io/inject'], 'false')
  assert.equal(deployment.metadata.annotations?.['reloader.stakater.com/auto'], 'true')
  assert.equal(deployment.spec.revisionHistoryLimit, 3)
  const corpCa = ofKind(manifests, 'ConfigMap').find((c) => c.metadata.name === 'corp-ca')
  assert.equal(
    corpCa?.metadata.labels?.['app.kubernetes.io/instance'],
    release,
    'a string extraObject is rendered with tpl',
  )
  assert.equal(mainService(manifests).metadata.labels?.exposure, 'internal')
  const ingress = one(manifests, 'Ingress')
  assert.equal(ingress.metadata.labels?.exposure, 'public')
  const paths = (
    ingress.spec as { rules: Array<{ http: { paths: Array<{ path: string }> } }> }
  ).rules[0]!.http.paths.map((p) => p.path)
  assert.deepEqual(paths, ['/maintenance', '/'], 'extra paths come first')
  const endpoint = (one(manifests, 'ServiceMonitor').spec.endpoints as Array<Record<string, unknown>>)[0]!
  assert.deepEqual(endpoint.relabelings, [{ sourceLabels: ['__meta_kubernetes_pod_node_name'], targetLabel: 'node' }])
  assert.deepEqual(endpoint.metricRelabelings, [
    { sourceLabels: ['__name__'], regex: 'nodejs_heap_space_.*', action: 'drop' },
  ])
})

test("every scenario's pod configuration passes bffgate's own configuration loader", () => {
  for (const file of scenarios) {
    const { config, values } = scenario(file)
    const frontends = values.frontends as Array<Record<string, unknown>> | undefined
    const wanted = (values.config as Record<string, unknown>).BFF_PUBLIC_URL ?? frontends?.[0]?.publicUrl
    assert.equal(config.publicUrl, wanted, file)
    assert.equal(config.port, 8080, file)
    assert.equal(config.session.store, 'redis', file)
    assert.ok(
      config.session.secrets.every((s) => s.length >= 32),
      file,
    )
  }
})

test('secrets reach the pod only as read-only files from a Secret, never as environment values or in the ConfigMap', () => {
  for (const file of scenarios) {
    const { input, container, manifests, deployment } = renderedScenario(file)
    assert.deepEqual(input.secretEnv, [], `${file}: environment values taken from a Secret`)
    const configMap = ofKind(manifests, 'ConfigMap').find((c) => c.metadata.name === deployment.metadata.name)!
    for (const name of Object.keys(configMap.data ?? {})) {
      assert.ok(
        !secretNames.has(name) || name === 'BFF_REDIS_URL',
        `${file}: secret setting ${name} is in the ConfigMap`,
      )
    }
    assert.doesNotMatch(configMap.data?.BFF_REDIS_URL ?? '', /@/, `${file}: Redis credentials in the ConfigMap`)
    for (const [name, path] of Object.entries(input.env).filter(([n]) => n.endsWith('_FILE'))) {
      assert.ok(input.files.has(path), `${file}: ${name} names ${path}, which no volume provides`)
      const mount = container.volumeMounts?.find((m) => path.startsWith(`${m.mountPath}/`))
      assert.equal(mount?.readOnly, true, `${file}: ${path} is on a writable mount`)
    }
    for (const secret of ofKind(manifests, 'Secret')) assert.equal(secret.type, 'Opaque')
  }
})

test('the pod runs restricted: non-root, read-only root filesystem, no capabilities, no privilege escalation, seccomp RuntimeDefault, no service-account token', () => {
  for (const file of scenarios) {
    const { pod, container } = renderedScenario(file)
    assert.equal(pod.securityContext?.runAsNonRoot, true, file)
    assert.deepEqual(pod.securityContext?.seccompProfile, { type: 'RuntimeDefault' }, file)
    const sc = container.securityContext ?? {}
    assert.equal(sc.runAsNonRoot, true, file)
    assert.notEqual(sc.runAsUser, 0, file)
    assert.equal(sc.readOnlyRootFilesystem, true, file)
    assert.equal(sc.allowPrivilegeEscalation, false, file)
    assert.deepEqual(sc.capabilities, { drop: ['ALL'] }, file)
    assert.equal(pod.automountServiceAccountToken, false, file)
    assert.ok(
      container.volumeMounts?.some((m) => m.mountPath === '/tmp'),
      `${file}: no writable /tmp`,
    )
  }
})

/** The Service the Ingress and the helm test use (not the headless `-metrics` one). */
function mainService(manifests: Manifest[]): Manifest {
  const services = ofKind(manifests, 'Service').filter(
    (s) =>
      s.metadata.labels?.['app.kubernetes.io/component'] !== 'metrics' &&
      s.metadata.labels?.['helm.sh/chart'] !== undefined,
  )
  assert.equal(services.length, 1)
  return services[0]!
}

test("liveness probes /healthz and readiness probes /readyz on the container's admin port", () => {
  for (const file of scenarios) {
    const { container, config } = scenario(file)
    assert.deepEqual(container.livenessProbe?.httpGet, { path: '/healthz', port: 'admin' }, file)
    assert.deepEqual(container.readinessProbe?.httpGet, { path: '/readyz', port: 'admin' }, file)
    assert.deepEqual(container.startupProbe?.httpGet, { path: '/healthz', port: 'admin' }, file)
    assert.deepEqual(container.ports?.find((p) => p.name === 'http')?.containerPort, config.port, file)
    assert.deepEqual(container.ports?.find((p) => p.name === 'admin')?.containerPort, config.admin.port, file)
    assert.equal(config.admin.port, 9090, file)
    assert.equal(config.admin.host, '0.0.0.0', `${file}: the kubelet and Prometheus reach the admin port at the pod IP`)
  }
})

test('the Service and the Ingress publish only the browser port; the ServiceMonitor scrapes the admin port through a headless Service of its own', () => {
  for (const file of scenarios) {
    const { manifests, values } = renderedScenario(file)
    const service = mainService(manifests)
    assert.deepEqual(
      (service.spec.ports as Array<{ targetPort: string }>).map((p) => p.targetPort),
      ['http'],
      file,
    )
    for (const ingress of ofKind(manifests, 'Ingress')) {
      for (const rule of (
        ingress.spec as {
          rules: Array<{ http: { paths: Array<{ backend: { service: { name: string; port: { name?: string } } } }> } }>
        }
      ).rules) {
        // ingress.extraPaths may route elsewhere; every path to this release goes to the browser port.
        for (const path of rule.http.paths.filter((p) => p.backend.service.name === service.metadata.name))
          assert.deepEqual(path.backend.service.port, { name: 'http' }, file)
        assert.ok(
          rule.http.paths.some((p) => p.backend.service.name === service.metadata.name),
          file,
        )
      }
    }
    const monitored = (values.serviceMonitor as { enabled?: boolean } | undefined)?.enabled === true
    const metrics = ofKind(manifests, 'Service').filter(
      (s) => s.metadata.labels?.['app.kubernetes.io/component'] === 'metrics',
    )
    assert.equal(metrics.length, monitored ? 1 : 0, file)
    if (!monitored) continue
    const monitor = one(manifests, 'ServiceMonitor')
    const selector = (monitor.spec.selector as { matchLabels: Record<string, string> }).matchLabels
    const selects = (s: Manifest) => Object.entries(selector).every(([k, v]) => s.metadata.labels?.[k] === v)
    assert.ok(
      selects(metrics[0]!) && !selects(service),
      `${file}: the ServiceMonitor must select the metrics Service only`,
    )
    assert.deepEqual(
      (metrics[0]!.spec.ports as Array<{ name: string; targetPort: string }>).map((p) => [p.name, p.targetPort]),
      [['admin', 'admin']],
    )
    assert.equal(metrics[0]!.spec.clusterIP, 'None')
  }
})

test("a change of a setting or of a secret changes the pod template's checksum annotations, so the pods roll", async () => {
  const base = ['-f', join(chartDir, 'ci', 'default-values.yaml')]
  const annotations = async (extra: string[]) =>
    podSpecTemplate(one(await render([...base, ...extra]), 'Deployment')).annotations ?? {}
  const [original, setting, secret, unrelated] = await Promise.all([
    annotations([]),
    annotations(['--set', 'config.BFF_LOG_LEVEL=debug']),
    annotations(['--set', 'secrets.clientSecret=rotated-client-secret']),
    annotations(['--set', 'replicaCount=3']),
  ])
  assert.match(original['checksum/config'] ?? '', /^[0-9a-f]{64}$/)
  assert.match(original['checksum/secret'] ?? '', /^[0-9a-f]{64}$/)
  assert.notEqual(setting['checksum/config'], original['checksum/config'])
  assert.equal(setting['checksum/secret'], original['checksum/secret'])
  assert.notEqual(secret['checksum/secret'], original['checksum/secret'])
  assert.deepEqual(unrelated, original)
})

function podSpecTemplate(deployment: Manifest): {
  annotations?: Record<string, string>
  labels?: Record<string, string>
} {
  return (
    deployment.spec.template as { metadata: { annotations?: Record<string, string>; labels?: Record<string, string> } }
  ).metadata
}

test("an existing Secret replaces the chart's Secret, and its keys are mounted under the names bffgate reads", () => {
  const { manifests, config, pod } = scenario('existing-secret-values.yaml')
  assert.deepEqual(ofKind(manifests, 'Secret'), [], 'the chart rendered a Secret although every secret exists already')
  const sources = pod.volumes?.find((v) => v.name === 'secrets')?.projected?.sources ?? []
  assert.deepEqual(
    sources.map((s) => s.secret?.name),
    ['bffgate-credentials', 'redis'],
  )
  assert.equal(config.oidc.clientSecret, 'existing-client-secret')
  assert.deepEqual(config.session.secrets, ['existing-session-secret-0123456789-abcdefghijklmnop'])
  assert.equal(config.redis.password, 'existing-redis-password')
  assert.equal(
    podSpecTemplate(scenario('existing-secret-values.yaml').deployment).annotations?.['checksum/secret'],
    undefined,
  )
})

test('Sentinel settings reach bffgate as its Sentinel variables, with both passwords from files', () => {
  const { config } = scenario('sentinel-values.yaml')
  assert.deepEqual(config.redis.sentinel, {
    nodes: [0, 1, 2].map((i) => ({ host: `redis-node-${i}.redis-headless.redis.svc.cluster.local`, port: 26379 })),
    masterName: 'mymaster',
    password: 'ci-sentinel-password',
  })
  assert.equal(config.redis.password, 'ci-redis-password')
  assert.equal(config.redis.cluster, undefined)
  assert.equal(new URL(config.redis.url).pathname, '/2')
})

test('Cluster settings reach bffgate as its Cluster variables, over TLS, and a password with special characters arrives unchanged', () => {
  const { config } = scenario('cluster-values.yaml')
  assert.deepEqual(
    config.redis.cluster?.nodes.map((n) => `${n.host}:${n.port}`),
    [0, 1, 2].map((i) => `redis-cluster-${i}.redis-cluster-headless:6379`),
  )
  assert.equal(config.redis.sentinel, undefined)
  assert.equal(new URL(config.redis.url).protocol, 'rediss:')
  assert.equal(config.redis.username, 'bffgate')
  assert.equal(config.redis.password, 'ci redis p@ss:w/rd+%')
  assert.equal(config.redis.keyPrefix, 'app1:')
})

test('the HorizontalPodAutoscaler exists only when enabled, and then the Deployment leaves the replica count to it', () => {
  for (const file of scenarios) {
    const { manifests, deployment, values } = renderedScenario(file)
    const enabled = (values.autoscaling as { enabled?: boolean } | undefined)?.enabled === true
    assert.equal(ofKind(manifests, 'HorizontalPodAutoscaler').length, enabled ? 1 : 0, file)
    assert.equal('replicas' in (deployment.spec ?? {}), !enabled, file)
  }
  const hpa = one(renderedScenario('hpa-values.yaml').manifests, 'HorizontalPodAutoscaler')
  assert.deepEqual(hpa.spec.scaleTargetRef, {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    name: renderedScenario('hpa-values.yaml').deployment.metadata.name,
  })
  assert.deepEqual(
    (hpa.spec.metrics as Array<{ resource: { name: string } }>).map((m) => m.resource.name),
    ['cpu', 'memory'],
  )
  assert.equal(hpa.spec.minReplicas, 3)
})

test("the PodDisruptionBudget exists only when enabled and selects exactly this release's pods", async () => {
  const disabled = await render([
    '-f',
    join(chartDir, 'ci', 'default-values.yaml'),
    '--set',
    'podDisruptionBudget.enabled=false',
  ])
  assert.deepEqual(ofKind(disabled, 'PodDisruptionBudget'), [])
  for (const file of scenarios) {
    const { manifests, deployment } = renderedScenario(file)
    const pdb = one(manifests, 'PodDisruptionBudget')
    assert.deepEqual(
      (pdb.spec.selector as { matchLabels: unknown }).matchLabels,
      (deployment.spec.selector as { matchLabels: unknown }).matchLabels,
      file,
    )
    assert.ok(!('minAvailable' in pdb.spec && 'maxUnavailable' in pdb.spec), file)
  }
  assert.equal(one(renderedScenario('hpa-values.yaml').manifests, 'PodDisruptionBudget').spec.minAvailable, 2)
  assert.equal(one(renderedScenario('default-values.yaml').manifests, 'PodDisruptionBudget').spec.maxUnavailable, 1)
})

test("the Ingress serves the public URL's host over TLS and routes to the Service's http port", () => {
  const { manifests, config } = scenario('ingress-tls-values.yaml')
  const ingress = one(manifests, 'Ingress')
  const host = new URL(config.publicUrl).host
  const spec = ingress.spec as {
    tls: Array<{ hosts: string[]; secretName: string }>
    rules: Array<{
      host: string
      http: { paths: Array<{ backend: { service: { name: string; port: { name: string } } } }> }
    }>
  }
  assert.deepEqual(
    spec.rules.map((r) => r.host),
    [host],
  )
  assert.ok(spec.tls.some((t) => t.hosts.includes(host) && t.secretName !== ''))
  const service = mainService(manifests)
  assert.deepEqual(spec.rules[0]!.http.paths[0]!.backend.service, {
    name: service.metadata.name,
    port: { name: 'http' },
  })
  for (const file of scenarios.filter((f) => f !== 'ingress-tls-values.yaml')) {
    const values = scenario(file).values as { ingress?: { enabled?: boolean } }
    if (values.ingress?.enabled !== true) assert.deepEqual(ofKind(scenario(file).manifests, 'Ingress'), [], file)
  }
})

test('ServiceMonitor, NetworkPolicy and HTTPRoute render only when enabled; the NetworkPolicy admits the helm test pod', () => {
  for (const file of scenarios) {
    const { manifests, values } = renderedScenario(file)
    for (const [key, kind] of [
      ['serviceMonitor', 'ServiceMonitor'],
      ['networkPolicy', 'NetworkPolicy'],
      ['httpRoute', 'HTTPRoute'],
      ['prometheusRule', 'PrometheusRule'],
    ] as const) {
      const enabled = (values[key] as { enabled?: boolean } | undefined)?.enabled === true
      assert.equal(ofKind(manifests, kind).length, enabled ? 1 : 0, `${file}: ${kind}`)
    }
  }
  const { manifests } = renderedScenario('ingress-tls-values.yaml')
  const monitor = one(manifests, 'ServiceMonitor')
  assert.deepEqual(
    (monitor.spec.endpoints as Array<{ port: string; path: string }>).map((e) => [e.port, e.path]),
    [['admin', '/metrics']],
  )
  const policy = one(manifests, 'NetworkPolicy')
  const from = (
    policy.spec.ingress as Array<{ from: Array<{ podSelector?: { matchLabels: Record<string, string> } }> }>
  )[0]!.from
  const testPod = ofKind(manifests, 'Pod')[0]!
  assert.ok(
    from.some(
      (peer) =>
        peer.podSelector &&
        Object.entries(peer.podSelector.matchLabels).every(([k, v]) => testPod.metadata.labels?.[k] === v),
    ),
  )
  const route = one(renderedScenario('private-key-httproute-values.yaml').manifests, 'HTTPRoute')
  const backend = (route.spec.rules as Array<{ backendRefs: Array<{ name: string }> }>)[0]!.backendRefs[0]!
  assert.equal(backend.name, mainService(renderedScenario('private-key-httproute-values.yaml').manifests).metadata.name)
})

test('the alert rules and the Grafana dashboard ship as a PrometheusRule and a sidecar-labelled ConfigMap, exactly as in charts/bffgate/files', () => {
  const { manifests } = renderedScenario('ingress-tls-values.yaml')
  const rules = parseYaml(readFileSync(join(chartDir, 'files', 'prometheus-rules.yaml'), 'utf8')) as {
    groups: unknown[]
  }
  const rule = one(manifests, 'PrometheusRule')
  assert.deepEqual(rule.spec.groups, rules.groups)
  assert.equal(rule.metadata.labels?.release, 'prometheus')
  const dashboards = ofKind(manifests, 'ConfigMap').filter((c) => c.metadata.labels?.grafana_dashboard === '1')
  assert.equal(dashboards.length, 1)
  assert.equal(dashboards[0]!.metadata.annotations?.grafana_folder, 'Gateways')
  assert.equal(
    dashboards[0]!.data?.['bffgate.json'],
    readFileSync(join(chartDir, 'files', 'grafana-dashboard.json'), 'utf8').trimEnd(),
  )
  for (const file of scenarios.filter((f) => f !== 'ingress-tls-values.yaml')) {
    assert.deepEqual(
      ofKind(renderedScenario(file).manifests, 'ConfigMap').filter(
        (c) => c.metadata.labels?.grafana_dashboard !== undefined,
      ),
      [],
      file,
    )
  }
})

test('private_key_jwt takes the private key from a file instead of a client secret, and numbers arrive as integers', () => {
  const { config, input } = scenario('private-key-httproute-values.yaml')
  assert.equal(config.oidc.tokenEndpointAuthMethod, 'private_key_jwt')
  assert.match(config.oidc.clientPrivateKey ?? '', /BEGIN PRIVATE KEY/)
  assert.equal(config.oidc.clientSecret, undefined)
  assert.equal(input.env.BFF_OIDC_CLIENT_SECRET_FILE, undefined)
  assert.equal(config.session.secrets.length, 2, 'a comma-separated session secret rotates')
  assert.equal(config.routes[0]?.token, 'optional')
  assert.equal(config.session.absoluteSeconds, 2592000, 'a large number must not reach bffgate as 2.592e+06')
  assert.equal(config.session.idleSeconds, 3600)
})

test('the helm test pod calls /healthz through the Service, restricted, with the bffgate image', () => {
  for (const file of scenarios) {
    const { manifests, container } = renderedScenario(file)
    const pods = ofKind(manifests, 'Pod')
    assert.equal(pods.length, 1, file)
    const testPod = pods[0]!
    assert.equal(testPod.metadata.annotations?.['helm.sh/hook'], 'test')
    const spec = podSpec(testPod)
    const probe = spec.containers[0]!
    assert.equal(probe.image, container.image, file)
    const service = mainService(manifests)
    const port = (service.spec.ports as Array<{ port: number }>)[0]!.port
    assert.ok(
      probe.command?.includes(`http://${service.metadata.name}:${port}/healthz`),
      `${file}: ${probe.command?.join(' ')}`,
    )
    assert.equal(spec.securityContext?.runAsNonRoot, true)
    assert.equal(probe.securityContext?.allowPrivilegeEscalation, false)
    assert.equal(probe.securityContext?.readOnlyRootFilesystem, true)
    assert.deepEqual(probe.securityContext?.capabilities, { drop: ['ALL'] })
  }
})

test("the pods spread over nodes and zones, and the image defaults to the chart's appVersion, which is package.json's version", () => {
  const chart = parseYaml(readFileSync(join(chartDir, 'Chart.yaml'), 'utf8')) as { appVersion: string }
  const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string }
  assert.equal(chart.appVersion, pkg.version)
  const { pod, container, deployment } = renderedScenario('default-values.yaml')
  assert.match(container.image, new RegExp(`:${chart.appVersion.replace(/\./g, '\\.')}$`))
  assert.match(renderedScenario('private-key-httproute-values.yaml').container.image, /@sha256:[0-9a-f]{64}$/)
  const selector = (deployment.spec.selector as { matchLabels: unknown }).matchLabels
  const keys = (pod.topologySpreadConstraints ?? []).map((c) => {
    assert.deepEqual((c.labelSelector as { matchLabels: unknown }).matchLabels, selector)
    return c.topologyKey
  })
  assert.deepEqual(keys, ['kubernetes.io/hostname', 'topology.kubernetes.io/zone'])
})

const badValues: Array<[string, string[], RegExp]> = [
  ['a replica count below one', ['--set', 'replicaCount=0'], /replicaCount/],
  ['an unknown pull policy', ['--set', 'image.pullPolicy=Sometimes'], /pullPolicy[\s\S]*IfNotPresent/],
  [
    'a misspelt setting',
    ['--set', 'config.BFF_SESION_SECRET=x'],
    /BFF_SESION_SECRET[\s\S]*not allowed|not allowed[\s\S]*BFF_SESION_SECRET/i,
  ],
  ['a secret setting under config', ['--set', 'config.BFF_SESSION_SECRET=x'], /BFF_SESSION_SECRET/],
  ['a plain-http public URL', ['--set', 'config.BFF_PUBLIC_URL=http://app.example.com'], /BFF_PUBLIC_URL/],
  [
    'a duration that is not a number',
    ['--set', 'config.BFF_SESSION_IDLE_SECONDS=soon'],
    /BFF_SESSION_IDLE_SECONDS[\s\S]*(integer|string)/,
  ],
  ['an unknown log level', ['--set', 'config.BFF_LOG_LEVEL=verbose'], /BFF_LOG_LEVEL[\s\S]*info/],
  ['a route without upstream', ['--set-json', 'config.BFF_ROUTES=[{"path":"/api"}]'], /BFF_ROUTES[\s\S]*upstream/],
  ['an unknown Redis mode', ['--set', 'redis.mode=replicated'], /redis[./]mode[\s\S]*sentinel/],
  ['a Redis URL with a password in it', ['--set', 'redis.url=redis://:pw@redis:6379'], /redis[./]url/],
  ['a sentinel without port', ['--set-json', 'redis.sentinel.nodes=["redis-sentinel"]'], /redis[./]sentinel[./]nodes/],
  ['a short session secret', ['--set', 'secrets.sessionSecret=short'], /sessionSecret/],
  [
    'an extra BFF_ variable that is no setting',
    ['--set', 'extraEnv[0].name=BFF_SESION_SECRET', '--set', 'extraEnv[0].value=x'],
    /extraEnv/,
  ],
  [
    'an extra variable whose name is no environment variable name',
    ['--set', 'extraEnv[0].name=A=B', '--set', 'extraEnv[0].value=x'],
    /extraEnv/,
  ],
  ['a misspelt top-level key', ['--set', 'replicas=3'], /replicas/],
  [
    'a disruption budget that is no number or percentage',
    ['--set', 'podDisruptionBudget.maxUnavailable=half'],
    /maxUnavailable/,
  ],
]

test('values.schema.json rejects bad values with a message that names the value', async () => {
  const base = ['-f', join(chartDir, 'ci', 'default-values.yaml')]
  const results = await Promise.all(badValues.map(([, args]) => template([...base, ...args])))
  results.forEach((result, i) => {
    const [what, args, message] = badValues[i]!
    assert.notEqual(result.status, 0, `${what} (${args.join(' ')}) was accepted`)
    assert.match(result.stderr, /schema/, `${what}: not rejected by values.schema.json:\n${result.stderr}`)
    assert.match(result.stderr, message, `${what}: unclear message:\n${result.stderr}`)
  })
})

const incomplete: Array<[string, string[], RegExp]> = [
  ['no public URL', ['--set', 'config.BFF_PUBLIC_URL='], /config\.BFF_PUBLIC_URL is required/],
  ['no issuer', ['--set', 'config.BFF_OIDC_ISSUER='], /config\.BFF_OIDC_ISSUER is required/],
  ['no session secret', ['--set', 'secrets.sessionSecret='], /secrets\.sessionSecret is required[\s\S]*openssl rand/],
  ['no client secret', ['--set', 'secrets.clientSecret='], /secrets\.clientSecret is required/],
  ['a client secret and a private key', ['--set', 'secrets.clientPrivateKey=k'], /both set/],
  [
    'private_key_jwt without a key',
    ['--set', 'config.BFF_OIDC_TOKEN_ENDPOINT_AUTH_METHOD=private_key_jwt'],
    /secrets\.clientPrivateKey/,
  ],
  ['Sentinel without sentinels', ['--set', 'redis.mode=sentinel'], /redis\.sentinel\.nodes/],
  ['Cluster without nodes', ['--set', 'redis.mode=cluster'], /redis\.cluster\.nodes/],
  ['the memory store with two replicas', ['--set', 'config.BFF_SESSION_STORE=memory'], /memory[\s\S]*replicaCount: 1/],
]

test('the templates refuse incomplete values with a message that says what to set', async () => {
  const base = ['-f', join(chartDir, 'ci', 'default-values.yaml')]
  const results = await Promise.all(incomplete.map(([, args]) => template([...base, ...args])))
  results.forEach((result, i) => {
    const [what, args, message] = incomplete[i]!
    assert.notEqual(result.status, 0, `${what} (${args.join(' ')}) was accepted`)
    assert.match(result.stderr, message, `${what}: unclear message:\n${result.stderr}`)
  })
  const memory = await template([...base, '--set', 'config.BFF_SESSION_STORE=memory', '--set', 'replicaCount=1'])
  assert.equal(memory.status, 0, `the memory store with one replica must render:\n${memory.stderr}`)
})

test('the notes name the URLs to register at the IdP', async () => {
  const result = await runAsync(findHelm(), [
    'install',
    release,
    chartDir,
    '--dry-run=client',
    '--namespace',
    'bffgate',
    '-f',
    join(chartDir, 'ci', 'ingress-tls-values.yaml'),
  ])
  assert.equal(result.status, 0, result.stderr)
  const notes = result.stdout.slice(result.stdout.indexOf('NOTES:'))
  for (const url of [
    'https://app.example.com/bff/callback',
    'https://app.example.com/bff/logged-out',
    'https://app.example.com/bff/backchannel-logout',
  ]) {
    assert.ok(notes.includes(url), `NOTES lack ${url}:\n${notes}`)
  }
  assert.doesNotMatch(notes, /WARNING/)
  const mismatch = await runAsync(findHelm(), [
    'install',
    release,
    chartDir,
    '--dry-run=client',
    '-f',
    join(chartDir, 'ci', 'ingress-tls-values.yaml'),
    '--set',
    'config.BFF_PUBLIC_URL=https://other.example.com',
  ])
  assert.match(
    mismatch.stdout,
    /WARNING: the host of config\.BFF_PUBLIC_URL \(other\.example\.com\) is not among ingress\.hosts/,
  )
})

test('issue 19: frontends render into a BFF_CONFIG file in a ConfigMap of their own, each client secret a file from a Secret', () => {
  const { config, input, manifests } = scenario('frontends-values.yaml')
  assert.deepEqual(
    config.frontends.map((f) => [f.name, f.oidc.clientId, f.oidc.redirectUri]),
    [
      ['shop', 'ci-shop-client-id', 'https://shop.example.com/bff/callback'],
      ['admin', 'ci-admin-client-id', 'https://www.example.com/admin/bff/callback'],
    ],
  )
  assert.equal(
    config.frontends[0]!.oidc.clientSecret,
    'existing-client-secret',
    "the shop's secret from its existing Secret",
  )
  assert.equal(config.frontends[1]!.oidc.clientSecret, 'ci-admin-client-secret', "the admin's from the chart's Secret")
  assert.equal(
    config.frontends[0]!.oidc.issuer,
    'https://example.eu.auth0.com/',
    'config.BFF_OIDC_ISSUER is the default',
  )
  assert.equal(config.frontends[1]!.oidc.issuer, 'https://admin.eu.auth0.com/')
  assert.equal(config.frontends[1]!.oidc.audience, 'https://api.example.com', 'config.BFF_OIDC_AUDIENCE is the default')
  assert.deepEqual(config.frontends[1]!.cookie, { name: '__Secure-bff-admin', path: '/admin' })
  assert.deepEqual(
    config.frontends[1]!.routes.map((r) => r.path),
    ['/admin/api'],
  )
  assert.equal(input.env.BFF_CONFIG, '/etc/bffgate/frontends/frontends.yaml')
  assert.equal(input.env.BFF_OIDC_CLIENT_SECRET_FILE, undefined, 'no single client beside the frontends')
  assert.equal(input.env.BFF_ROUTES, undefined, 'the default empty BFF_ROUTES is left out beside frontends')
  const frontendsMap = one(
    ofKind(manifests, 'ConfigMap').filter((c) => c.metadata.name === 'gate-bffgate-frontends'),
    'ConfigMap',
  )
  assert.doesNotMatch(
    JSON.stringify(frontendsMap.data),
    /ci-admin-client-secret|existing-client-secret/,
    'no secret in the ConfigMap',
  )
})

const badFrontends: Array<[string, string[], RegExp]> = [
  [
    'a frontend without a client id',
    ['--set', 'frontends[0].name=a', '--set', 'frontends[0].clientSecret=s'],
    /clientId/,
  ],
  [
    'a frontend name with capitals',
    ['--set', 'frontends[0].name=Shop', '--set', 'frontends[0].clientId=c', '--set', 'frontends[0].clientSecret=s'],
    /name/,
  ],
  [
    "a secret file path instead of the chart's own",
    ['--set', 'frontends[0].name=a', '--set', 'frontends[0].clientId=c', '--set', 'frontends[0].clientSecretFile=/x'],
    /clientSecretFile/,
  ],
]
const incompleteFrontends: Array<[string, string[], RegExp]> = [
  [
    'a client id beside frontends',
    ['--set', 'config.BFF_OIDC_CLIENT_ID=x'],
    /config\.BFF_OIDC_CLIENT_ID is set, but with frontends each frontend gives its own/,
  ],
  [
    'a single client secret beside frontends',
    ['--set', 'secrets.clientSecret=x'],
    /secrets\.clientSecret or secrets\.clientPrivateKey is set, but with frontends/,
  ],
  [
    'a frontend without a credential',
    ['--set', 'frontends[1].clientSecret='],
    /frontends\[1\] \(admin\): set clientSecret/,
  ],
  [
    'a frontend with an existing Secret and a secret',
    ['--set', 'frontends[0].clientSecret=x'],
    /frontends\[0\] \(shop\): existingSecret and a clientSecret/,
  ],
  ['a frontend name used twice', ['--set', 'frontends[1].name=shop'], /frontends\[1\]\.name shop is used twice/],
  [
    'no issuer for a frontend',
    ['--set', 'config.BFF_OIDC_ISSUER='],
    /frontends\[0\] \(shop\): set issuer, or config\.BFF_OIDC_ISSUER/,
  ],
]

test('issue 19: the values schema and the templates refuse incomplete frontends with a message that says what to set', async () => {
  const schemaResults = await Promise.all(
    badFrontends.map(([, args]) =>
      template([
        '-f',
        join(chartDir, 'ci', 'default-values.yaml'),
        '--set',
        'config.BFF_OIDC_CLIENT_ID=',
        '--set',
        'secrets.clientSecret=',
        ...args,
      ]),
    ),
  )
  schemaResults.forEach((result, i) => {
    const [what, , message] = badFrontends[i]!
    assert.notEqual(result.status, 0, `${what} was accepted`)
    assert.match(result.stderr, /schema/, `${what}: not rejected by values.schema.json:\n${result.stderr}`)
    assert.match(result.stderr, message, `${what}: unclear message:\n${result.stderr}`)
  })
  const base = ['-f', join(chartDir, 'ci', 'frontends-values.yaml')]
  const results = await Promise.all(incompleteFrontends.map(([, args]) => template([...base, ...args])))
  results.forEach((result, i) => {
    const [what, , message] = incompleteFrontends[i]!
    assert.notEqual(result.status, 0, `${what} was accepted`)
    assert.match(result.stderr, message, `${what}: unclear message:\n${result.stderr}`)
  })
})
