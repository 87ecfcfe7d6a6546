import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { normalizeHost } from '../../../src/config/host.ts'
import { loadConfig } from '../../../src/config/load.ts'
import { selectFrontend } from '../../../src/frontends/select.ts'

const SECRET = 'unit-test-secret-0123456789-abcdefghijklmnopqrstuvwxyz'
const frontend = (name: string, more: object) => ({ name, clientId: name, clientSecretFile: '/s', ...more })
/** shop on its own host; app and admin under prefixes of one shared host; an IPv6 development host. */
const { frontends } = loadConfig(
  { BFF_CONFIG: '/f', BFF_OIDC_ISSUER: 'https://tenant.auth0.com/', BFF_SESSION_SECRET: SECRET },
  {
    readFile: (path) =>
      path === '/s'
        ? 'secret'
        : JSON.stringify({
            frontends: [
              frontend('shop', { publicUrl: 'https://shop.example.com' }),
              frontend('app', { publicUrl: 'https://example.com', pathPrefix: '/app' }),
              frontend('admin', { publicUrl: 'https://example.com', pathPrefix: '/admin' }),
              frontend('local', { publicUrl: 'http://[::1]:8080' }),
            ],
          }),
  },
)
const select = (host: string | undefined, path: string) => selectFrontend(frontends, host, path)?.name

describe('selectFrontend', () => {
  test('a frontend is chosen by its host and, under a shared host, by its path prefix at a segment boundary', () => {
    assert.equal(select('shop.example.com', '/'), 'shop')
    assert.equal(select('shop.example.com', '/anything/at/all?x=1'), 'shop')
    assert.equal(select('example.com', '/app'), 'app')
    assert.equal(select('example.com', '/app/'), 'app')
    assert.equal(select('example.com', '/app?returnTo=/admin'), 'app')
    assert.equal(select('example.com', '/admin/bff/login'), 'admin')
    assert.equal(select('example.com', '/apple'), undefined, '/app does not take /apple')
    assert.equal(select('example.com', '/administrator/x'), undefined)
    assert.equal(select('example.com', '/'), undefined, 'no frontend at the root of the shared host')
    assert.equal(select('other.example.com', '/app'), undefined, 'an unknown host gets no frontend')
    assert.equal(select('[::1]:8080', '/x'), 'local')
  })

  test('port, letter case and one trailing dot of the host are ignored; a malformed host selects nothing', () => {
    for (const host of [
      'shop.example.com',
      'SHOP.Example.COM',
      'shop.example.com:443',
      'shop.example.com:8443',
      'shop.example.com.',
      'Shop.Example.Com.:80',
    ]) {
      assert.equal(select(host, '/'), 'shop', host)
    }
    for (const host of [
      undefined,
      '',
      'shop.example.com..',
      '.shop.example.com',
      'shop..example.com',
      'evil.com@shop.example.com',
      'shop.example.com@evil.com',
      'evil.com,shop.example.com',
      'shop.example.com, evil.com',
      'shop.example.com:99999',
      'shop.example.com:',
      'shop.example.com:80:80',
      'shop.example.com/x',
      'shop.example.com ',
      ' shop.example.com',
      'shop%2eexample.com',
      'shоp.example.com',
      'shop.example.com\u0000',
      '[::1',
      '[zz::1]:80',
      `${'a'.repeat(64)}.shop.example.com`,
    ]) {
      assert.equal(select(host, '/'), undefined, JSON.stringify(host))
    }
    assert.equal(normalizeHost('App.Example.COM.:8443'), 'app.example.com')
    assert.equal(normalizeHost('[::1]:8080'), '[::1]')
  })

  test("a path that a server on the way could read as another frontend's selects nothing", () => {
    for (const path of [
      '/app/../admin/api',
      '/app/%2e%2e/admin/api',
      '/app/%2E%2E/admin',
      '/app/..;/admin',
      '/app/%2e%2e;x/admin',
      '/app/%252e%252e/admin',
      '/app\\..\\admin',
      '/app/..%2fadmin',
      '/app/..%5cadmin',
      '/app/%c0%ae%c0%ae/admin',
      '/app/%EF%BC%8E%EF%BC%8E/admin',
      '/app/./x',
      '/admin/..',
      '/app/... /x',
    ]) {
      assert.equal(select('example.com', path), undefined, path)
    }
    assert.equal(select('example.com', '/app%2Fx'), undefined, 'an encoded slash is no segment boundary')
    assert.equal(select('example.com', '/app%2fadmin'), undefined)
    assert.equal(select('example.com', '/app\\x'), undefined, 'a backslash is no segment boundary')
    assert.equal(select('example.com', '/APP/x'), undefined, 'paths are case-sensitive')
    assert.equal(select('example.com', '//app/x'), undefined)
    assert.equal(select('example.com', 'app/x'), undefined, 'not an origin-form target')
    assert.equal(
      select('example.com', '/%61pp/x'),
      'app',
      'an encoded unreserved character is that character (RFC 3986 6.2.2.2)',
    )
    assert.equal(select('example.com', '/%61dmin/x'), 'admin')
    assert.equal(select('example.com', '/app/x%2Fy'), 'app', "an encoded slash after the prefix stays the frontend's")
    assert.equal(select('example.com', '/app/file..name'), 'app', 'dots inside a name are no dot segment')
  })

  test('the frontend made from the environment answers every host and path; the dot-segment rule still holds', () => {
    const config = loadConfig({
      BFF_PUBLIC_URL: 'https://app.example.com',
      BFF_OIDC_ISSUER: 'https://t.auth0.com/',
      BFF_OIDC_CLIENT_ID: 'c',
      BFF_OIDC_CLIENT_SECRET: 's',
      BFF_SESSION_SECRET: SECRET,
    })
    for (const host of [undefined, 'app.example.com', 'anything.else:1234', 'bad host']) {
      assert.equal(selectFrontend(config.frontends, host, '/x')?.name, 'default', String(host))
    }
    assert.equal(selectFrontend(config.frontends, 'app.example.com', '/a/../b'), undefined)
  })

  test('when frontends overlap (a configuration loadConfig refuses) nothing is selected rather than a guess', () => {
    const overlapping = [
      { name: 'a', pathPrefix: '' },
      { name: 'b', pathPrefix: '/b' },
    ]
    assert.equal(selectFrontend(overlapping, 'x', '/b/1'), undefined)
    assert.equal(selectFrontend(overlapping, 'x', '/c')?.name, 'a')
  })
})
