import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { DEFAULT_CONTENT_SECURITY_POLICY, checkContentSecurityPolicy } from '../../../src/config/csp.ts'

const check = (policy: string) => checkContentSecurityPolicy(policy, 'BFF_CONTENT_SECURITY_POLICY')

describe('issue 17 item 2: the Content-Security-Policy setting', () => {
  test('the default is strict and passes its own check without a warning', () => {
    assert.deepEqual(check(DEFAULT_CONTENT_SECURITY_POLICY), { problems: [], warnings: [] })
    for (const directive of [
      "script-src 'self'",
      "object-src 'none'",
      "base-uri 'none'",
      "frame-ancestors 'none'",
      "style-src 'self'",
    ]) {
      assert.ok(DEFAULT_CONTENT_SECURITY_POLICY.includes(directive), directive)
    }
    assert.doesNotMatch(DEFAULT_CONTENT_SECURITY_POLICY, /unsafe-|\*/)
  })

  test('a policy a browser would misread is refused, naming the setting', () => {
    for (const [policy, expected] of [
      ["default-src 'self'\nscript-src evil", 'printable ASCII'],
      ["default-src 'self', script-src 'none'", 'a comma'],
      ["defualt-src 'self'", 'unknown directive "defualt-src"'],
      ["script-src 'self'; script-src https://cdn", 'repeats the directive "script-src"'],
      [' ; ; ', 'no directive'],
      ["default-src 'self'; scrïpt-src x", 'printable ASCII'],
    ] as const) {
      const { problems } = check(policy)
      assert.ok(
        problems.some((p) => p.includes(expected) && p.includes('"BFF_CONTENT_SECURITY_POLICY"')),
        `${JSON.stringify(policy)}: ${problems.join('; ')}`,
      )
    }
  })

  test('a script directive that lets injected code run is accepted with a warning', () => {
    const { problems, warnings } = check("default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'")
    assert.deepEqual(problems, [])
    assert.match(warnings[0] ?? '', /script-src allows 'unsafe-inline' 'unsafe-eval'/)
    assert.deepEqual(
      check("default-src 'self'; style-src 'self' 'unsafe-inline'; upgrade-insecure-requests").warnings,
      [],
    )
  })
})
