/**
 * Which query parameters of `/bff/login` go on to the authorization request (docs/spa.md,
 * "Login options"), and whether their values are well-formed. Pure.
 */

/** bffgate's own parameters of `/bff/login`: neither forwarded nor reported as dropped. */
const OWN_PARAMETERS = new Set(['returnTo'])

const PROMPTS = new Set(['none', 'login', 'consent', 'select_account', 'create'])
/** Free text (a login hint is often an e-mail address or a phone number): no control, format or line-separator characters. */
const TEXT = /^[^\p{Cc}\p{Cf}\p{Zl}\p{Zp}]{1,256}$/u
const TOKEN = /^[A-Za-z0-9_.-]{1,128}$/

/** Whether `value` is a well-formed value of the parameter `name`. */
export function isValidLoginParameter(name: string, value: string): boolean {
  switch (name) {
    case 'prompt': {
      // OIDC Core §3.1.2.1: space-delimited, `none` alone.
      const prompts = value.split(' ')
      return (
        prompts.every((p) => PROMPTS.has(p)) &&
        new Set(prompts).size === prompts.length &&
        (!prompts.includes('none') || prompts.length === 1)
      )
    }
    case 'max_age':
      return /^\d{1,10}$/.test(value)
    case 'ui_locales':
      // BCP 47 tags, space-delimited.
      return (
        value.split(' ').length <= 10 &&
        value.split(' ').every((tag) => /^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*$/.test(tag))
      )
    case 'acr_values':
      // At most 10 values and 512 characters: the whole login state must fit its cookie.
      return (
        value.length <= 512 &&
        value.split(' ').length <= 10 &&
        value.split(' ').every((acr) => /^[\x21-\x7E]{1,200}$/.test(acr))
      )
    case 'screen_hint':
    case 'organization':
      return TOKEN.test(value)
    case 'invitation':
      return /^[A-Za-z0-9_.-]{1,256}$/.test(value)
    default:
      return TEXT.test(value)
  }
}

export type LoginParameterPick =
  | { readonly ok: true; readonly parameters: Readonly<Record<string, string>>; readonly dropped: readonly string[] }
  | { readonly ok: false; readonly invalid: string }

/** Names of dropped parameters as they may be logged: shortened, reduced to safe characters, at most 10. */
function loggableNames(names: readonly string[]): string[] {
  const shown = names.slice(0, 10).map((name) => name.slice(0, 40).replace(/[^A-Za-z0-9_.-]/g, '?'))
  return names.length > 10 ? [...shown, `(+${names.length - 10} more)`] : shown
}

/**
 * The allowed parameters of a `/bff/login` query, checked. A parameter outside `allowed` is
 * dropped (its name reported, never its value); an allowed one given twice, empty or
 * malformed makes the whole request invalid (`invalid` names it).
 */
export function pickLoginParameters(
  query: Readonly<Record<string, unknown>>,
  allowed: readonly string[],
): LoginParameterPick {
  const parameters: Record<string, string> = {}
  const dropped: string[] = []
  for (const [name, value] of Object.entries(query)) {
    if (OWN_PARAMETERS.has(name)) continue
    if (!allowed.includes(name)) {
      dropped.push(name)
      continue
    }
    if (typeof value !== 'string' || !isValidLoginParameter(name, value)) return { ok: false, invalid: name }
    parameters[name] = value
  }
  return { ok: true, parameters, dropped: loggableNames(dropped) }
}
