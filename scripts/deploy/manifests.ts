/**
 * Rendered Kubernetes manifests, read the way the kubelet would use them: which environment
 * and which files the bffgate container gets from its ConfigMap, Secrets and volumes. Lets
 * tests feed a rendered chart to bffgate's own configuration loader.
 */
import { parseAllDocuments } from 'yaml'

export interface Manifest {
  apiVersion: string
  kind: string
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> }
  /** Absent on ConfigMaps and Secrets; typed as present for the workloads tests read. */
  spec: Record<string, unknown>
  data?: Record<string, string>
  [key: string]: unknown
}

/** Parses `helm template` output with YAML 1.1 rules, as Kubernetes does. */
export function parseManifests(text: string): Manifest[] {
  return parseAllDocuments(text, { version: '1.1' })
    .map((doc) => {
      if (doc.errors.length > 0) throw new Error(`rendered YAML does not parse: ${doc.errors[0]!.message}`)
      return doc.toJS() as Manifest | null
    })
    .filter((m): m is Manifest => m !== null)
}

export function ofKind(manifests: readonly Manifest[], kind: string): Manifest[] {
  return manifests.filter((m) => m.kind === kind)
}

export function one(manifests: readonly Manifest[], kind: string): Manifest {
  const found = ofKind(manifests, kind)
  if (found.length !== 1) throw new Error(`expected one ${kind}, rendered ${found.length}`)
  return found[0]!
}

export interface EnvVar {
  name: string
  value?: string
  valueFrom?: {
    secretKeyRef?: { name: string; key: string; optional?: boolean }
    configMapKeyRef?: { name: string; key: string; optional?: boolean }
  }
}
export interface KeyToPath {
  key: string
  path: string
}
export interface Volume {
  name: string
  secret?: { secretName: string; items?: KeyToPath[] }
  configMap?: { name: string; items?: KeyToPath[] }
  projected?: {
    defaultMode?: number
    sources: Array<{
      secret?: { name: string; items?: KeyToPath[] }
      configMap?: { name: string; items?: KeyToPath[] }
    }>
  }
  emptyDir?: Record<string, unknown>
}
export interface Container {
  name: string
  image: string
  env?: EnvVar[]
  envFrom?: Array<{ configMapRef?: { name: string }; secretRef?: { name: string } }>
  volumeMounts?: Array<{ name: string; mountPath: string; readOnly?: boolean }>
  securityContext?: Record<string, unknown>
  livenessProbe?: { httpGet?: { path: string; port: string | number } }
  readinessProbe?: { httpGet?: { path: string; port: string | number } }
  startupProbe?: { httpGet?: { path: string; port: string | number } }
  ports?: Array<{ name: string; containerPort: number }>
  command?: string[]
  args?: string[]
}
export interface PodSpec {
  containers: Container[]
  volumes?: Volume[]
  securityContext?: Record<string, unknown>
  automountServiceAccountToken?: boolean
  serviceAccountName?: string
  topologySpreadConstraints?: Array<Record<string, unknown>>
}

export function podSpec(workload: Manifest): PodSpec {
  const spec =
    workload.kind === 'Pod' ? workload.spec : (workload.spec?.template as { spec: PodSpec } | undefined)?.spec
  if (spec === undefined) throw new Error(`${workload.kind} ${workload.metadata.name} has no pod spec`)
  return spec as PodSpec
}

/** Key → value of every Secret and ConfigMap: rendered ones and the ones a test says exist. */
export type Objects = Map<string, Record<string, string>>

/** The rendered ConfigMaps (`ConfigMap/<name>`) and Secrets (`Secret/<name>`, base64-decoded). */
export function renderedObjects(manifests: readonly Manifest[]): Objects {
  const objects: Objects = new Map()
  for (const m of manifests) {
    if (m.kind === 'ConfigMap') objects.set(`ConfigMap/${m.metadata.name}`, { ...m.data })
    if (m.kind === 'Secret') {
      objects.set(
        `Secret/${m.metadata.name}`,
        Object.fromEntries(
          Object.entries(m.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]),
        ),
      )
    }
  }
  return objects
}

function lookup(objects: Objects, kind: 'Secret' | 'ConfigMap', name: string, key: string): string {
  const object = objects.get(`${kind}/${name}`)
  if (object === undefined)
    throw new Error(`the pod refers to ${kind} ${name}, which neither the chart renders nor the test provides`)
  const value = object[key]
  if (value === undefined) throw new Error(`the pod refers to key ${key} of ${kind} ${name}, which it does not have`)
  return value
}

export interface ContainerInput {
  /** The environment, as the process sees it. */
  env: Record<string, string>
  /** Files from Secret and ConfigMap volumes, by absolute path. */
  files: Map<string, string>
  /** Names of variables whose value came from a Secret (they should not exist: secrets are files). */
  secretEnv: string[]
}

/** What a container gets from `envFrom`, `env` and its Secret/ConfigMap volumes. */
export function containerInput(pod: PodSpec, container: Container, objects: Objects): ContainerInput {
  const env: Record<string, string> = {}
  const secretEnv: string[] = []
  for (const from of container.envFrom ?? []) {
    if (from.configMapRef) {
      const data = objects.get(`ConfigMap/${from.configMapRef.name}`)
      if (data === undefined)
        throw new Error(`envFrom names ConfigMap ${from.configMapRef.name}, which is not rendered`)
      Object.assign(env, data)
    }
    if (from.secretRef) {
      const data = objects.get(`Secret/${from.secretRef.name}`) ?? {}
      Object.assign(env, data)
      secretEnv.push(...Object.keys(data))
    }
  }
  for (const variable of container.env ?? []) {
    if (variable.value !== undefined) env[variable.name] = variable.value
    else if (variable.valueFrom?.secretKeyRef) {
      env[variable.name] = lookup(
        objects,
        'Secret',
        variable.valueFrom.secretKeyRef.name,
        variable.valueFrom.secretKeyRef.key,
      )
      secretEnv.push(variable.name)
    } else if (variable.valueFrom?.configMapKeyRef) {
      env[variable.name] = lookup(
        objects,
        'ConfigMap',
        variable.valueFrom.configMapKeyRef.name,
        variable.valueFrom.configMapKeyRef.key,
      )
    } else {
      throw new Error(`environment variable ${variable.name} has no value this reader understands`)
    }
  }
  const files = new Map<string, string>()
  const volumes = new Map((pod.volumes ?? []).map((v) => [v.name, v]))
  for (const mount of container.volumeMounts ?? []) {
    const volume = volumes.get(mount.name)
    if (volume === undefined) throw new Error(`volume mount ${mount.name} names no volume`)
    const sources = volume.projected?.sources ?? [
      ...(volume.secret ? [{ secret: { name: volume.secret.secretName, items: volume.secret.items } }] : []),
      ...(volume.configMap ? [{ configMap: volume.configMap }] : []),
    ]
    for (const source of sources) {
      const kind = source.secret ? 'Secret' : 'ConfigMap'
      const ref = (source.secret ?? source.configMap)!
      const data = objects.get(`${kind}/${ref.name}`)
      const items = ref.items ?? Object.keys(data ?? {}).map((key) => ({ key, path: key }))
      for (const item of items)
        files.set(`${mount.mountPath.replace(/\/$/, '')}/${item.path}`, lookup(objects, kind, ref.name, item.key))
    }
  }
  return { env, files, secretEnv }
}
