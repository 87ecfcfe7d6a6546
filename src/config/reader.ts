import type { Raw } from './sources.ts'
import { specByName } from './sources.ts'
import type { SettingName } from './schema.ts'

/** Reads typed values from raw settings, recording a problem (naming the setting) instead of throwing. */
export class SettingReader {
  readonly #raw: (name: SettingName) => Raw
  readonly #problems: string[]
  readonly #notRequired: ReadonlySet<string>
  /** `notRequired`: settings whose `required` does not hold here (another source takes their place). */
  constructor(raw: (name: SettingName) => Raw, problems: string[], notRequired: ReadonlySet<string> = new Set()) {
    this.#raw = raw
    this.#problems = problems
    this.#notRequired = notRequired
  }

  #get(name: SettingName): string | undefined {
    const value = this.#raw(name)
    const spec = specByName.get(name)!
    if (value === undefined || value === '') {
      if (spec.required && !this.#notRequired.has(name))
        this.#problems.push(`"${name}" is required${spec.secret ? ` (or "${name}_FILE")` : ''}`)
      return undefined
    }
    if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') {
      this.#problems.push(`"${name}" must be a ${spec.kind}, not ${Array.isArray(value) ? 'an array' : typeof value}`)
      return undefined
    }
    const text = String(value)
    if (spec.kind === 'enum' && !spec.values!.includes(text)) {
      this.#problems.push(`"${name}" must be one of ${spec.values!.join(', ')}`)
      return undefined
    }
    return text
  }

  string(name: SettingName): string | undefined {
    return this.#get(name)
  }

  integer(name: SettingName): number | undefined {
    const text = this.#get(name)
    if (text === undefined) return undefined
    const { min = 0, max } = specByName.get(name)!
    const value = /^\d+$/.test(text.trim()) ? Number(text) : Number.NaN
    if (!Number.isSafeInteger(value) || value < min) {
      this.#problems.push(
        `"${name}" must be ${min > 0 ? 'a positive' : 'a non-negative'} integer${min > 1 ? ` of at least ${min}` : ''}, got ${JSON.stringify(text)}`,
      )
      return undefined
    }
    if (max !== undefined && value > max) {
      this.#problems.push(`"${name}" must be at most ${max}, got ${JSON.stringify(text)}`)
      return undefined
    }
    return value
  }

  boolean(name: SettingName): boolean | undefined {
    const text = this.#get(name)
    return text === undefined ? undefined : parseBoolean(`"${name}"`, text, this.#problems)
  }

  url(name: SettingName): URL | undefined {
    const text = this.#get(name)
    return text === undefined ? undefined : parseUrl(`"${name}"`, text, this.#problems)
  }

  list(name: SettingName, separator: RegExp): string[] | undefined {
    const text = this.#get(name)
    if (text === undefined) return undefined
    const items = text
      .split(separator)
      .map((s) => s.trim())
      .filter((s) => s !== '')
    if (items.length === 0) this.#problems.push(`"${name}" must not be empty`)
    return items
  }

  json(name: SettingName): unknown {
    const value = this.#raw(name)
    if (typeof value !== 'string') return value
    try {
      return JSON.parse(value)
    } catch {
      this.#problems.push(`"${name}" must be valid JSON`)
      return undefined
    }
  }
}

/** `true`/`1`/`yes` or `false`/`0`/`no`, any case; anything else is a problem naming `label`. */
export function parseBoolean(label: string, text: string, problems: string[]): boolean | undefined {
  const lower = text.trim().toLowerCase()
  if (lower === 'true' || lower === '1' || lower === 'yes') return true
  if (lower === 'false' || lower === '0' || lower === 'no') return false
  problems.push(`${label} must be true or false, got ${JSON.stringify(text)}`)
  return undefined
}

/** An absolute URL, or a problem naming `label` that never echoes the value (it may carry a password). */
export function parseUrl(label: string, text: string, problems: string[]): URL | undefined {
  try {
    return new URL(text.trim())
  } catch {
    problems.push(`${label} must be an absolute URL`)
    return undefined
  }
}
