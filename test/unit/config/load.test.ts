import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { ConfigError, loadConfig } from '../../../src/config/load.ts'

const SECRET = 'unit-test-secret-0123456789-abcdefghijklmnopqrstuvwxyz'
const minimal = {
  BFF_PUBLIC_URL: 'https://app.example.com',
  BFF_OIDC_ISSUER: 'https://tenant.auth0.com/',
  BFF_OIDC_CLIENT_ID: 'client-1',
  BFF_OIDC_CLIENT_SECRET: 'client-secret-value',
  BFF_SESSION_SECRET: SECRET,
}

function problemsOf(env: Record<string, string | undefined>, readFile?: (path: string) => string): readonly string[] {
  try {
    loadConfig(env, readFile ? { readFile } : {})
  } catch (err) {
    assert.ok(err instanceof ConfigError)
    assert.equal(err.code, 'BFF_ERR_CONFIG_INVALID')
    return err.problems
  }
  assert.fail('configuration was accepted')
}

describe('loadConfig', () => {
  test('the minimal configuration gets the documented defaults', () => {
    const config = loadConfig(minimal)
    assert.equal(config.port, 8080)
    assert.equal(config.host, '0.0.0.0')
    assert.equal(config.publicUrl, 'https://app.example.com')
    assert.equal(config.oidc.issuer, 'https://tenant.auth0.com/', 'issuer kept exactly, trailing slash included')
    assert.deepEqual(config.oidc.scopes, ['openid', 'profile', 'email', 'online_access'])
    assert.equal(config.session.refreshTokenKind, 'online')
    assert.equal(config.oidc.tokenEndpointAuthMethod, 'client_secret_post')
    assert.equal(config.oidc.redirectUri, 'https://app.example.com/bff/callback')
    assert.equal(config.oidc.postLogoutRedirectUri, 'https://app.example.com/bff/logged-out')
    assert.equal(config.session.idleSeconds, 259200)
    assert.equal(config.session.absoluteSeconds, 2592000)
    assert.equal(config.session.refreshSkewSeconds, 30)
    assert.equal(config.session.cookieName, '__Host-Http-bff')
    assert.equal(config.redis.url, 'redis://127.0.0.1:6379')
    assert.equal(config.backchannelLogout, true)
    assert.deepEqual(config.routes, [])
    assert.ok(Object.isFrozen(config) && Object.isFrozen(config.oidc))
  })

  test('an empty environment lists every missing required setting at once', () => {
    const problems = problemsOf({})
    for (const name of ['BFF_PUBLIC_URL', 'BFF_OIDC_ISSUER', 'BFF_OIDC_CLIENT_ID', 'BFF_SESSION_SECRET']) {
      assert.ok(
        problems.some((p) => p.includes(`"${name}" is required`)),
        `${name} not reported: ${problems.join('; ')}`,
      )
    }
    assert.ok(
      problems.some((p) => p.includes('"BFF_OIDC_CLIENT_SECRET" (or "BFF_OIDC_CLIENT_PRIVATE_KEY") is required')),
    )
  })

  test('the error message names each variable on its own line', () => {
    try {
      loadConfig({ ...minimal, BFF_PORT: 'eighty', BFF_SESSION_IDLE_SECONDS: '-5' })
      assert.fail('accepted')
    } catch (err) {
      assert.match(
        (err as Error).message,
        /^invalid configuration:\n {2}- "BFF_PORT" must be a non-negative integer, got "eighty"\n {2}- "BFF_SESSION_IDLE_SECONDS" must be a positive integer/,
      )
    }
  })

  test('the admin listener defaults to 9090 on all interfaces and must not share the browser port', () => {
    const config = loadConfig(minimal)
    assert.deepEqual(config.admin, { port: 9090, host: '0.0.0.0' })
    assert.deepEqual(problemsOf({ ...minimal, BFF_PORT: '9000', BFF_ADMIN_PORT: '9000' }), [
      '"BFF_ADMIN_PORT" must differ from "BFF_PORT" (the admin listener serves /metrics apart from the browser port)',
    ])
    assert.equal(
      loadConfig({ ...minimal, BFF_PORT: '0', BFF_ADMIN_PORT: '0' }).admin.port,
      0,
      'two ephemeral ports do not collide',
    )
  })

  test('a port beyond 65535 is a configuration error naming the variable', () => {
    assert.deepEqual(problemsOf({ ...minimal, BFF_PORT: '99999', BFF_ADMIN_PORT: '65536' }), [
      '"BFF_PORT" must be at most 65535, got "99999"',
      '"BFF_ADMIN_PORT" must be at most 65535, got "65536"',
    ])
    assert.equal(loadConfig({ ...minimal, BFF_PORT: '65535' }).port, 65535)
  })

  test('the session-events heartbeat must come before the connection timeout would cut an idle stream', () => {
    assert.deepEqual(
      problemsOf({ ...minimal, BFF_CONNECTION_TIMEOUT_SECONDS: '10', BFF_SESSION_EVENTS_HEARTBEAT_SECONDS: '10' }),
      [
        '"BFF_SESSION_EVENTS_HEARTBEAT_SECONDS" must be less than "BFF_CONNECTION_TIMEOUT_SECONDS", or every idle session-events stream is cut',
      ],
    )
    assert.equal(
      loadConfig({ ...minimal, BFF_CONNECTION_TIMEOUT_SECONDS: '10', BFF_SESSION_EVENTS_HEARTBEAT_SECONDS: '9' })
        .sessionEvents.heartbeatSeconds,
      9,
    )
    assert.equal(
      loadConfig({ ...minimal, BFF_CONNECTION_TIMEOUT_SECONDS: '0', BFF_SESSION_EVENTS_HEARTBEAT_SECONDS: '60' })
        .sessionEvents.heartbeatSeconds,
      60,
      'no timeout, no constraint',
    )
  })

  test('online_access together with offline_access is a configuration error', () => {
    const problems = problemsOf({ ...minimal, BFF_OIDC_SCOPES: 'openid offline_access online_access' })
    assert.equal(problems.length, 1)
    assert.match(problems[0]!, /"BFF_OIDC_SCOPES" requests both "online_access" and "offline_access"/)
  })

  test('offline_access selects rotating refresh tokens; neither means no refresh token', () => {
    assert.equal(
      loadConfig({ ...minimal, BFF_OIDC_SCOPES: 'openid offline_access' }).session.refreshTokenKind,
      'offline',
    )
    assert.equal(loadConfig({ ...minimal, BFF_OIDC_SCOPES: 'openid email' }).session.refreshTokenKind, 'none')
    assert.ok(
      problemsOf({ ...minimal, BFF_OIDC_SCOPES: 'profile email' }).some((p) => p.includes('must include "openid"')),
    )
  })

  test('secrets are read from *_FILE, and setting both forms is an error', () => {
    const files: Record<string, string> = {
      '/run/secrets/client': 'from-file-secret\n',
      '/run/secrets/session': `${SECRET}\n`,
    }
    const readFile = (path: string) => {
      if (files[path] === undefined) throw Object.assign(new Error('nope'), { code: 'ENOENT' })
      return files[path]
    }
    const env = {
      ...minimal,
      BFF_OIDC_CLIENT_SECRET: undefined,
      BFF_SESSION_SECRET: undefined,
      BFF_OIDC_CLIENT_SECRET_FILE: '/run/secrets/client',
      BFF_SESSION_SECRET_FILE: '/run/secrets/session',
    }
    const config = loadConfig(env, { readFile })
    assert.equal(config.oidc.clientSecret, 'from-file-secret', 'trailing newline removed')
    assert.deepEqual(config.session.secrets, [SECRET])
    assert.ok(
      problemsOf({ ...minimal, BFF_OIDC_CLIENT_SECRET_FILE: '/run/secrets/client' }, readFile).some((p) =>
        p.includes('"BFF_OIDC_CLIENT_SECRET" and "BFF_OIDC_CLIENT_SECRET_FILE" are both set'),
      ),
    )
    assert.ok(
      problemsOf(
        { ...minimal, BFF_OIDC_CLIENT_SECRET: undefined, BFF_OIDC_CLIENT_SECRET_FILE: '/missing' },
        readFile,
      ).some((p) => p.includes('"BFF_OIDC_CLIENT_SECRET_FILE" names a file that cannot be read (ENOENT)')),
    )
  })

  test('weak or short session secrets are refused; a rotation list is checked entry by entry', () => {
    assert.ok(
      problemsOf({ ...minimal, BFF_SESSION_SECRET: 'short' }).some((p) =>
        p.includes('"BFF_SESSION_SECRET" must be at least 32 characters'),
      ),
    )
    assert.ok(
      problemsOf({ ...minimal, BFF_SESSION_SECRET: 'a'.repeat(64) }).some((p) => p.includes('too little entropy')),
    )
    assert.ok(
      problemsOf({ ...minimal, BFF_SESSION_SECRET: `${SECRET},short` }).some((p) =>
        p.includes('entry 2 of "BFF_SESSION_SECRET"'),
      ),
    )
    assert.deepEqual(loadConfig({ ...minimal, BFF_SESSION_SECRET: `${SECRET}, ${SECRET}X` }).session.secrets, [
      SECRET,
      `${SECRET}X`,
    ])
  })

  test('no value of a secret or URL appears in an error message', () => {
    const problems = problemsOf({
      ...minimal,
      BFF_REDIS_URL: 'not a url with p4ssw0rd',
      BFF_SESSION_SECRET: 'tiny-s3cret',
    })
    assert.ok(!problems.join('\n').includes('p4ssw0rd'))
    assert.ok(!problems.join('\n').includes('tiny-s3cret'))
  })

  test('plain http is refused for a public URL that is not loopback and for an issuer unless allowed', () => {
    assert.ok(
      problemsOf({ ...minimal, BFF_PUBLIC_URL: 'http://app.example.com' }).some((p) =>
        p.includes('"BFF_PUBLIC_URL" must use https'),
      ),
    )
    assert.equal(loadConfig({ ...minimal, BFF_PUBLIC_URL: 'http://localhost:8080' }).publicUrl, 'http://localhost:8080')
    assert.ok(
      problemsOf({ ...minimal, BFF_OIDC_ISSUER: 'http://idp:9000' }).some((p) =>
        p.includes('"BFF_ALLOW_INSECURE_HTTP"'),
      ),
    )
    const config = loadConfig({ ...minimal, BFF_OIDC_ISSUER: 'http://idp:9000', BFF_ALLOW_INSECURE_HTTP: 'true' })
    assert.equal(config.oidc.issuer, 'http://idp:9000')
    assert.ok(config.warnings.some((w) => w.includes('BFF_ALLOW_INSECURE_HTTP')))
    assert.ok(
      problemsOf({ ...minimal, BFF_PUBLIC_URL: 'https://app.example.com/sub' }).some((p) => p.includes('origin only')),
    )
  })

  test('routes are validated one by one with their index', () => {
    const config = loadConfig({
      ...minimal,
      BFF_ROUTES: JSON.stringify([
        { path: '/api/', upstream: 'http://api:9000' },
        {
          path: '/orders',
          upstream: 'https://orders.internal',
          rewritePrefix: '/v2',
          token: 'optional',
          audience: 'https://orders',
        },
      ]),
    })
    assert.deepEqual(config.routes, [
      {
        path: '/api',
        upstream: 'http://api:9000',
        rewritePrefix: '',
        token: 'required',
        csrf: 'header',
        websocket: false,
        dpop: false,
      },
      {
        path: '/orders',
        upstream: 'https://orders.internal',
        rewritePrefix: '/v2',
        audience: 'https://orders',
        token: 'optional',
        csrf: 'header',
        websocket: false,
        dpop: false,
      },
    ])
    const problems = problemsOf({
      ...minimal,
      BFF_ROUTES: JSON.stringify([
        { path: 'api', upstream: 'ftp://x' },
        { path: '/bff/x', upstream: 'http://a' },
        { path: '/a', upstream: 'http://a/base', token: 'sometimes', extra: 1 },
        { path: '/b/../c', upstream: 'http://a' },
      ]),
    })
    for (const expected of [
      '"BFF_ROUTES"[0].path',
      '"BFF_ROUTES"[0].upstream',
      '"BFF_ROUTES"[1].path "/bff/x" collides',
      '"BFF_ROUTES"[2].upstream must be an origin only',
      '"BFF_ROUTES"[2].token',
      '"BFF_ROUTES"[2] has an unknown key "extra"',
      '"BFF_ROUTES"[3].path',
    ]) {
      assert.ok(
        problems.some((p) => p.includes(expected)),
        `missing ${expected} in ${problems.join('; ')}`,
      )
    }
    assert.ok(problemsOf({ ...minimal, BFF_ROUTES: '[{' }).some((p) => p.includes('"BFF_ROUTES" must be valid JSON')))
  })

  test("issue 17 item 1: a route's CSRF policy is header (the default) or same-origin, nothing else", () => {
    const config = loadConfig({
      ...minimal,
      BFF_ROUTES: JSON.stringify([{ path: '/events', upstream: 'http://api:9000', csrf: 'same-origin' }]),
    })
    assert.equal(config.routes[0]?.csrf, 'same-origin')
    for (const csrf of ['none', 'off', true, 'SAME-ORIGIN', '']) {
      assert.ok(
        problemsOf({ ...minimal, BFF_ROUTES: JSON.stringify([{ path: '/a', upstream: 'http://a', csrf }]) }).some((p) =>
          p.includes('"BFF_ROUTES"[0].csrf must be one of header, same-origin'),
        ),
        String(csrf),
      )
    }
  })

  test('issue 17 item 2: BFF_CONTENT_SECURITY_POLICY is strict by default, configurable, and checked at start', () => {
    assert.match(loadConfig(minimal).contentSecurityPolicy, /^default-src 'self'; script-src 'self';/)
    assert.equal(
      loadConfig({ ...minimal, BFF_CONTENT_SECURITY_POLICY: " default-src 'self' " }).contentSecurityPolicy,
      "default-src 'self'",
    )
    assert.ok(
      problemsOf({ ...minimal, BFF_CONTENT_SECURITY_POLICY: "default-src 'self', img-src *" }).some((p) =>
        p.includes('"BFF_CONTENT_SECURITY_POLICY" must be one policy'),
      ),
    )
    assert.ok(
      loadConfig({ ...minimal, BFF_CONTENT_SECURITY_POLICY: "script-src 'unsafe-inline'" }).warnings.some((w) =>
        w.includes('BFF_CONTENT_SECURITY_POLICY'),
      ),
    )
  })

  test('issue 17 item 3: login options default to the documented list and a SPA page; bad ones name their variable', () => {
    const config = loadConfig(minimal)
    assert.deepEqual(config.login, {
      parameters: ['prompt', 'login_hint', 'screen_hint', 'organization', 'invitation', 'ui_locales', 'acr_values'],
      errorPath: '/',
    })
    assert.deepEqual(
      loadConfig({ ...minimal, BFF_LOGIN_PARAMETERS: 'prompt, max_age prompt', BFF_LOGIN_ERROR_PATH: '/oops' }).login,
      { parameters: ['prompt', 'max_age'], errorPath: '/oops' },
    )
    assert.deepEqual(loadConfig({ ...minimal, BFF_LOGIN_PARAMETERS: 'none' }).login.parameters, [])
    const problems = problemsOf({
      ...minimal,
      BFF_LOGIN_PARAMETERS: 'prompt redirect_uri',
      BFF_LOGIN_ERROR_PATH: 'https://evil.example/',
    })
    assert.ok(problems.some((p) => p.includes('"BFF_LOGIN_PARAMETERS" must not allow "redirect_uri"')))
    assert.ok(problems.some((p) => p.includes('"BFF_LOGIN_ERROR_PATH" must be a path')))
  })

  test('a YAML config file provides settings; the environment wins; secrets are not allowed in it', () => {
    const yaml =
      'BFF_PORT: 9090\nBFF_SESSION_IDLE_SECONDS: 600\nBFF_ROUTES:\n  - path: /api\n    upstream: http://api:9000\n'
    const config = loadConfig({ ...minimal, BFF_CONFIG: '/etc/bff.yaml', BFF_PORT: '7070' }, { readFile: () => yaml })
    assert.equal(config.port, 7070)
    assert.equal(config.session.idleSeconds, 600)
    assert.equal(config.routes[0]?.upstream, 'http://api:9000')
    const problems = problemsOf(
      { ...minimal, BFF_CONFIG: '/etc/bff.yaml' },
      () => 'BFF_SESSION_SECRET: x\nBFF_NOPE: 1\n',
    )
    assert.ok(problems.some((p) => p.includes('must not hold the secret "BFF_SESSION_SECRET"')))
    assert.ok(problems.some((p) => p.includes('unknown setting "BFF_NOPE"')))
  })

  test('an unknown BFF_ variable is a warning (likely a typo), not an error', () => {
    const config = loadConfig({ ...minimal, BFF_SESION_SECRET: 'x' })
    assert.ok(config.warnings.some((w) => w.includes('"BFF_SESION_SECRET"')))
  })

  test('a mistyped variable gets a "did you mean", in the warnings and beside the errors it likely caused', () => {
    assert.ok(
      loadConfig({ ...minimal, BFF_SESSION_IDEL_SECONDS: '60' }).warnings.includes(
        'unknown setting "BFF_SESSION_IDEL_SECONDS" ignored: did you mean "BFF_SESSION_IDLE_SECONDS"?',
      ),
    )
    assert.ok(
      loadConfig({ ...minimal, BFF_REDIS_PASSWROD_FILE: '/x' }).warnings.includes(
        'unknown setting "BFF_REDIS_PASSWROD_FILE" ignored: did you mean "BFF_REDIS_PASSWORD_FILE"?',
      ),
    )
    assert.ok(
      loadConfig({ ...minimal, BFF_SOMETHING_ELSE_ENTIRELY: '1' }).warnings.includes(
        'unknown setting "BFF_SOMETHING_ELSE_ENTIRELY" ignored (a typo?)',
      ),
    )
    const { BFF_OIDC_CLIENT_ID: _, ...withoutClientId } = minimal
    try {
      loadConfig({ ...withoutClientId, BFF_OIDC_CLIENTID: 'client-1' })
      assert.fail('accepted')
    } catch (err) {
      assert.ok(err instanceof ConfigError)
      assert.deepEqual(err.hints, ['unknown setting "BFF_OIDC_CLIENTID" ignored: did you mean "BFF_OIDC_CLIENT_ID"?'])
      assert.match(
        err.message,
        /"BFF_OIDC_CLIENT_ID" is required\nnote: unknown setting "BFF_OIDC_CLIENTID" ignored: did you mean "BFF_OIDC_CLIENT_ID"\?$/,
      )
    }
  })

  test('the cookie name must keep the __Host- prefix; idle may not exceed absolute', () => {
    assert.ok(
      problemsOf({ ...minimal, BFF_SESSION_COOKIE_NAME: 'bff' }).some((p) =>
        p.includes('"BFF_SESSION_COOKIE_NAME" must start with "__Host-"'),
      ),
    )
    assert.ok(
      problemsOf({ ...minimal, BFF_SESSION_IDLE_SECONDS: '100', BFF_SESSION_ABSOLUTE_SECONDS: '50' }).some((p) =>
        p.includes('must not exceed'),
      ),
    )
  })

  test('issue 13 item 3: BFF_TRUSTED_PROXIES takes addresses and CIDR ranges; anything else fails at start, naming it', () => {
    assert.deepEqual(loadConfig(minimal).trustedProxies, [])
    assert.deepEqual(
      loadConfig({ ...minimal, BFF_TRUSTED_PROXIES: '10.0.0.0/8, 192.168.1.7 ,2001:db8::/32,::1' }).trustedProxies,
      ['10.0.0.0/8', '192.168.1.7/32', '2001:db8::/32', '::1/128'],
    )
    for (const bad of [
      '10.0.0.0/33',
      '10.0.0/8',
      'lb.internal',
      '10.0.0.0/8/1',
      '2001:db8::/129',
      '*',
      '10.0.0.0/-1',
      'fe80::1%eth0',
    ]) {
      const problems = problemsOf({ ...minimal, BFF_TRUSTED_PROXIES: `10.0.0.0/8,${bad}` })
      assert.equal(problems.length, 1, bad)
      assert.match(
        problems[0]!,
        /"BFF_TRUSTED_PROXIES" must be a comma-separated list of IP addresses or CIDR ranges/,
        bad,
      )
    }
    assert.match(
      loadConfig({ ...minimal, BFF_TRUSTED_PROXIES: '0.0.0.0/0' }).warnings.join('\n'),
      /trusts every address/,
    )
  })
})
