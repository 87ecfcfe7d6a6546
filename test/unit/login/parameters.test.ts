import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { checkLoginErrorPath, checkLoginParameterNames, DEFAULT_LOGIN_PARAMETERS } from '../../../src/config/login.ts'
import { loginErrorLocation } from '../../../src/login/error-location.ts'
import { isValidLoginParameter, pickLoginParameters } from '../../../src/login/parameters.ts'

describe('issue 17 item 3: login parameters and the login error page', () => {
  const allowed = [...DEFAULT_LOGIN_PARAMETERS, 'max_age', 'tenant']

  test("allowed parameters pass, bffgate's own are ignored, the rest are dropped by name", () => {
    assert.deepEqual(
      pickLoginParameters(
        { prompt: 'login', login_hint: 'zoë@example.com', returnTo: '/x', evil: 'y', scope: 'admin' },
        allowed,
      ),
      {
        ok: true,
        parameters: { prompt: 'login', login_hint: 'zoë@example.com' },
        dropped: ['evil', 'scope'],
      },
    )
    const many = Object.fromEntries(Array.from({ length: 14 }, (_, i) => [`x${i}\n<b>${'y'.repeat(60)}`, 'v']))
    const picked = pickLoginParameters(many, allowed)
    assert.ok(picked.ok)
    const { dropped } = picked
    assert.equal(dropped.length, 11)
    assert.equal(dropped.at(-1), '(+4 more)')
    assert.ok(
      dropped.slice(0, 10).every((name) => /^[A-Za-z0-9_.?-]{1,40}$/.test(name)),
      'names are shortened and made safe to log',
    )
  })

  test('a repeated, empty or malformed allowed value makes the request invalid, naming the parameter', () => {
    assert.deepEqual(pickLoginParameters({ prompt: ['login', 'none'] }, allowed), { ok: false, invalid: 'prompt' })
    assert.deepEqual(pickLoginParameters({ tenant: '' }, allowed), { ok: false, invalid: 'tenant' })
    for (const [name, value] of [
      ['prompt', 'none login'],
      ['prompt', 'login  consent'],
      ['prompt', 'LOGIN'],
      ['max_age', '-1'],
      ['max_age', '12345678901'],
      ['ui_locales', 'en_US'],
      ['ui_locales', Array(11).fill('en').join(' ')],
      ['acr_values', 'a\tb'],
      ['screen_hint', 'sign up'],
      ['organization', 'org/../x'],
      ['invitation', 'a'.repeat(257)],
      ['login_hint', 'a'.repeat(257)],
      ['login_hint', 'bob\u202e'],
      ['login_hint', 'bob\nx'],
      ['tenant', '\u0000'],
    ] as const)
      assert.equal(isValidLoginParameter(name, value), false, `${name}=${JSON.stringify(value)}`)
    for (const [name, value] of [
      ['prompt', 'none'],
      ['prompt', 'login consent'],
      ['prompt', 'select_account'],
      ['prompt', 'create'],
      ['max_age', '0'],
      ['ui_locales', 'de-CH fr en'],
      ['acr_values', 'urn:mace:incommon:iap:silver phr'],
      ['screen_hint', 'signup'],
      ['organization', 'org_W8nQe1dY3s'],
      ['invitation', 'Xa4Uv9kP2q'],
      ['login_hint', '+1 555 0100'],
      ['tenant', 'ACME Corp'],
    ] as const)
      assert.equal(isValidLoginParameter(name, value), true, `${name}=${JSON.stringify(value)}`)
  })

  test('the allowlist cannot name a protocol parameter; the error path must be a same-origin path outside /bff/', () => {
    assert.deepEqual(checkLoginParameterNames([...DEFAULT_LOGIN_PARAMETERS, 'max_age', 'connection'], 'S'), [])
    for (const name of [
      'redirect_uri',
      'scope',
      'state',
      'nonce',
      'audience',
      'code_challenge',
      'request_uri',
      'response_mode',
    ]) {
      assert.match(
        checkLoginParameterNames([name], 'BFF_LOGIN_PARAMETERS')[0] ?? '',
        /"BFF_LOGIN_PARAMETERS" must not allow/,
        name,
      )
    }
    assert.match(checkLoginParameterNames(['Prompt'], 'S')[0] ?? '', /invalid parameter name/)
    assert.deepEqual(checkLoginErrorPath('/', 'P'), [])
    assert.deepEqual(checkLoginErrorPath('/welcome?from=login#top', 'P'), [])
    for (const path of [
      'https://evil.example/',
      '//evil.example',
      '/\\evil',
      'login',
      '/bff/login',
      '/bff',
      '/a b',
      '/bff/../bff/login',
    ]) {
      assert.equal(checkLoginErrorPath(path, 'P').length, 1, path)
    }
  })

  test("the error page gets bffgate's code, and the IdP's error only when it is a registered OAuth code", () => {
    assert.equal(
      loginErrorLocation('/', 'login_failed', 'login_required'),
      '/?login_error=login_failed&login_error_reason=login_required',
    )
    assert.equal(
      loginErrorLocation('/welcome?from=login#top', 'login_state_invalid', undefined),
      '/welcome?from=login&login_error=login_state_invalid#top',
    )
    assert.equal(loginErrorLocation('/', 'login_failed', '<script>'), '/?login_error=login_failed')
    assert.equal(loginErrorLocation('/', 'login_failed', 'Access_Denied'), '/?login_error=login_failed')
  })
})
