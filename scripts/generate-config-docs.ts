/**
 * Writes docs/configuration.md from src/config/schema.ts (`npm run docs:config`).
 * With `--check`, exits 1 when the file on disk differs (CI keeps the two in step).
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { frontendKeys, settings, type SettingSpec } from '../src/config/schema.ts'

export function renderConfigurationDoc(): string {
  const rows = (settings as readonly SettingSpec[]).map((s) => {
    const name = s.secret ? `\`${s.name}\` (or \`${s.name}_FILE\`)` : `\`${s.name}\``
    const dflt = s.required
      ? s.frontend !== undefined
        ? '**required** without `frontends`'
        : '**required**'
      : s.default !== undefined
        ? `\`${s.default}\``
        : 'unset'
    const type = s.kind === 'enum' ? s.values!.map((v) => `\`${v}\``).join(' \\| ') : s.kind
    return `| ${name} | ${type} | ${dflt} | ${s.description.replaceAll('|', '\\|')} |`
  })
  const settingOf = new Map(
    (settings as readonly SettingSpec[]).filter((s) => s.frontend !== undefined).map((s) => [s.frontend!.key, s]),
  )
  const frontendRows = frontendKeys.map((k) => {
    const setting = settingOf.get(k.key)
    const dflt = k.required
      ? '**required**'
      : (k.default ?? (setting?.frontend?.role === 'default' ? `\`${setting.name}\`` : 'unset'))
    return `| \`${k.key}\` | ${k.type} | ${dflt} | ${k.description.replaceAll('|', '\\|')}${setting !== undefined ? ` Takes the place of \`${setting.name}\`.` : ''} |`
  })
  return `<!-- Generated from src/config/schema.ts by \`npm run docs:config\`. Do not edit by hand. -->
# Configuration reference

bffgate reads its configuration once, at start, from environment variables (and optionally a
YAML or JSON file named by \`BFF_CONFIG\` whose keys are the same names; the environment wins).
Every problem is reported at once and bffgate exits with status 78, naming each variable.
A secret may come from a file instead: set \`<NAME>_FILE\` to its path (Docker and Kubernetes
secrets). Secrets have no defaults and are never logged.

| variable | type | default | meaning |
|---|---|---|---|
${rows.join('\n')}

## Routes

\`BFF_ROUTES\` is a JSON array (or a YAML list in the \`BFF_CONFIG\` file). Each route:

| key | meaning | default |
|---|---|---|
| \`path\` | path prefix the SPA calls, e.g. \`/api\`; must not collide with \`/bff\`, \`/healthz\`, \`/readyz\`, \`/metrics\` | required |
| \`upstream\` | origin of the API, e.g. \`http://api:9000\`; nothing else is reachable | required |
| \`rewritePrefix\` | prefix that replaces \`path\` upstream: \`/api/x\` → \`upstream + rewritePrefix + /x\` | \`""\` |
| \`token\` | \`required\` (401 without a session), \`optional\` (attached when there is a session), \`none\` | \`required\` |
| \`audience\`, \`scope\` | a token for another API (its own access token per session) | the login's |
| \`websocket\` | proxy WebSocket upgrades | \`false\` |
| \`dpop\` | send DPoP-bound tokens with a proof | \`false\` |

## Frontends

A \`frontends\` list in the \`BFF_CONFIG\` file serves several SPAs from one deployment, each
with its own client, cookie, routes and static files (docs/frontends.md). A key that takes a
setting's place defaults to that setting; the settings each frontend must give itself
(client, cookie, routes, static files, post-logout landing) are refused beside the list.

| key | type | default | meaning |
|---|---|---|---|
${frontendRows.join('\n')}
`
}

const path = new URL('../docs/configuration.md', import.meta.url)
if (import.meta.main) {
  const doc = renderConfigurationDoc()
  if (process.argv.includes('--check')) {
    let current = ''
    try {
      current = readFileSync(path, 'utf8')
    } catch {}
    if (current !== doc) {
      process.stderr.write('docs/configuration.md is out of date: run `npm run docs:config`\n')
      process.exit(1)
    }
  } else {
    writeFileSync(path, doc)
  }
}
