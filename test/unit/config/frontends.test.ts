import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, test } from 'node:test'
import { ConfigError, loadConfig } from '../../../src/config/load.ts'

const SECRET = 'unit-test-secret-0123456789-abcdefghijklmnopqrstuvwxyz'
/** Deployment-wide settings only: the frontends bring their own clients. */
const shared = {
  BFF_CONFIG: '/etc/bff.yaml',
  BFF_OIDC_ISSUER: 'https://tenant.auth0.com/',
  BFF_SESSION_SECRET: SECRET,
}
const files: Record<string, string> = {
  '/run/secrets/shop': 'shop-secret\n',
  '/run/secrets/admin': 'admin-secret',
}
const twoFrontends = `
frontends:
  - name: shop
    publicUrl: https://shop.example.com
    clientId: shop-spa
    clientSecretFile: /run/secrets/shop
    routes:
      - path: /api
        upstream: http://orders:9000
    staticDir: /srv/shop
  - name: admin
    publicUrl: https://example.com
    pathPrefix: /admin
    issuer: https://admin-tenant.eu.auth0.com/
    clientId: admin-spa
    clientSecretFile: /run/secrets/admin
    scopes: [openid, profile, offline_access]
    loginParameters: none
    loginErrorPath: /login-failed
    routes:
      - path: /api
        upstream: http://admin-api:9000
`

function load(yaml: string, env: Record<string, string | undefined> = {}) {
  const readFile = (path: string) => {
    if (path === '/etc/bff.yaml') return yaml
    if (files[path] === undefined) throw Object.assign(new Error('nope'), { code: 'ENOENT' })
    return files[path]
  }
  return loadConfig({ ...shared, ...env }, { readFile })
}

function problemsOf(yaml: string, env: Record<string, string | undefined> = {}): readonly string[] {
  try {
    load(yaml, env)
  } catch (err) {
    assert.ok(err instanceof ConfigError)
    return err.problems
  }
  assert.fail('configuration was accepted')
}

/** A frontend list in YAML from objects (JSON is YAML). */
const list = (...frontends: unknown[]) => JSON.stringify({ frontends })
const frontend = (name: string, more: object = {}) => ({
  name,
  publicUrl: `https://${name}.example.com`,
  clientId: `${name}-client`,
  clientSecretFile: '/run/secrets/shop',
  ...more,
})

describe('frontends', () => {
  test('without a frontends list the environment makes one frontend, "default", for every host, equal to the top-level fields', () => {
    const config = loadConfig({
      BFF_PUBLIC_URL: 'https://app.example.com',
      BFF_OIDC_ISSUER: 'https://tenant.auth0.com/',
      BFF_OIDC_CLIENT_ID: 'c',
      BFF_OIDC_CLIENT_SECRET: 's',
      BFF_SESSION_SECRET: SECRET,
      BFF_ROUTES: '[{"path":"/api","upstream":"http://api:9000"}]',
      BFF_STATIC_DIR: '/srv',
    })
    assert.equal(config.frontends.length, 1)
    const [only] = config.frontends
    assert.equal(only!.name, 'default')
    assert.equal(only!.hosts, undefined, 'every host, as before')
    assert.equal(only!.pathPrefix, '')
    assert.deepEqual(only!.cookie, { name: '__Host-Http-bff', path: '/' })
    assert.equal(only!.oidc, config.oidc)
    assert.equal(only!.routes, config.routes)
    assert.equal(only!.login, config.login)
    assert.equal(only!.staticDir, '/srv')
    assert.equal(only!.contentSecurityPolicy, config.contentSecurityPolicy)
    assert.equal(only!.refreshTokenKind, config.session.refreshTokenKind)
  })

  test("two frontends: own values, the environment's defaults, secrets from files, paths and URLs under the prefix", () => {
    const config = load(twoFrontends)
    const [shop, admin] = config.frontends
    assert.equal(shop!.name, 'shop')
    assert.deepEqual(shop!.hosts, ['shop.example.com'])
    assert.equal(shop!.oidc.issuer, 'https://tenant.auth0.com/', 'the issuer of BFF_OIDC_ISSUER')
    assert.equal(shop!.oidc.clientSecret, 'shop-secret', 'read from its file, newline removed')
    assert.equal(shop!.oidc.redirectUri, 'https://shop.example.com/bff/callback')
    assert.deepEqual(shop!.cookie, { name: '__Host-Http-bff-shop', path: '/' })
    assert.equal(shop!.refreshTokenKind, 'online', 'the scopes of BFF_OIDC_SCOPES')
    assert.equal(shop!.routes[0]!.path, '/api')
    assert.equal(admin!.pathPrefix, '/admin')
    assert.deepEqual(admin!.hosts, ['example.com'])
    assert.equal(admin!.oidc.issuer, 'https://admin-tenant.eu.auth0.com/')
    assert.equal(admin!.oidc.clientSecret, 'admin-secret')
    assert.equal(admin!.oidc.redirectUri, 'https://example.com/admin/bff/callback')
    assert.equal(admin!.oidc.postLogoutRedirectUri, 'https://example.com/admin/bff/logged-out')
    assert.deepEqual(admin!.cookie, { name: '__Secure-bff-admin', path: '/admin' })
    assert.equal(admin!.refreshTokenKind, 'offline')
    assert.deepEqual(
      admin!.routes.map((r) => [r.path, r.upstream]),
      [['/admin/api', 'http://admin-api:9000']],
    )
    assert.deepEqual(admin!.login, { parameters: [], errorPath: '/admin/login-failed' })
    // The single-frontend request path runs on the first.
    assert.equal(config.publicUrl, 'https://shop.example.com')
    assert.equal(config.oidc, shop!.oidc)
    assert.equal(config.session.cookieName, '__Host-Http-bff-shop')
    assert.equal(config.routes, shop!.routes)
    assert.equal(config.staticDir, '/srv/shop')
    assert.ok(Object.isFrozen(config.frontends) && Object.isFrozen(admin!.oidc))
  })

  test('the request path selects frontends (issue 19): several frontends and a path prefix load', () => {
    assert.equal(load(twoFrontends).frontends.length, 2)
    const prefixed = load(list(frontend('admin', { pathPrefix: '/admin', cookieName: '__Secure-admin' })))
    assert.equal(prefixed.frontends[0]!.pathPrefix, '/admin')
    const one = load(list(frontend('shop')))
    assert.equal(one.oidc.clientId, 'shop-client')
    assert.equal(one.publicUrl, 'https://shop.example.com')
  })

  test("BFF_PUBLIC_URL is the frontends' default origin; the client settings of the environment are refused beside a list", () => {
    const config = load(
      list(
        { name: 'a', clientId: 'a', clientSecretFile: '/run/secrets/shop', pathPrefix: '/a' },
        { name: 'b', clientId: 'b', clientSecretFile: '/run/secrets/shop', pathPrefix: '/b' },
      ),
      { BFF_PUBLIC_URL: 'https://apps.example.com' },
    )
    assert.deepEqual(
      config.frontends.map((f) => f.oidc.redirectUri),
      ['https://apps.example.com/a/bff/callback', 'https://apps.example.com/b/bff/callback'],
    )
    assert.ok(
      config.warnings.some((w) => w.includes('frontends a and b share host apps.example.com, one origin')),
      config.warnings.join('\n'),
    )
    const problems = problemsOf(list(frontend('shop')), {
      BFF_OIDC_CLIENT_ID: 'x',
      BFF_OIDC_CLIENT_SECRET_FILE: '/run/secrets/shop',
      BFF_ROUTES: '[]',
      BFF_SESSION_COOKIE_NAME: '__Host-x',
    })
    assert.deepEqual(problems, [
      '"BFF_OIDC_CLIENT_ID" is set, but with a "frontends" list each frontend gives its own ("clientId"): remove it',
      '"BFF_OIDC_CLIENT_SECRET" is set, but with a "frontends" list each frontend gives its own ("clientSecretFile"): remove it',
      '"BFF_SESSION_COOKIE_NAME" is set, but with a "frontends" list each frontend gives its own ("cookieName"): remove it',
      '"BFF_ROUTES" is set, but with a "frontends" list each frontend gives its own ("routes"): remove it',
    ])
  })

  test('every problem of every frontend at once, each named by frontend and key; no secret value is echoed', () => {
    const problems = problemsOf(
      list(
        {
          name: 'shop',
          publicUrl: 'http://shop.example.com/x',
          clientId: '',
          clientSecret: 'p4ssw0rd',
          scopes: 'profile online_access offline_access',
          routes: [{ path: '/bff/x', upstream: 'ftp://x' }],
          par: 'maybe',
          extra: 1,
        },
        {
          name: 'Admin',
          clientSecretFile: '/missing',
          cookieName: 'plain',
          loginParameters: ['redirect_uri'],
          loginErrorPath: 'https://evil.example/',
          contentSecurityPolicy: 'default-src *, x',
        },
        'not a mapping',
      ),
      { BFF_OIDC_ISSUER: undefined },
    )
    const expected = [
      'frontends[0] (shop).clientSecret must not be in the BFF_CONFIG file; name a file holding it with clientSecretFile (a mounted secret)',
      'frontends[0] (shop) has an unknown key "extra"',
      'frontends[0] (shop).publicUrl must be an origin only (scheme, host, port), e.g. https://app.example.com',
      'frontends[0] (shop).publicUrl must use https (plain http is accepted only on a loopback host, for development)',
      'frontends[0] (shop).issuer is required (or "BFF_OIDC_ISSUER", the default of every frontend)',
      'frontends[0] (shop).clientId must be a non-empty string',
      'frontends[0] (shop).clientSecretFile (or frontends[0] (shop).clientPrivateKeyFile) is required',
      'frontends[0] (shop).scopes must include "openid"',
      'frontends[0] (shop).scopes requests both "online_access" and "offline_access"; they exclude each other (Auth0 rejects the request): keep one',
      'frontends[0] (shop).routes[0].path "/bff/x" collides with bffgate\'s own endpoints',
      'frontends[0] (shop).routes[0].upstream must be an http(s) URL',
      'frontends[0] (shop).par must be true or false, got "maybe"',
      'frontends[1].name must be lowercase letters, digits and "-", starting with a letter, at most 32',
      'frontends[1].publicUrl is required (or "BFF_PUBLIC_URL", the default of every frontend)',
      'frontends[1].issuer is required (or "BFF_OIDC_ISSUER", the default of every frontend)',
      'frontends[1].clientId is required',
      'frontends[1].clientSecretFile names a file that cannot be read (ENOENT)',
      'frontends[1].cookieName must start with "__Host-" and contain only cookie-name characters',
      'frontends[1].contentSecurityPolicy must be one policy: a comma would start a second one',
      'frontends[1].loginParameters must not allow "redirect_uri": bffgate sets it itself',
      'frontends[1].loginErrorPath must be a path of the SPA starting with "/", like "/login-failed"',
      'frontends[2] must be a mapping of keys to values',
    ]
    for (const p of expected) assert.ok(problems.includes(p), `missing: ${p}\nin:\n${problems.join('\n')}`)
    assert.equal(problems.length, expected.length, problems.join('\n'))
    assert.ok(!problems.join('\n').includes('p4ssw0rd'))
  })

  test("a path prefix is a plain path outside bffgate's own, and its cookie is a __Secure- one scoped to it", () => {
    for (const bad of ['/', 'admin', '/admin/', '/a//b', '/a/../b', '/a/./b', '/a%2fb', '/a;b', '/a b', '/ä']) {
      assert.ok(
        problemsOf(list(frontend('a', { pathPrefix: bad }))).some((p) =>
          p.startsWith('frontends[0] (a).pathPrefix must be a path like "/admin"'),
        ),
        bad,
      )
    }
    for (const reserved of ['/bff', '/BFF', '/bff/x', '/healthz', '/Metrics']) {
      assert.ok(
        problemsOf(list(frontend('a', { pathPrefix: reserved }))).some((p) =>
          p.includes("collides with bffgate's own endpoints"),
        ),
        reserved,
      )
    }
    assert.deepEqual(problemsOf(list(frontend('a', { pathPrefix: '/a', cookieName: '__Host-Http-a' }))), [
      'frontends[0] (a).cookieName must start with "__Secure-" and contain only cookie-name characters: under a pathPrefix the cookie is scoped to that path, which a "__Host-" cookie cannot be',
    ])
    assert.equal(
      problemsOf(list(frontend('a', { cookieName: '__Secure-a' })))[0],
      'frontends[0] (a).cookieName must start with "__Host-" and contain only cookie-name characters',
    )
    assert.deepEqual(
      problemsOf(list(frontend('a', { publicUrl: `https://${'x'.repeat(64)}.example.com` }))),
      [
        'frontends[0] (a).publicUrl has a host no request can be matched to (a DNS name of labels up to 63 characters, or an IP address)',
      ],
      'never a frontend for every host',
    )
  })

  test('clashes are errors: a name, a cookie or a client used twice', () => {
    const problems = problemsOf(
      list(
        frontend('shop'),
        frontend('shop', { publicUrl: 'https://other.example.com' }),
        frontend('blog', { cookieName: '__Host-Http-bff-shop', clientId: 'shop-client' }),
      ),
    )
    assert.deepEqual(problems, [
      'frontends[1] (shop).name "shop" is also the name of frontends[0] (shop)',
      'frontends[1] (shop).cookieName "__Host-Http-bff-shop" is also the cookie of frontends[0] (shop)',
      'frontends[1] (shop).clientId "shop-client" at https://tenant.auth0.com/ is also the client of frontends[0] (shop): a back-channel logout token names its client as audience, so each frontend needs its own client',
      'frontends[2] (blog).cookieName "__Host-Http-bff-shop" is also the cookie of frontends[0] (shop)',
      'frontends[2] (blog).clientId "shop-client" at https://tenant.auth0.com/ is also the client of frontends[0] (shop): a back-channel logout token names its client as audience, so each frontend needs its own client',
      'frontends[2] (blog).cookieName "__Host-Http-bff-shop" is also the cookie of frontends[1] (shop)',
      'frontends[2] (blog).clientId "shop-client" at https://tenant.auth0.com/ is also the client of frontends[1] (shop): a back-channel logout token names its client as audience, so each frontend needs its own client',
    ])
    assert.equal(
      load(list(frontend('a'), frontend('b', { clientId: 'a-client', issuer: 'https://other.auth0.com/' }))).frontends
        .length,
      2,
      'one client id at two issuers is two clients',
    )
  })

  test('two frontends that could answer one request, or whose cookie would reach the other, are refused; ports, case and a trailing dot do not tell hosts apart', () => {
    const ambiguous = (a: object, b: object) => problemsOf(list(frontend('a', a), frontend('b', b)))
    for (const [a, b] of [
      [{ publicUrl: 'https://app.example.com' }, { publicUrl: 'https://app.example.com' }],
      [{ publicUrl: 'https://app.example.com' }, { publicUrl: 'https://app.example.com:8443' }],
      [{ publicUrl: 'https://app.example.com' }, { publicUrl: 'https://APP.example.com.' }],
      [{ publicUrl: 'http://localhost:8080' }, { publicUrl: 'http://localhost:8081' }],
      [
        { publicUrl: 'https://app.example.com', pathPrefix: '/x', cookieName: '__Secure-a' },
        { publicUrl: 'https://app.example.com', pathPrefix: '/X', cookieName: '__Secure-b' },
      ],
    ] as Array<[object, object]>) {
      const problems = ambiguous(a, b)
      assert.equal(problems.length, 1, JSON.stringify([a, b, problems]))
      assert.match(
        problems[0]!,
        /^frontends\[1\] \(b\) and frontends\[0\] \(a\) both answer host [a-z.]+ under path "\/x?": which frontend a request is for would be ambiguous/i,
        JSON.stringify([a, b]),
      )
    }
    assert.deepEqual(
      ambiguous(
        { publicUrl: 'https://app.example.com' },
        { publicUrl: 'https://app.example.com', pathPrefix: '/admin' },
      ),
      [
        'frontends[0] (a)\'s cookie (Path=/) would reach frontends[1] (b) under "/admin" on host app.example.com: give them different publicUrl hosts or pathPrefixes that do not contain each other',
      ],
    )
    assert.deepEqual(
      ambiguous(
        { publicUrl: 'https://app.example.com', pathPrefix: '/admin/tools', cookieName: '__Secure-a' },
        { publicUrl: 'https://app.example.com', pathPrefix: '/admin' },
      ),
      [
        'frontends[1] (b)\'s cookie (Path=/admin) would reach frontends[0] (a) under "/admin/tools" on host app.example.com: give them different publicUrl hosts or pathPrefixes that do not contain each other',
      ],
    )
    // Segment boundaries: /app and /apple are apart; sub-domains are apart (__Host- cookies are host-only).
    assert.equal(
      load(
        list(
          frontend('a', { publicUrl: 'https://x.example.com', pathPrefix: '/app' }),
          frontend('b', { publicUrl: 'https://x.example.com', pathPrefix: '/apple' }),
        ),
      ).frontends.length,
      2,
    )
    assert.equal(
      load(
        list(
          frontend('a', { publicUrl: 'https://example.com' }),
          frontend('b', { publicUrl: 'https://admin.example.com' }),
        ),
      ).frontends.length,
      2,
    )
  })

  test('the two-frontend example of docs/frontends.md loads as the doc says', () => {
    const doc = readFileSync(new URL('../../../docs/frontends.md', import.meta.url), 'utf8')
    const yaml = /```yaml\n([\s\S]*?)```/.exec(doc)![1]!
    const secrets: Record<string, string> = {
      '/run/secrets/shop-client-secret': 's1',
      '/run/secrets/admin-client-secret': 's2',
    }
    const config = loadConfig(
      { BFF_CONFIG: '/etc/bff.yaml', BFF_SESSION_SECRET: SECRET },
      { readFile: (path) => (path === '/etc/bff.yaml' ? yaml : secrets[path]!) },
    )
    const [shop, admin] = config.frontends
    assert.deepEqual(
      [shop!.oidc.redirectUri, admin!.oidc.redirectUri],
      ['https://shop.example.com/bff/callback', 'https://www.example.com/admin/bff/callback'],
    )
    assert.deepEqual(
      [shop!.cookie, admin!.cookie],
      [
        { name: '__Host-Http-bff-shop', path: '/' },
        { name: '__Secure-bff-admin', path: '/admin' },
      ],
    )
    assert.deepEqual(
      admin!.routes.map((r) => [r.path, r.upstream, r.rewritePrefix]),
      [['/admin/api', 'http://admin-api:9000', '/v1']],
    )
    assert.equal(admin!.login.errorPath, '/admin/login-failed')
    assert.equal(admin!.refreshTokenKind, 'offline')
    assert.equal(shop!.oidc.issuer, 'https://shop-tenant.eu.auth0.com/')
  })
})
