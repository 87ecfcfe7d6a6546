/**
 * The Content-Security-Policy bffgate sends with the SPA's files (`BFF_CONTENT_SECURITY_POLICY`),
 * and its validation. Pure.
 */

import { settingLabel } from './label.ts'

/**
 * Strict by default: scripts, styles, fonts and API calls from this origin only (no inline
 * script or style, no `eval`), no plugins, no `<base>` rewriting, no framing. Images may also
 * be `data:` URLs.
 */
export const DEFAULT_CONTENT_SECURITY_POLICY =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"

/** Directives of CSP Level 3 and the ones browsers still honour from earlier drafts. */
const DIRECTIVES = new Set([
  'default-src',
  'script-src',
  'script-src-elem',
  'script-src-attr',
  'style-src',
  'style-src-elem',
  'style-src-attr',
  'img-src',
  'font-src',
  'connect-src',
  'media-src',
  'object-src',
  'frame-src',
  'child-src',
  'worker-src',
  'manifest-src',
  'prefetch-src',
  'fenced-frame-src',
  'base-uri',
  'form-action',
  'frame-ancestors',
  'sandbox',
  'report-uri',
  'report-to',
  'upgrade-insecure-requests',
  'require-trusted-types-for',
  'trusted-types',
  'webrtc',
])

/** Sources that undo what a CSP is for, warned about when a script directive allows them. */
const WEAKENING = ["'unsafe-inline'", "'unsafe-eval'", '*', 'data:', 'http:', 'https:']

/**
 * Checks a policy as an operator would write it. Problems: characters a header cannot carry,
 * a comma (it would make two policies), an unknown or repeated directive (browsers ignore a
 * repeat silently). Warnings: a script directive that allows inline code, `eval` or any host.
 */
export function checkContentSecurityPolicy(policy: string, name: string): { problems: string[]; warnings: string[] } {
  const problems: string[] = []
  const warnings: string[] = []
  if (!/^[\x20-\x7E]*$/.test(policy)) problems.push(`${settingLabel(name)} must be printable ASCII on one line`)
  if (policy.includes(',')) problems.push(`${settingLabel(name)} must be one policy: a comma would start a second one`)
  const seen = new Set<string>()
  const directives = policy
    .split(';')
    .map((d) => d.trim())
    .filter((d) => d !== '')
  if (directives.length === 0) problems.push(`${settingLabel(name)} has no directive`)
  for (const directive of directives) {
    const [directiveName = '', ...sources] = directive.split(/\s+/)
    const lower = directiveName.toLowerCase()
    if (!DIRECTIVES.has(lower))
      problems.push(`${settingLabel(name)} has an unknown directive ${JSON.stringify(directiveName.slice(0, 40))}`)
    else if (seen.has(lower))
      problems.push(`${settingLabel(name)} repeats the directive "${lower}" (browsers ignore the repeat)`)
    seen.add(lower)
    if (
      (lower === 'default-src' || lower.startsWith('script-src')) &&
      sources.some((s) => WEAKENING.includes(s.toLowerCase()))
    ) {
      warnings.push(
        `${settingLabel(name)}: ${lower} allows ${sources.filter((s) => WEAKENING.includes(s.toLowerCase())).join(' ')}, which lets injected script run`,
      )
    }
  }
  return { problems, warnings }
}
