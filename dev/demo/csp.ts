/**
 * The demo's Content-Security-Policy: bffgate's strict default, with the hashes of the inline
 * scripts of `minimal.html` (the import map and the code block docs/spa.md shows), the way a
 * page that cannot move its inline scripts into files is allowed to run them.
 */
import { createHash } from 'node:crypto'
import { DEFAULT_CONTENT_SECURITY_POLICY } from '../../src/config/csp.ts'

/** `'sha256-…'` sources for every inline `<script>` of `html`, over its exact text. */
export function inlineScriptHashes(html: string): string[] {
  return [...html.matchAll(/<script\b(?![^>]*\bsrc=)[^>]*>([\s\S]*?)<\/script>/g)].map(
    (match) => `'sha256-${createHash('sha256').update(match[1]!).digest('base64')}'`,
  )
}

/** The default policy with `hashes` added to `script-src`. */
export function policyWithScriptHashes(hashes: readonly string[]): string {
  return DEFAULT_CONTENT_SECURITY_POLICY.replace("script-src 'self'", ["script-src 'self'", ...hashes].join(' '))
}
