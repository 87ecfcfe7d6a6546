import { parse as parseYaml } from 'yaml'
import { settings, type SettingName, type SettingSpec } from './schema.ts'

/**
 * Where each setting's raw value comes from, in order of precedence: the environment variable,
 * then `<NAME>_FILE` for secrets, then the `BFF_CONFIG` file, then the schema's default. Pure
 * apart from the injected `readFile`.
 */

export type Env = Readonly<Record<string, string | undefined>>
/** A value as found: a string from the environment, or any JSON value from the file. */
export type Raw = unknown
export type ReadFile = (path: string) => string

export const specByName = new Map<string, SettingSpec>(settings.map((s) => [s.name, s]))

/** The `BFF_CONFIG` file: its setting values, and the `frontends` list when it has one. */
export interface ConfigFile {
  readonly values: Readonly<Record<string, unknown>>
  /** As written; src/config/frontends.ts reads it. */
  readonly frontends?: unknown
}

/**
 * Reads the `BFF_CONFIG` file (YAML, which includes JSON): a mapping of setting names to values.
 * A secret in it is a problem: secrets come from the environment or `*_FILE`.
 */
export function readConfigFile(path: string | undefined, readFile: ReadFile, problems: string[]): ConfigFile {
  if (path === undefined || path === '') return { values: {} }
  let text: string
  try {
    text = readFile(path)
  } catch (err) {
    problems.push(`"BFF_CONFIG" names a file that cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`)
    return { values: {} }
  }
  let parsed: unknown
  try {
    parsed = parseYaml(text)
  } catch (err) {
    problems.push(`"BFF_CONFIG" file is neither valid YAML nor JSON: ${(err as Error).message.split('\n')[0]}`)
    return { values: {} }
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    problems.push('"BFF_CONFIG" file must hold a mapping of setting names to values')
    return { values: {} }
  }
  const values: Record<string, unknown> = {}
  let frontends: unknown
  for (const [key, value] of Object.entries(parsed)) {
    const spec = specByName.get(key)
    if (key === 'frontends') frontends = value ?? []
    else if (spec === undefined || key === 'BFF_CONFIG')
      problems.push(`"BFF_CONFIG" file has an unknown setting "${key}"`)
    else if (spec.secret)
      problems.push(`"BFF_CONFIG" file must not hold the secret "${key}"; use the environment or "${key}_FILE"`)
    else values[key] = value
  }
  return { values, ...(frontends !== undefined && { frontends }) }
}

/**
 * The raw value of each setting by precedence. Reading a `*_FILE` secret that cannot be read, or
 * setting both a secret and its `*_FILE`, is a problem (the setting then reads as absent).
 */
export function createRawSource(
  env: Env,
  fileValues: Readonly<Record<string, unknown>>,
  readFile: ReadFile,
  problems: string[],
): (name: SettingName) => Raw {
  return (name) => {
    const spec = specByName.get(name)!
    const fileVar = `${name}_FILE`
    if (spec.secret && env[fileVar] !== undefined) {
      if (env[name] !== undefined) {
        problems.push(`"${name}" and "${fileVar}" are both set; set one`)
        return undefined
      }
      return readSecretFile(`"${fileVar}"`, env[fileVar]!, readFile, problems)
    }
    const fromEnv = env[name]
    if (fromEnv !== undefined && fromEnv !== '') return fromEnv
    if (fileValues[name] !== undefined) return fileValues[name]
    return spec.default
  }
}

/**
 * A secret read from the file at `path`, one trailing newline removed; `undefined` and a
 * problem naming `label` when the file cannot be read (the path is named, never the content).
 */
export function readSecretFile(
  label: string,
  path: string,
  readFile: ReadFile,
  problems: string[],
): string | undefined {
  try {
    return readFile(path).replace(/\r?\n$/, '')
  } catch (err) {
    problems.push(`${label} names a file that cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`)
    return undefined
  }
}

/** Whether a setting is given at all (environment, `*_FILE` or the file), whatever its default. */
export function isSet(spec: SettingSpec, env: Env, fileValues: Readonly<Record<string, unknown>>): boolean {
  return (
    (env[spec.name] !== undefined && env[spec.name] !== '') ||
    (spec.secret === true && env[`${spec.name}_FILE`] !== undefined) ||
    fileValues[spec.name] !== undefined
  )
}

/** One warning per `BFF_` variable that is no setting, with the setting it was likely meant to be. */
export function unknownSettingWarnings(env: Env): string[] {
  const unknown: string[] = []
  for (const key of Object.keys(env)) {
    if (
      key.startsWith('BFF_') &&
      !specByName.has(key) &&
      !(key.endsWith('_FILE') && specByName.get(key.slice(0, -5))?.secret)
    ) {
      const suggestion = closestSettingName(key)
      unknown.push(
        `unknown setting "${key}" ignored${suggestion !== undefined ? `: did you mean "${suggestion}"?` : ' (a typo?)'}`,
      )
    }
  }
  return unknown
}

/**
 * The declared setting closest to a mistyped name (`BFF_SESION_SECRET` → `BFF_SESSION_SECRET`,
 * `BFF_SESSION_SECRET_FLIE` → `BFF_SESSION_SECRET_FILE`), if one is near enough to be meant.
 */
function closestSettingName(name: string): string | undefined {
  const candidates = settings.flatMap((s: SettingSpec) => (s.secret ? [s.name, `${s.name}_FILE`] : [s.name]))
  let best: string | undefined
  let bestDistance = Infinity
  for (const candidate of candidates) {
    const d = editDistance(name, candidate)
    if (d < bestDistance) {
      best = candidate
      bestDistance = d
    }
  }
  // Up to a quarter of the name's letters (at least 2) may differ: typos, not other settings.
  return bestDistance <= Math.max(2, Math.floor(name.length / 4)) ? best : undefined
}

/** Damerau-Levenshtein distance (optimal string alignment): a swap of neighbours counts once. */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_row, i) =>
    Array.from({ length: b.length + 1 }, (_column, j) => (i === 0 ? j : j === 0 ? i : 0)),
  )
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1)
    }
  }
  return d[a.length]![b.length]!
}
