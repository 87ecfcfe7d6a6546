/**
 * Keeps the Helm chart in step with the configuration schema:
 *
 * - `charts/bffgate/values.schema.json`: its `config` property (bffgate's settings keyed by
 *   their variable names) is generated from src/config/schema.ts; the rest is written by hand.
 * - `charts/bffgate/README.md`: the values tables between the `values:start`/`values:end`
 *   markers come from the `## @section` / `## @param` comments of values.yaml and, for
 *   `config`, from the schema.
 *
 * `node scripts/generate-chart-docs.ts` rewrites both; `--check` only reports whether they
 * are up to date (test/deploy/chart-docs.test.ts runs the same check).
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parse as parseYaml } from 'yaml'
import { frontendKeys, settings, type SettingSpec } from '../src/config/schema.ts'

const chartDir = new URL('../charts/bffgate/', import.meta.url)
export const valuesSchemaFile = new URL('values.schema.json', chartDir)
export const readmeFile = new URL('README.md', chartDir)
export const valuesFile = new URL('values.yaml', chartDir)

/**
 * Settings the chart sets from its own values rather than from `config`: each secret comes
 * from a Secret as `<NAME>_FILE`, the Redis topology from `redis.*`, the port from
 * `containerPort`. A secret setting missing here cannot be set by the chart: generation fails.
 */
export const chartManagedSettings: Readonly<Record<string, string>> = {
  BFF_PORT: '`containerPort`',
  BFF_ADMIN_PORT: '`adminPort`',
  BFF_OIDC_CLIENT_SECRET: '`secrets.clientSecret` or `secrets.existingSecret` (as `BFF_OIDC_CLIENT_SECRET_FILE`)',
  BFF_OIDC_CLIENT_PRIVATE_KEY:
    '`secrets.clientPrivateKey` or `secrets.existingSecret` (as `BFF_OIDC_CLIENT_PRIVATE_KEY_FILE`)',
  BFF_SESSION_SECRET: '`secrets.sessionSecret` or `secrets.existingSecret` (as `BFF_SESSION_SECRET_FILE`)',
  BFF_REDIS_URL: '`redis.url`',
  BFF_REDIS_USERNAME: '`redis.username`',
  BFF_REDIS_PASSWORD: '`redis.password` or `redis.existingSecret` (as `BFF_REDIS_PASSWORD_FILE`)',
  BFF_REDIS_SENTINELS: '`redis.sentinel.nodes` with `redis.mode: sentinel`',
  BFF_REDIS_SENTINEL_MASTER_NAME: '`redis.sentinel.masterName` with `redis.mode: sentinel`',
  BFF_REDIS_SENTINEL_PASSWORD:
    '`redis.sentinel.password` or `redis.existingSecret` (as `BFF_REDIS_SENTINEL_PASSWORD_FILE`)',
  BFF_REDIS_CLUSTER_NODES: '`redis.cluster.nodes` with `redis.mode: cluster`',
  BFF_SSF_PUSH_AUTHORIZATION:
    '`secrets.ssfAuthorization` or `secrets.existingSecret` (as `BFF_SSF_PUSH_AUTHORIZATION_FILE`, with `config.BFF_SSF_DELIVERY: push`)',
  BFF_SSF_POLL_AUTHORIZATION:
    '`secrets.ssfAuthorization` or `secrets.existingSecret` (as `BFF_SSF_POLL_AUTHORIZATION_FILE`, with `config.BFF_SSF_DELIVERY: poll`)',
  BFF_CONFIG: 'not used: the chart passes every setting as an environment variable',
}

type JsonSchema = Record<string, unknown>

/** The settings `config` accepts: every setting of the schema the chart does not manage itself. */
export function chartConfigSettings(): SettingSpec[] {
  const unplaced = settings.filter((s: SettingSpec) => s.secret === true && !(s.name in chartManagedSettings))
  if (unplaced.length > 0) {
    throw new Error(
      `secret settings with no place in the chart: ${unplaced.map((s) => s.name).join(', ')}; ` +
        "add them to chartManagedSettings in scripts/generate-chart-docs.ts and to the chart's Secret and Deployment",
    )
  }
  return settings.filter((s: SettingSpec) => !(s.name in chartManagedSettings))
}

const ORIGIN_PATTERN = '^$|^https://[^/?#\\s]+$|^http://(localhost|127(\\.[0-9]{1,3}){3}|\\[::1\\])(:[0-9]+)?$'

const routeSchema: JsonSchema = {
  type: 'object',
  required: ['path', 'upstream'],
  properties: {
    path: { type: 'string', pattern: '^/' },
    upstream: { type: 'string', pattern: '^https?://' },
    rewritePrefix: { type: 'string' },
    token: { enum: ['required', 'optional', 'none'] },
    audience: { type: 'string', minLength: 1 },
    scope: { type: 'string', minLength: 1 },
    websocket: { type: 'boolean' },
    dpop: { type: 'boolean' },
  },
}

function settingSchema(spec: SettingSpec): JsonSchema {
  const description = spec.description
  switch (spec.kind) {
    case 'integer':
      return { type: ['integer', 'null'], ...(spec.min !== undefined && { minimum: spec.min }), description }
    case 'boolean':
      return { type: ['boolean', 'null'], description }
    case 'enum':
      return { enum: [...(spec.values ?? []), '', null], description }
    case 'json':
      if (spec.name === 'BFF_ROUTES') return { type: ['array', 'string', 'null'], items: routeSchema, description }
      return { type: ['array', 'object', 'string', 'null'], description }
    case 'url':
      if (spec.name === 'BFF_PUBLIC_URL') return { type: ['string', 'null'], pattern: ORIGIN_PATTERN, description }
      return { type: ['string', 'null'], pattern: '^$|^https?://\\S+$', description }
    default:
      return { type: ['string', 'null'], description }
  }
}

/** The JSON schema of the chart's `config` value. */
export function renderConfigSchema(): JsonSchema {
  return {
    type: 'object',
    description:
      'bffgate settings keyed by their environment variable names (docs/configuration.md); secrets and Redis have their own values.',
    additionalProperties: false,
    properties: Object.fromEntries(chartConfigSettings().map((s) => [s.name, settingSchema(s)])),
  }
}

/** values.schema.json with its `config` property regenerated. */
/**
 * `extraEnv`: any name Kubernetes accepts (`NODE_EXTRA_CA_CERTS`, `HTTPS_PROXY` ...), but a
 * `BFF_*` name must be a setting or the `_FILE` form of a secret one, so a typo fails the install.
 */
function renderExtraEnvSchema(): JsonSchema {
  const names = settings.flatMap((s: SettingSpec) => (s.secret === true ? [s.name, `${s.name}_FILE`] : [s.name]))
  return {
    type: 'array',
    items: {
      type: 'object',
      required: ['name'],
      properties: {
        name: {
          type: 'string',
          pattern: '^[-._a-zA-Z][-._a-zA-Z0-9]*$',
        },
      },
      anyOf: [{ properties: { name: { not: { pattern: '^BFF_' } } } }, { properties: { name: { enum: names } } }],
    },
  }
}

/**
 * `frontends`: bffgate's frontend keys (src/config/schema.ts), except the secret files the chart
 * mounts itself, plus where each frontend's credential comes from.
 */
export function renderFrontendsSchema(): JsonSchema {
  const typeOf = (type: string): JsonSchema => {
    switch (type) {
      case 'boolean':
        return { type: 'boolean' }
      case 'url':
        return { type: 'string', pattern: '^https?://\\S+$' }
      case 'path':
        return { type: 'string', pattern: '^/' }
      case 'enum':
        return { enum: ['client_secret_basic', 'client_secret_post', 'private_key_jwt'] }
      case 'list or string':
        return { type: ['array', 'string'], items: { type: 'string' } }
      case 'list of routes':
        return { type: 'array', items: routeSchema }
      default:
        return { type: 'string', minLength: 1 }
    }
  }
  const properties: Record<string, JsonSchema> = {}
  for (const k of frontendKeys) {
    if (k.key === 'clientSecretFile' || k.key === 'clientPrivateKeyFile') continue
    properties[k.key] = { ...typeOf(k.type), description: k.description }
  }
  properties.name = {
    type: 'string',
    pattern: '^[a-z][a-z0-9-]{0,31}$',
    description: frontendKeys.find((k) => k.key === 'name')!.description,
  }
  properties.publicUrl = {
    type: 'string',
    pattern: ORIGIN_PATTERN.replace('^$|', ''),
    description: frontendKeys.find((k) => k.key === 'publicUrl')!.description,
  }
  properties.clientSecret = {
    type: 'string',
    description: "The client secret, kept in the chart's Secret and mounted as a file.",
  }
  properties.clientPrivateKey = {
    type: 'string',
    description: "The private key (JWK JSON or PKCS#8 PEM) for private_key_jwt, kept in the chart's Secret.",
  }
  properties.existingSecret = {
    type: 'string',
    description: 'An existing Secret holding the credential, instead of clientSecret or clientPrivateKey.',
  }
  properties.existingSecretKey = {
    type: 'string',
    description:
      'Key of the credential in existingSecret; default `client-secret` (`client-private-key` for private_key_jwt).',
  }
  return {
    type: 'array',
    description: 'Several SPAs on one release (docs/frontends.md); empty: one frontend from config and secrets.',
    items: { type: 'object', required: ['name', 'clientId'], additionalProperties: false, properties },
  }
}

export function renderValuesSchema(current: string): string {
  const schema = JSON.parse(current) as { properties: Record<string, unknown> }
  schema.properties.config = renderConfigSchema()
  schema.properties.frontends = renderFrontendsSchema()
  schema.properties.extraEnv = renderExtraEnvSchema()
  return `${JSON.stringify(schema, null, 2)}\n`
}

interface Param {
  path: string
  description: string
}
type Block = { section: string; params: Param[] }

/** The `## @section` and `## @param` comments of values.yaml, in order. */
export function readParams(valuesText: string): Block[] {
  const blocks: Block[] = []
  for (const line of valuesText.split('\n')) {
    const section = /^\s*## @section (.+)$/.exec(line)
    if (section) {
      blocks.push({ section: section[1]!.trim(), params: [] })
      continue
    }
    const param = /^\s*## @param (\S+)(?: \[[^\]]*\])? (.+)$/.exec(line)
    if (param) {
      if (blocks.length === 0) blocks.push({ section: 'Values', params: [] })
      blocks.at(-1)!.params.push({ path: param[1]!, description: param[2]!.trim() })
    }
  }
  return blocks
}

function valueAt(values: unknown, path: string): unknown {
  let node = values
  for (const key of path.split('.')) {
    if (node === null || typeof node !== 'object') return undefined
    node = (node as Record<string, unknown>)[key]
  }
  return node
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ')
}

function defaultCell(value: unknown): string {
  if (value === undefined) return ''
  const json = JSON.stringify(value)
  return json.length > 60 ? 'see values.yaml' : `\`${cell(json)}\``
}

function kindCell(spec: SettingSpec): string {
  if (spec.kind === 'enum') return (spec.values ?? []).map((v) => `\`${v}\``).join(' \\| ')
  if (spec.name === 'BFF_ROUTES') return 'list of routes'
  return spec.kind
}

/** The generated part of the chart README. */
export function renderValuesTables(valuesText: string): string {
  const values = parseYaml(valuesText) as unknown
  const out: string[] = []
  for (const block of readParams(valuesText)) {
    out.push(`### ${block.section}`, '', '| key | description | default |', '|---|---|---|')
    for (const p of block.params)
      out.push(`| \`${p.path}\` | ${cell(p.description)} | ${defaultCell(valueAt(values, p.path))} |`)
    out.push('')
  }
  out.push(
    '### `config` keys',
    '',
    "Each is the bffgate setting of the same name ([docs/configuration.md](../../docs/configuration.md)); unset or empty means bffgate's default.",
    '',
    '| key | type | bffgate default | meaning |',
    '|---|---|---|---|',
  )
  for (const spec of chartConfigSettings()) {
    const fallback =
      spec.required === true ? '**required**' : spec.default !== undefined ? `\`${cell(spec.default)}\`` : 'unset'
    out.push(`| \`config.${spec.name}\` | ${kindCell(spec)} | ${fallback} | ${cell(spec.description)} |`)
  }
  out.push(
    '',
    'Set by the chart from other values, not from `config`:',
    '',
    '| setting | from |',
    '|---|---|',
    ...Object.entries(chartManagedSettings).map(([name, from]) => `| \`${name}\` | ${from} |`),
    '',
  )
  return out.join('\n')
}

const START = '<!-- values:start (generated by `node scripts/generate-chart-docs.ts`; do not edit by hand) -->'
const END = '<!-- values:end -->'

/** The README with its generated part replaced. */
export function renderReadme(current: string, valuesText: string): string {
  const start = current.indexOf(START)
  const end = current.indexOf(END)
  if (start < 0 || end < start) throw new Error(`charts/bffgate/README.md lacks the markers ${START} … ${END}`)
  return `${current.slice(0, start + START.length)}\n\n${renderValuesTables(valuesText)}\n${current.slice(end)}`
}

/** Files whose content differs from what generation gives, with that content. */
export function outdatedFiles(): Array<{ file: URL; expected: string }> {
  const valuesText = readFileSync(valuesFile, 'utf8')
  const outdated: Array<{ file: URL; expected: string }> = []
  const schema = readFileSync(valuesSchemaFile, 'utf8')
  const expectedSchema = renderValuesSchema(schema)
  if (schema !== expectedSchema) outdated.push({ file: valuesSchemaFile, expected: expectedSchema })
  const readme = readFileSync(readmeFile, 'utf8')
  const expectedReadme = renderReadme(readme, valuesText)
  if (readme !== expectedReadme) outdated.push({ file: readmeFile, expected: expectedReadme })
  return outdated
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const outdated = outdatedFiles()
  if (process.argv.includes('--check')) {
    for (const { file } of outdated)
      process.stderr.write(`${fileURLToPath(file)} is out of date: run \`node scripts/generate-chart-docs.ts\`\n`)
    process.exit(outdated.length > 0 ? 1 : 0)
  }
  for (const { file, expected } of outdated) {
    writeFileSync(file, expected)
    process.stdout.write(`wrote ${fileURLToPath(file)}\n`)
  }
}
