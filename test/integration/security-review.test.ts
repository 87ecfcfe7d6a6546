import assert from 'node:assert/strict'
import { once } from 'node:events'
import {
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, test } from 'node:test'
import { WebSocket } from 'ws'
import { createBrowser, loginAtDevIdp, type Browser } from '../helpers/browser.ts'
import { cookieHeader, startStack, USER, type Stack } from '../helpers/stack.ts'

/**
 * Issue 13 (outside security review), items 1, 3, 4, 5 and 10: each attack performed over real
 * HTTP against the whole system (development IdP, bffgate, real upstreams).
 */

const CSRF = { 'x-csrf': '1' }

/** An upstream that records what it received and answers as the current test says. */
interface Recorded {
  method: string
  url: string
  headers: IncomingHttpHeaders
}
type Respond = (req: IncomingMessage, res: ServerResponse) => void
const echo: Respond = (req, res) => {
  const body = JSON.stringify({ url: req.url, headers: req.headers })
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body)
}
let respond: Respond = echo
const received: Recorded[] = []
let raw: Server
let stack: Stack
/** Requests from this address come from a "load balancer" bffgate is told to trust. */
const TRUSTED_PEER = '127.0.0.2'

before(async () => {
  raw = createServer((req, res) => {
    received.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers })
    req.resume()
    req.on('end', () => respond(req, res))
  })
  raw.listen(0, '127.0.0.1')
  await once(raw, 'listening')
  const rawUrl = `http://127.0.0.1:${(raw.address() as AddressInfo).port}`
  stack = await startStack({
    env: { BFF_TRUSTED_PROXIES: `${TRUSTED_PEER}/32, 10.0.0.0/8` },
    routes: (api) => [
      { path: '/api', upstream: api },
      { path: '/ws', upstream: api, websocket: true },
      { path: '/raw', upstream: rawUrl },
      { path: '/tomcat', upstream: rawUrl, rewritePrefix: '/app/api' },
      { path: '/open', upstream: rawUrl, token: 'none' },
      { path: '/maybe', upstream: rawUrl, token: 'optional' },
    ],
  })
})
after(async () => {
  await stack?.close()
  raw?.closeAllConnections()
  raw?.close()
})

/** The cookie header of a logged-in browser, for raw requests. */
const cookieOf = (browser: Browser) => cookieHeader(stack, browser)

interface RawResponse {
  status: number
  headers: IncomingHttpHeaders
  body: string
}

/**
 * A request as written, path and header names untouched (fetch would normalise dot segments
 * and refuse some headers); `localAddress` picks the loopback address it comes from.
 */
function send(
  path: string,
  headers: Record<string, string | string[]>,
  options: { method?: string; localAddress?: string } = {},
): Promise<RawResponse> {
  const { port } = new URL(stack.url)
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        path,
        method: options.method ?? 'GET',
        headers,
        ...(options.localAddress !== undefined && { localAddress: options.localAddress }),
      },
      (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (chunk: string) => {
          body += chunk
        })
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }))
      },
    )
    req.on('error', reject)
    req.end()
  })
}

describe("issue 13 item 1: returnTo can never send the browser off bffgate's origin after a real login", () => {
  const attacks = [
    '/.//evil.example/x',
    '/..//evil.example',
    '/%2e//evil.example',
    '/a/..//evil.example',
    '/%2E%2E//evil.example',
    '/%2e%2e//evil.example/x?y#z',
    '/././/evil.example',
    '/.../..//evil.example',
    '/a/b/../..//evil.example',
    '/..///evil.example',
    '/x/.././/evil.example:443/x',
    '/.//user:pw@evil.example/',
    '/.%2e//evil.example',
    '/.//\\evil.example',
    '/.\\/evil.example',
    '/.\t//evil.example',
    '/.\n//evil.example',
    '/%2e%2f/evil.example',
    '/%252e//evil.example',
    '/%5c%5cevil.example',
    '/．//evil.example',
    '/%ef%bc%8e//evil.example',
  ]

  test("issue 13 item 1: dot segments, encodings, backslashes and stripped characters all land on bffgate's origin", async () => {
    for (const returnTo of attacks) {
      const browser = createBrowser()
      const atCallback = await loginAtDevIdp(
        browser,
        `${stack.url}/bff/login?returnTo=${encodeURIComponent(returnTo)}`,
        USER,
        {
          until: (url) => url.pathname === '/bff/callback',
        },
      )
      const callback = await browser.get(atCallback.url)
      assert.equal(callback.status, 302, `${JSON.stringify(returnTo)}: ${callback.text}`)
      const location = callback.headers.get('location')!
      // Where a browser goes: the Location resolved against the callback's URL.
      const target = new URL(location, atCallback.url)
      assert.equal(target.origin, stack.url, `${JSON.stringify(returnTo)} → Location: ${location}`)
      assert.ok(
        location.startsWith('/') && !location.startsWith('//'),
        `${JSON.stringify(returnTo)} → Location: ${location}`,
      )
      assert.ok(browser.cookie(stack.url, '__Host-Http-bff'), 'the login itself still succeeds')
    }
  })

  test('issue 13 item 1: ordinary deep links still land where they point', async () => {
    for (const [returnTo, expected] of [
      ['/orders/42?tab=items#top', '/orders/42?tab=items#top'],
      ['/a/../b', '/b'],
      ['/a/./b/', '/a/b/'],
    ]) {
      const { result } = await stack.login({ returnTo })
      assert.equal(result.url.href, `${stack.url}${expected}`, returnTo)
    }
  })
})

describe('issue 13 item 3: only forwarding headers bffgate wrote reach the upstream', () => {
  /** Headers a client forges so that an upstream trusts it about itself or about the request. */
  const forged: Record<string, string> = {
    forwarded: 'for=6.6.6.6;host=evil.example;proto=https',
    'x-forwarded-for': '6.6.6.6',
    'x-forwarded-host': 'evil.example',
    'x-forwarded-proto': 'https',
    'x-forwarded-port': '8443',
    'x-forwarded-prefix': '/evil',
    'x-forwarded-server': 'evil.example',
    'x-forwarded-ssl': 'on',
    'x-forwarded-uri': '/admin',
    'x-forwarded-user': 'admin',
    'x-forwarded-email': 'admin@example.com',
    'x-forwarded-client-cert': 'Hash=evil',
    x_forwarded_for: '6.6.6.7',
    'x-real-ip': '6.6.6.6',
    'true-client-ip': '6.6.6.6',
    'cf-connecting-ip': '6.6.6.6',
    'x-client-ip': '6.6.6.6',
    'x-cluster-client-ip': '6.6.6.6',
    'fastly-client-ip': '6.6.6.6',
    'x-original-url': '/admin',
    'x-original-uri': '/admin',
    'x-original-host': 'evil.example',
    'x-rewrite-url': '/admin',
    'x-host': 'evil.example',
    'x-http-method-override': 'DELETE',
    'x-http-method': 'DELETE',
    'x-method-override': 'DELETE',
    'x-envoy-external-address': '6.6.6.6',
    'x-amzn-oidc-identity': 'admin',
    'x-auth-request-user': 'admin',
    'x-proxyuser-ip': '6.6.6.6',
  }
  const benign = { 'x-app-version': '1.2.3', accept: 'application/json' }

  function assertOnlyOurs(headers: IncomingHttpHeaders, client: string, chain: string[]): void {
    for (const [name, value] of Object.entries(headers)) {
      if (name === 'authorization') continue // a JWT: random letters
      assert.ok(
        !String(value).includes('6.6.6.') &&
          !String(value).includes('evil') &&
          !String(value).includes('admin') &&
          value !== 'DELETE',
        `${name}: ${String(value)} reached the upstream`,
      )
    }
    for (const name of Object.keys(forged)) {
      if (!['x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'forwarded'].includes(name))
        assert.equal(headers[name], undefined, name)
    }
    const publicHost = new URL(stack.url).host
    assert.equal(headers['x-forwarded-for'], chain.join(', '))
    assert.equal(headers['x-forwarded-host'], publicHost)
    assert.equal(headers['x-forwarded-proto'], 'http')
    assert.equal(
      headers.forwarded,
      [`for=${client};host="${publicHost}";proto=http`, ...chain.slice(1).map((hop) => `for=${hop}`)].join(', '),
    )
    assert.equal(headers['x-app-version'], '1.2.3', 'an ordinary header was dropped too')
  }

  test("issue 13 item 3: a client's forged forwarding headers never reach the upstream, on every kind of route", async () => {
    const cookie = cookieOf((await stack.login()).browser)
    for (const path of ['/raw/whoami', '/open/whoami', '/maybe/whoami']) {
      const calls = received.length
      const res = await send(path, { ...forged, ...benign, ...CSRF, cookie })
      assert.equal(res.status, 200, `${path}: ${res.body}`)
      assert.equal(received.length, calls + 1)
      assertOnlyOurs(received.at(-1)!.headers, '127.0.0.1', ['127.0.0.1'])
      assert.equal(received.at(-1)!.method, 'GET')
    }
    // The demo API (token verified) sees the same.
    const api = await send('/api/headers', { ...forged, ...benign, ...CSRF, cookie })
    assert.equal(api.status, 200, api.body)
    assertOnlyOurs((JSON.parse(api.body) as { headers: IncomingHttpHeaders }).headers, '127.0.0.1', ['127.0.0.1'])
  })

  test('issue 13 item 3: behind a trusted proxy the client address is the rightmost untrusted hop of its X-Forwarded-For', async () => {
    const cookie = cookieOf((await stack.login()).browser)
    // The load balancer appended the address it saw (203.0.113.7); 6.6.6.6 is what the client forged.
    await send(
      '/raw/whoami',
      { ...forged, 'x-forwarded-for': '6.6.6.6, 203.0.113.7', ...benign, ...CSRF, cookie },
      { localAddress: TRUSTED_PEER },
    )
    assertOnlyOurs(received.at(-1)!.headers, '203.0.113.7', ['203.0.113.7', TRUSTED_PEER])
    // Through two trusted hops (an internal 10/8 proxy behind the load balancer).
    await send(
      '/raw/whoami',
      { 'x-forwarded-for': '6.6.6.6, 203.0.113.7, 10.1.2.3', ...benign, ...CSRF, cookie },
      { localAddress: TRUSTED_PEER },
    )
    assertOnlyOurs(received.at(-1)!.headers, '203.0.113.7', ['203.0.113.7', '10.1.2.3', TRUSTED_PEER])
    // An IPv6 client is quoted and bracketed in Forwarded (RFC 7239 §6).
    await send(
      '/raw/whoami',
      { 'x-forwarded-for': '2001:db8::7', ...benign, ...CSRF, cookie },
      { localAddress: TRUSTED_PEER },
    )
    const headers = received.at(-1)!.headers
    assert.equal(headers['x-forwarded-for'], `2001:db8::7, ${TRUSTED_PEER}`)
    assert.match(headers.forwarded ?? '', /^for="\[2001:db8::7\]";host="/)
    // The same forged chain from an untrusted peer is ignored entirely.
    await send('/raw/whoami', { 'x-forwarded-for': '6.6.6.6, 203.0.113.7', ...benign, ...CSRF, cookie })
    assert.equal(received.at(-1)!.headers['x-forwarded-for'], '127.0.0.1')
  })

  test("issue 13 item 3: a WebSocket handshake carries bffgate's forwarding headers, never the client's", async () => {
    const cookie = cookieOf((await stack.login()).browser)
    const socket = new WebSocket(`${stack.url.replace('http', 'ws')}/ws/socket`, {
      headers: { ...forged, ...benign, cookie, origin: stack.url },
    })
    await new Promise((resolve, reject) => {
      socket.once('open', resolve)
      socket.once('error', reject)
    })
    const reply = once(socket, 'message')
    socket.send('hello')
    const [data] = await reply
    socket.close()
    const headers = (JSON.parse(String(data)) as { headers: IncomingHttpHeaders }).headers
    for (const [name, value] of Object.entries(headers)) {
      if (name === 'authorization') continue // a JWT: random letters
      assert.ok(
        !String(value).includes('6.6.6.') && !String(value).includes('evil') && !String(value).includes('admin'),
        `${name}: ${String(value)} reached the upstream`,
      )
    }
    assert.equal(headers['x-forwarded-for'], '127.0.0.1')
    assert.equal(headers['x-forwarded-host'], new URL(stack.url).host)
    assert.equal(headers['x-forwarded-proto'], 'http')
  })
})

describe('issue 13 item 4: no dot segment, however encoded, reaches an upstream', () => {
  const traversals = [
    '/tomcat/..;/admin',
    '/tomcat/%2e%2e;/admin',
    '/tomcat/.%2e;x/admin',
    '/tomcat/%2E.;jsessionid=1/admin',
    '/tomcat/..;/',
    '/tomcat/a/..;/..;/admin',
    '/tomcat/.;/admin',
    '/tomcat/%2e;/admin',
    '/tomcat/%252e%252e;/admin',
    '/tomcat/%25252e%25252e/admin',
    '/tomcat/..%3b/admin',
    '/tomcat/..%253b/admin',
    '/tomcat/..%5cadmin',
    '/tomcat/..\\admin',
    '/tomcat/a\\..\\..\\admin',
    '/tomcat/%2e%2e%2fadmin',
    '/tomcat/x%2f..%2f..%2fadmin',
    '/tomcat/x%252f..%252fadmin',
    '/tomcat/%2e%2e%5cadmin',
    '/tomcat/%c0%ae%c0%ae;/admin',
    '/tomcat/%ef%bc%8e%ef%bc%8e;/admin',
    '/tomcat/..%00/admin',
    '/tomcat/..%20/admin',
    '/tomcat/..?x',
    '/tomcat/x/..',
    '/tomcat/.',
    '/tomcat/.../admin',
    '/tomcat/..%20.;/admin',
    '/raw/..;/admin',
    '/open/..;/admin',
    '/maybe/%2e%2e;/admin',
  ]

  test('issue 13 item 4: `..;`, `.;`, encoded, double-encoded and backslash traversals answer 400 JSON and the upstream gets nothing', async () => {
    const cookie = cookieOf((await stack.login()).browser)
    for (const path of traversals) {
      const calls = received.length
      const res = await send(path, { ...CSRF, cookie })
      assert.equal(res.status, 400, `${path} → ${res.status} ${res.body}`)
      const body = JSON.parse(res.body) as { error: string; message: string }
      assert.deepEqual(Object.keys(body).sort(), ['error', 'message'], path)
      assert.equal(received.length, calls, `${path} reached the upstream as ${received.at(-1)?.url}`)
    }
  })

  test('issue 13 item 4: a WebSocket handshake with a dot segment is refused before the upstream', async () => {
    const cookie = cookieOf((await stack.login()).browser)
    const upgrades = stack.api.requests().length
    const socket = new WebSocket(`${stack.url.replace('http', 'ws')}/ws/..;/socket`, {
      headers: { cookie, origin: stack.url },
    })
    const status = await new Promise<number>((resolve, reject) => {
      socket.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0))
      socket.once('open', () => reject(new Error('handshake accepted')))
      socket.once('error', reject)
    })
    assert.equal(status, 400)
    assert.equal(stack.api.requests().length, upgrades)
  })

  test('issue 13 item 4: names with dots, matrix parameters and encoded characters still go through', async () => {
    const cookie = cookieOf((await stack.login()).browser)
    for (const [path, upstream] of [
      ['/tomcat/file.txt', '/app/api/file.txt'],
      ['/tomcat/a..b/c', '/app/api/a..b/c'],
      ['/tomcat/.well-known/x', '/app/api/.well-known/x'],
      ['/tomcat/v1;v=2/items', '/app/api/v1;v=2/items'],
      ['/tomcat/%2e%2ex', '/app/api/%2e%2ex'],
      ['/tomcat/q?path=../x', '/app/api/q?path=../x'],
      ['/raw/a%20b', '/a%20b'],
    ]) {
      const res = await send(path!, { ...CSRF, cookie })
      assert.equal(res.status, 200, `${path} → ${res.status} ${res.body}`)
      assert.equal(received.at(-1)!.url, upstream, path)
    }
  })
})

describe("issue 13 item 5: an upstream cannot plant bffgate's cookies", () => {
  // What each line becomes in a browser (RFC 6265bis §5.7): the name is trimmed of spaces and
  // tabs; a line without `=` is a cookie with an empty name, sent back as its bare value; a
  // line starting with `=` is an empty name too, sent back as `__Host-Http-bff=...`.
  const plants = [
    '__Host-Http-bff=planted; Path=/; Secure; HttpOnly',
    '__Host-Http-bff =planted; Path=/; Secure; HttpOnly',
    '__Host-Http-bff\t=planted; Path=/; Secure; HttpOnly',
    '__Host-Http-bff \t =planted; Path=/; Secure',
    '__Host-Http-bff; Path=/; Secure; HttpOnly',
    '__Host-Http-bff',
    '=__Host-Http-bff=planted; Path=/; Secure',
    ' = __Host-Http-bff=planted; Path=/; Secure',
    '=\t__Host-Http-bff; Path=/; Secure',
    '__Host-bff-login-AAAAAAAAAAAA=planted; Path=/; Secure',
    '__Host-bff-login-AAAAAAAAAAAA =planted; Path=/; Secure',
    '=__Host-bff-login-AAAAAAAAAAAA=planted; Path=/; Secure',
    '__Host-bff-login-x; Path=/; Secure',
  ]
  // Cookie names are case-sensitive in browsers (and in bffgate's reader): these are other
  // cookies that can never replace ours, and the upstream may set whatever it likes.
  const others = [
    'theme=dark; Path=/',
    '__host-http-bff=other; Path=/; Secure',
    'x__Host-Http-bff=other; Path=/',
    '=other-nameless; Path=/',
    'a=__Host-Http-bff=1; Path=/',
  ]

  test("issue 13 item 5: Set-Cookie lines a browser reads as bffgate's cookie names are removed, others pass", async () => {
    const { browser } = await stack.login()
    const cookie = cookieOf(browser)
    const ours = browser.cookie(stack.url, '__Host-Http-bff')!.value
    respond = (_req, res) => {
      res.writeHead(200, { 'set-cookie': [...plants, ...others], 'content-length': 2 }).end('{}')
    }
    try {
      for (const path of ['/raw/cookies', '/open/cookies', '/maybe/cookies']) {
        const res = await send(path, { ...CSRF, cookie })
        assert.equal(res.status, 200)
        assert.deepEqual(res.headers['set-cookie'], others, path)
      }
      // Through a browser: the session still works with the cookie bffgate set.
      await browser.get(`${stack.url}/raw/cookies`, CSRF)
      assert.equal(browser.cookie(stack.url, '__Host-Http-bff')!.value, ours)
      assert.equal((await browser.get(`${stack.url}/bff/user`)).status, 200)
    } finally {
      respond = echo
    }
  })
})

describe("issue 13 item 10: answers fetched with a user's token are not stored by shared caches", () => {
  /** The Cache-Control (and related headers) the browser gets for an upstream answer. */
  async function cacheHeaders(
    path: string,
    upstream: Record<string, string | string[]>,
    headers: Record<string, string>,
    status = 200,
  ): Promise<IncomingHttpHeaders> {
    respond = (_req, res) => {
      res.writeHead(status, { ...upstream, 'content-type': 'text/plain' }).end(status === 304 ? undefined : 'x')
    }
    try {
      const res = await send(path, { ...CSRF, ...headers })
      assert.equal(res.status, status, res.body)
      return res.headers
    } finally {
      respond = echo
    }
  }

  const cases: Array<[string | string[] | undefined, string]> = [
    [undefined, 'private'],
    ['max-age=60', 'private, max-age=60'],
    ['public, max-age=60', 'private, max-age=60'],
    ['Public,max-age=60, s-maxage=600', 'private, max-age=60'],
    ['s-maxage=600, proxy-revalidate', 'private'],
    ['private="set-cookie", max-age=60', 'private, max-age=60'],
    [
      'no-cache="set-cookie, x-foo", max-age=60, stale-if-error=300',
      'private, no-cache="set-cookie, x-foo", max-age=60, stale-if-error=300',
    ],
    ['must-understand, no-store', 'private, must-understand, no-store'],
    [['max-age=60', 'public'], 'private, max-age=60'],
    ['no-store', 'no-store'],
    ['private, max-age=30', 'private, max-age=30'],
    ['PRIVATE', 'PRIVATE'],
    ['no-cache, No-Store', 'no-cache, No-Store'],
  ]

  test('issue 13 item 10: Cache-Control becomes private unless the upstream said private or no-store (RFC 9111 §3.5)', async () => {
    const cookie = cookieOf((await stack.login()).browser)
    for (const [upstream, expected] of cases) {
      for (const path of ['/raw/data', '/maybe/data']) {
        const headers = await cacheHeaders(path, upstream === undefined ? {} : { 'cache-control': upstream }, {
          cookie,
        })
        assert.equal(headers['cache-control'], expected, `${path} ${JSON.stringify(upstream)}`)
      }
    }
  })

  test('issue 13 item 10: CDN-targeted cache fields go, Expires stays; a 304 and a streamed answer are marked too', async () => {
    const cookie = cookieOf((await stack.login()).browser)
    const headers = await cacheHeaders(
      '/raw/data',
      {
        'cache-control': 'public, max-age=60',
        'cdn-cache-control': 'max-age=3600',
        'cloudflare-cdn-cache-control': 'max-age=3600',
        'surrogate-control': 'max-age=3600',
        'edge-control': 'cache-maxage=3600',
        expires: 'Thu, 01 Jan 2099 00:00:00 GMT',
      },
      { cookie },
    )
    assert.equal(headers['cache-control'], 'private, max-age=60')
    for (const name of ['cdn-cache-control', 'cloudflare-cdn-cache-control', 'surrogate-control', 'edge-control'])
      assert.equal(headers[name], undefined, name)
    assert.equal(headers.expires, 'Thu, 01 Jan 2099 00:00:00 GMT')
    const notModified = await cacheHeaders(
      '/raw/data',
      { 'cache-control': 'public, max-age=60', etag: '"v1"' },
      { cookie, 'if-none-match': '"v1"' },
      304,
    )
    assert.equal(notModified['cache-control'], 'private, max-age=60')
    respond = (_req, res) => {
      res.writeHead(200, { 'cache-control': 'public, max-age=60' }).end(Buffer.alloc(64 * 1024, 'x'))
    }
    try {
      const streamed = await send('/raw/big', { ...CSRF, cookie })
      assert.equal(streamed.body.length, 64 * 1024)
      assert.equal(streamed.headers['cache-control'], 'private, max-age=60')
    } finally {
      respond = echo
    }
  })

  test("issue 13 item 10: answers fetched without a user's token are left as the upstream sent them", async () => {
    const upstream = { 'cache-control': 'public, max-age=60, s-maxage=600', 'cdn-cache-control': 'max-age=3600' }
    for (const path of ['/open/data', '/maybe/data']) {
      const headers = await cacheHeaders(path, upstream, {})
      assert.equal(headers['cache-control'], upstream['cache-control'], path)
      assert.equal(headers['cdn-cache-control'], upstream['cdn-cache-control'], path)
    }
    const none = await cacheHeaders('/open/data', {}, {})
    assert.equal(none['cache-control'], undefined)
    // A token-less route stays token-less even for a logged-in browser.
    const cookie = cookieOf((await stack.login()).browser)
    assert.equal((await cacheHeaders('/open/data', upstream, { cookie }))['cache-control'], upstream['cache-control'])
  })
})
