import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'
import { errorDefinitions } from '../../src/errors.ts'
import { renderConfigurationDoc } from '../../scripts/generate-config-docs.ts'

test('docs/configuration.md is generated from the schema and up to date', () => {
  const onDisk = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8')
  assert.equal(onDisk, renderConfigurationDoc(), 'run `npm run docs:config`')
})

test('docs/errors.md lists exactly the errors of src/errors.ts, with their status and public code', () => {
  const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8')
  const rows = [...doc.matchAll(/^\| `(BFF_ERR_[A-Z_]+)` \| (\d{3}) \| `([a-z_]+)` \|/gm)].map((m) => [
    m[1],
    Number(m[2]),
    m[3],
  ])
  const defined = Object.entries(errorDefinitions).map(([code, def]) => [code, def.statusCode, def.error])
  assert.deepEqual(rows.sort(), defined.sort())
})
