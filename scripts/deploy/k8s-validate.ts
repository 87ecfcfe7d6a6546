/**
 * Validates rendered Kubernetes manifests offline, as the API server would reject them:
 *
 * - each document parses the way Kubernetes reads YAML (YAML 1.1: `on`/`yes` are booleans;
 *   duplicate keys are errors) and has apiVersion, kind and metadata.name; no two resources
 *   share kind, namespace and name;
 * - built-in kinds against the Kubernetes OpenAPI schemas compiled by `kubernetes-models`
 *   (types, enums, required fields, formats), and unknown fields as the API server's strict
 *   field validation reports them (a typo such as `resource:` or a misindented block). The
 *   compiled validators accept extra properties, so unknown fields are found by walking the
 *   object against the property lists of the package's `.d.ts` files;
 * - workloads: a selector that matches the pod template's labels, containers with unique
 *   names and an image, volume mounts that name a declared volume.
 *
 * Custom resources (ServiceMonitor, HTTPRoute) have no schema here: they are counted as
 * unchecked, and the chart tests assert on them directly.
 */
import { existsSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { parseAllDocuments } from 'yaml'

export interface Finding {
  resource: string
  path: string
  message: string
}
export interface Validation {
  errors: Finding[]
  /** Resources checked against a Kubernetes schema. */
  checked: string[]
  /** Resources of kinds without a schema here (custom resources). */
  unchecked: string[]
}

const require = createRequire(import.meta.url)
const modelsDir = dirname(require.resolve('kubernetes-models/package.json'))
const nodeModules = resolve(modelsDir, '..')

// ---------------------------------------------------------------- the property lists (.d.ts)

type Shape = { kind: 'leaf' } | { kind: 'array' | 'map'; of: Shape } | { kind: 'ref'; file: string; name: string }
interface Interface {
  props: Map<string, string>
  open: boolean
}
interface Declarations {
  file: string
  imports: Map<string, string>
  interfaces: Map<string, Interface>
  aliases: Set<string>
}

const declarations = new Map<string, Declarations>()

/** Splits at `separator` outside brackets. */
function splitTop(text: string, separator: string): string[] {
  const parts: string[] = []
  let depth = 0
  let current = ''
  for (const ch of text) {
    if ('{<(['.includes(ch)) depth++
    else if ('}>)]'.includes(ch)) depth--
    if (ch === separator && depth === 0) {
      parts.push(current)
      current = ''
    } else current += ch
  }
  if (current.trim() !== '') parts.push(current)
  return parts
}

function read(file: string): Declarations {
  const cached = declarations.get(file)
  if (cached !== undefined) return cached
  const found: Declarations = { file, imports: new Map(), interfaces: new Map(), aliases: new Set() }
  declarations.set(file, found)
  if (!existsSync(file)) return found
  const source = readFileSync(file, 'utf8')
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/^\s*\/\/.*$/gm, '')
  for (const m of source.matchAll(/^import\s*\{([^}]*)\}\s*from\s*"([^"]+)";/gm)) {
    for (const name of m[1]!
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)) {
      const [original, alias] = name.split(/\s+as\s+/)
      found.imports.set((alias ?? original!).trim(), m[2]!)
    }
  }
  for (const m of source.matchAll(/^export type (\w+)\s*=/gm)) found.aliases.add(m[1]!)
  const header = /^export interface (\w+)(?:\s+extends\s+[\w, ]+)?\s*\{/gm
  for (let m = header.exec(source); m !== null; m = header.exec(source)) {
    let i = header.lastIndex
    let depth = 1
    while (i < source.length && depth > 0) {
      if (source[i] === '{') depth++
      else if (source[i] === '}') depth--
      i++
    }
    const props = new Map<string, string>()
    let open = false
    for (const member of splitTop(source.slice(header.lastIndex, i - 1), ';')) {
      if (member.trim().startsWith('[')) {
        open = true
        continue
      }
      const p = /^"?([^"?:]+)"?\??\s*:\s*([\s\S]+)$/.exec(member.trim())
      if (p) props.set(p[1]!, p[2]!.trim())
    }
    found.interfaces.set(m[1]!, { props, open })
  }
  // `export type { IObjectMeta as IIoK8sApimachineryPkgApisMetaV1ObjectMeta, ... }`
  for (const m of source.matchAll(/export type \{([^}]*)\}/g)) {
    for (const part of m[1]!.split(',')) {
      const [original, alias] = part.split(/\s+as\s+/).map((s) => s.trim())
      const declared = original === undefined ? undefined : found.interfaces.get(original)
      if (alias !== undefined && declared !== undefined) found.interfaces.set(alias, declared)
    }
  }
  return found
}

function resolveImport(from: string, specifier: string): string {
  const base = specifier.startsWith('.') ? resolve(dirname(from), specifier) : join(nodeModules, specifier)
  return `${base.replace(/\.js$/, '')}.d.ts`
}

function classify(type: string, context: Declarations): Shape {
  const t = type.trim().replace(/;$/, '').trim()
  const array = /^Array<([\s\S]+)>$/.exec(t)
  if (array) return { kind: 'array', of: classify(array[1]!, context) }
  const map = /^\{\s*\[key: string\]:\s*([\s\S]+?);?\s*\}$/.exec(t)
  if (map) return { kind: 'map', of: classify(map[1]!, context) }
  const union = splitTop(t, '|')
  if (union.length > 1) {
    const structured = union.map((u) => classify(u, context)).filter((s) => s.kind !== 'leaf')
    return structured.length === 1 ? structured[0]! : { kind: 'leaf' }
  }
  if (/^\w+$/.test(t)) {
    if (context.interfaces.has(t)) return { kind: 'ref', file: context.file, name: t }
    const specifier = context.imports.get(t)
    if (specifier !== undefined) return { kind: 'ref', file: resolveImport(context.file, specifier), name: t }
  }
  return { kind: 'leaf' }
}

function lookup(file: string, name: string): { context: Declarations; iface: Interface } | undefined {
  const context = read(file)
  const iface = context.interfaces.get(name)
  if (iface !== undefined) return { context, iface }
  if (context.aliases.has(name)) return undefined // IntOrString, Quantity, Time: leaves
  const first = context.interfaces.values().next()
  return first.done === true ? undefined : { context, iface: first.value }
}

function unknownFields(value: unknown, shape: Shape, where: string, out: string[]): void {
  if (value === null || value === undefined) return
  if (shape.kind === 'array') {
    if (Array.isArray(value)) value.forEach((v, i) => unknownFields(v, shape.of, `${where}[${i}]`, out))
    return
  }
  if (shape.kind === 'map') {
    if (typeof value === 'object' && !Array.isArray(value))
      for (const [k, v] of Object.entries(value)) unknownFields(v, shape.of, `${where}.${k}`, out)
    return
  }
  if (shape.kind !== 'ref' || typeof value !== 'object' || Array.isArray(value)) return // type errors: the schema pass
  const found = lookup(shape.file, shape.name)
  // Open maps and opaque types (RawExtension, JSON) have no property list.
  if (found === undefined || found.iface.open || found.iface.props.size === 0) return
  for (const [key, child] of Object.entries(value)) {
    const path = where === '' ? key : `${where}.${key}`
    const type = found.iface.props.get(key)
    if (type === undefined) out.push(path)
    else unknownFields(child, classify(type, found.context), path, out)
  }
}

// ---------------------------------------------------------------- the compiled schemas

interface Model {
  new (data: unknown): { validate(): void }
  apiVersion: string
  kind: string
}
const models = new Map<string, Model | undefined>()

/** kubernetes-models/<group/version>/<Kind>.js, e.g. apps/v1/Deployment.js, v1/Service.js. */
function modelFile(apiVersion: string, kind: string, ext: 'js' | 'd.ts'): string | undefined {
  if (!/^([a-z0-9.-]+\/)?v[0-9a-z]+$/.test(apiVersion) || !/^[A-Z][A-Za-z0-9]*$/.test(kind)) return undefined
  const file = join(modelsDir, apiVersion, `${kind}.${ext}`)
  return existsSync(file) ? file : undefined
}

async function model(apiVersion: string, kind: string): Promise<Model | undefined> {
  const key = `${apiVersion}/${kind}`
  if (!models.has(key)) {
    const file = modelFile(apiVersion, kind, 'js')
    const loaded =
      file === undefined ? undefined : ((await import(pathToFileURL(file).href)) as Record<string, Model>)[kind]
    // The file must describe exactly this apiVersion and kind (no case-insensitive file system match).
    models.set(key, loaded?.apiVersion === apiVersion && loaded.kind === kind ? loaded : undefined)
  }
  return models.get(key)
}

interface AjvError {
  instancePath: string
  message?: string
  keyword: string
  params?: { allowedValues?: unknown[] }
}

function schemaErrors(err: unknown): Array<{ path: string; message: string }> {
  const list = (err as { errors?: AjvError[] }).errors
  if (!Array.isArray(list) || list.length === 0) return [{ path: '', message: String((err as Error).message ?? err) }]
  return list.map((e) => ({
    path: e.instancePath
      .replace(/^\//, '')
      .replace(/\/(\d+)(?=\/|$)/g, '[$1]')
      .replace(/\//g, '.'),
    message: `${e.message ?? e.keyword}${e.params?.allowedValues ? ` (${e.params.allowedValues.join(', ')})` : ''}`,
  }))
}

// ---------------------------------------------------------------- workloads

type Obj = Record<string, unknown>
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v)

function podTemplate(doc: Obj): { selector?: Obj; labels: Obj; pod: Obj } | undefined {
  const spec = isObj(doc.spec) ? doc.spec : undefined
  if (doc.kind === 'Pod') return { labels: {}, pod: spec ?? {} }
  if (doc.kind === 'CronJob') {
    const job = isObj(spec?.jobTemplate) && isObj(spec.jobTemplate.spec) ? spec.jobTemplate.spec : undefined
    const template = isObj(job?.template) ? job.template : {}
    return { labels: {}, pod: isObj(template.spec) ? template.spec : {} }
  }
  if (
    !['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'Job'].includes(String(doc.kind)) ||
    !isObj(spec?.template)
  )
    return undefined
  const meta = isObj(spec.template.metadata) ? spec.template.metadata : {}
  return {
    ...(isObj(spec.selector) && { selector: spec.selector }),
    labels: isObj(meta.labels) ? meta.labels : {},
    pod: isObj(spec.template.spec) ? spec.template.spec : {},
  }
}

function workloadErrors(doc: Obj): Array<{ path: string; message: string }> {
  const found = podTemplate(doc)
  if (found === undefined) return []
  const errors: Array<{ path: string; message: string }> = []
  const { selector, labels, pod } = found
  if (selector !== undefined) {
    const matchLabels = isObj(selector.matchLabels) ? selector.matchLabels : {}
    for (const [k, v] of Object.entries(matchLabels)) {
      if (labels[k] !== v)
        errors.push({
          path: `spec.selector.matchLabels.${k}`,
          message: `selects ${k}=${String(v)}, but the pod template's labels have ${k}=${String(labels[k])}`,
        })
    }
    const expressions = Array.isArray(selector.matchExpressions) ? (selector.matchExpressions as Obj[]) : []
    if (Object.keys(matchLabels).length === 0 && expressions.length === 0)
      errors.push({ path: 'spec.selector', message: 'an empty selector' })
  }
  const containers = Array.isArray(pod.containers) ? (pod.containers as Obj[]) : []
  if (containers.length === 0) errors.push({ path: 'spec.template.spec.containers', message: 'no containers' })
  const volumes = new Set((Array.isArray(pod.volumes) ? (pod.volumes as Obj[]) : []).map((v) => v.name))
  const names = new Set<unknown>()
  for (const [group, list] of [
    ['initContainers', pod.initContainers],
    ['containers', pod.containers],
  ] as const) {
    for (const [i, c] of (Array.isArray(list) ? (list as Obj[]) : []).entries()) {
      const where = `spec.template.spec.${group}[${i}]`
      if (names.has(c.name))
        errors.push({ path: `${where}.name`, message: `duplicate container name ${String(c.name)}` })
      names.add(c.name)
      if (typeof c.image !== 'string' || c.image === '') errors.push({ path: `${where}.image`, message: 'no image' })
      for (const mount of Array.isArray(c.volumeMounts) ? (c.volumeMounts as Obj[]) : []) {
        if (!volumes.has(mount.name))
          errors.push({
            path: `${where}.volumeMounts`,
            message: `mounts volume ${String(mount.name)}, which the pod does not declare`,
          })
      }
    }
  }
  return errors
}

// ---------------------------------------------------------------- the whole render

/** Validates the multi-document YAML that `helm template` printed. */
export async function validateManifests(yamlText: string, defaultNamespace = 'default'): Promise<Validation> {
  const result: Validation = { errors: [], checked: [], unchecked: [] }
  const seen = new Set<string>()
  for (const [index, document] of parseAllDocuments(yamlText, { version: '1.1', uniqueKeys: true }).entries()) {
    const at = `document ${index + 1}`
    if (document.errors.length > 0) {
      for (const e of document.errors) result.errors.push({ resource: at, path: '', message: e.message })
      continue
    }
    const doc: unknown = document.toJS()
    if (doc === null || doc === undefined) continue
    if (!isObj(doc)) {
      result.errors.push({ resource: at, path: '', message: 'not a mapping' })
      continue
    }
    const meta = isObj(doc.metadata) ? doc.metadata : {}
    const resource = `${String(doc.kind)}/${String(meta.name)}`
    const missing = ['apiVersion', 'kind'].filter((k) => typeof doc[k] !== 'string' || doc[k] === '')
    if (typeof meta.name !== 'string' || meta.name === '') missing.push('metadata.name')
    if (missing.length > 0) {
      result.errors.push({ resource: `${at} (${resource})`, path: '', message: `no ${missing.join(', ')}` })
      continue
    }
    const identity = `${resource} in ${String(meta.namespace ?? defaultNamespace)}`
    if (seen.has(identity))
      result.errors.push({ resource, path: 'metadata.name', message: `${identity} is rendered twice` })
    seen.add(identity)
    for (const e of workloadErrors(doc)) result.errors.push({ resource, ...e })

    const apiVersion = doc.apiVersion as string
    const kind = doc.kind as string
    const Model = await model(apiVersion, kind)
    const types = modelFile(apiVersion, kind, 'd.ts')
    if (Model === undefined || types === undefined) {
      result.unchecked.push(`${apiVersion} ${resource}`)
      continue
    }
    result.checked.push(resource)
    try {
      new Model(doc).validate()
    } catch (err) {
      for (const e of schemaErrors(err)) result.errors.push({ resource, ...e })
    }
    const unknown: string[] = []
    unknownFields(doc, { kind: 'ref', file: types, name: `I${kind}` }, '', unknown)
    for (const path of unknown) result.errors.push({ resource, path, message: 'unknown field' })
  }
  return result
}

export function formatFindings(errors: readonly Finding[]): string {
  return errors.map((e) => `${e.resource}${e.path === '' ? '' : ` ${e.path}`}: ${e.message}`).join('\n')
}
