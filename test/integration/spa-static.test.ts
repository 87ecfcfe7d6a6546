/**
 * Issue 17 item 2 over real HTTP: bffgate serves a built SPA like a static host: history
 * fallback for deep links, gzip and brotli (pre-compressed files first), `index.html` never
 * cached, hashed assets immutable for a year, and a strict, configurable Content-Security-Policy.
 */
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { brotliCompressSync, brotliDecompressSync, gunzipSync, gzipSync } from 'node:zlib'
import { after, before, describe, test } from 'node:test'
import { DEFAULT_CONTENT_SECURITY_POLICY } from '../../src/config/csp.ts'
import { startStack, type Stack } from '../helpers/stack.ts'

let dir: string
let stack: Stack
const INDEX = `<!doctype html><html><head><title>orders</title><script type="module" src="/assets/index-BXq3k9aF.js"></script></head><body><div id="app">${'<p>spa</p>'.repeat(200)}</div></body></html>`
const BUNDLE = `export const orders = ${JSON.stringify(Array.from({ length: 300 }, (_, i) => ({ id: i, total: i * 3 })))}\n`

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'bffgate-spa-'))
  mkdirSync(join(dir, 'assets'))
  mkdirSync(join(dir, 'legal'))
  writeFileSync(join(dir, 'index.html'), INDEX)
  writeFileSync(join(dir, 'assets', 'index-BXq3k9aF.js'), BUNDLE)
  // Pre-compressed siblings whose content says where it came from: only the .br/.gz file has it.
  writeFileSync(join(dir, 'assets', 'index-BXq3k9aF.js.br'), brotliCompressSync(`${BUNDLE}// from the .br file\n`))
  writeFileSync(join(dir, 'assets', 'index-BXq3k9aF.js.gz'), gzipSync(`${BUNDLE}// from the .gz file\n`))
  writeFileSync(join(dir, 'assets', 'logo.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>')
  writeFileSync(join(dir, 'config.js'), `window.config = ${JSON.stringify({ padding: 'x'.repeat(2000) })}\n`)
  writeFileSync(join(dir, 'legal', 'index.html'), '<!doctype html><title>legal</title>')
  stack = await startStack({
    env: { BFF_STATIC_DIR: dir },
    routes: (api) => [
      { path: '/api', upstream: api },
      { path: '/reports', upstream: api },
    ],
  })
})
after(async () => {
  await stack?.close()
  rmSync(dir, { recursive: true, force: true })
})

/** A raw GET (no automatic decompression), as a browser's network layer sees it. */
async function get(
  path: string,
  headers: Record<string, string> = {},
  { base = stack.url, method = 'GET' } = {},
): Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${base}${path}`, { headers, method }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }))
    })
    req.on('error', reject)
    req.end()
  })
}

const navigate = {
  'sec-fetch-mode': 'navigate',
  'sec-fetch-dest': 'document',
  'sec-fetch-site': 'none',
  accept: 'text/html,application/xhtml+xml,*/*;q=0.8',
}

describe('issue 17 item 2: the SPA served like a static host', () => {
  test("a navigation to a deep link gets index.html, never cached, with the CSP (an old browser's Accept: text/html too); bffgate's endpoints, routes, assets, fetches and other methods never do", async () => {
    for (const headers of [navigate, { accept: 'text/html' }]) {
      for (const path of ['/orders/42', '/orders/42/', '/settings/profile?tab=2', '/bffx', '/apix/1']) {
        const res = await get(path, headers)
        assert.equal(res.status, 200, `${path} ${JSON.stringify(headers)}`)
        assert.match(String(res.headers['content-type']), /^text\/html/)
        assert.equal(res.body.toString(), INDEX)
        assert.equal(res.headers['cache-control'], 'no-cache')
        assert.equal(res.headers['content-security-policy'], DEFAULT_CONTENT_SECURITY_POLICY)
        assert.match(String(res.headers.vary), /sec-fetch-mode/i, 'a cache must not serve this HTML to a fetch')
        assert.match(String(res.headers.vary), /\baccept\b/i)
      }
    }
    // A real folder with its own index.html is still itself.
    assert.match((await get('/legal/', navigate)).body.toString(), /<title>legal/)
    assert.match((await get('/legal', navigate)).body.toString(), /<title>legal/)

    // No fallback for bffgate's endpoints, proxied routes, asset-looking paths, fetches or other methods.
    for (const path of [
      '/bff/nope',
      '/bff',
      '/healthz/x',
      '/metrics/x',
      '/assets/missing-Ab12Cd34.js',
      '/favicon.ico',
      '/orders/42.json',
    ]) {
      const res = await get(path, navigate)
      assert.equal(res.status, 404, path)
      assert.deepEqual(JSON.parse(res.body.toString()), { error: 'not_found', message: 'Not found' })
    }
    // A proxied route answers for itself (here: the API wants a session), even to a navigation.
    assert.equal((await get('/reports/2026', navigate)).status, 403)
    // A script's fetch of an unknown path is a JSON 404, not HTML it cannot parse.
    for (const headers of [{ 'sec-fetch-mode': 'cors', accept: '*/*' }, { accept: 'application/json' }, {}] as Array<
      Record<string, string>
    >) {
      const res = await get('/orders/42', headers)
      assert.equal(res.status, 404)
      assert.match(String(res.headers['content-type']), /^application\/json/)
    }
    for (const method of ['POST', 'PUT', 'DELETE'])
      assert.equal((await get('/orders/42', navigate, { method })).status, 404, method)
  })

  test("brotli and gzip: pre-compressed files when present, compressed on the fly otherwise, plain when not accepted; bffgate's own answers untouched", async () => {
    const br = await get('/assets/index-BXq3k9aF.js', { 'accept-encoding': 'gzip, deflate, br' })
    assert.equal(br.headers['content-encoding'], 'br')
    assert.match(String(br.headers.vary), /accept-encoding/i)
    assert.match(String(br.headers['content-type']), /javascript/)
    assert.equal(brotliDecompressSync(br.body).toString(), `${BUNDLE}// from the .br file\n`)
    const gz = await get('/assets/index-BXq3k9aF.js', { 'accept-encoding': 'gzip' })
    assert.equal(gz.headers['content-encoding'], 'gzip')
    assert.equal(gunzipSync(gz.body).toString(), `${BUNDLE}// from the .gz file\n`)
    const plain = await get('/assets/index-BXq3k9aF.js')
    assert.equal(plain.headers['content-encoding'], undefined)
    assert.equal(plain.body.toString(), BUNDLE)

    // No pre-compressed sibling: compressed on the fly, index.html and the fallback included.
    for (const path of ['/config.js', '/', '/orders/42']) {
      const dynBr = await get(path, { ...navigate, 'accept-encoding': 'br' })
      assert.equal(dynBr.headers['content-encoding'], 'br', path)
      assert.ok(brotliDecompressSync(dynBr.body).length > dynBr.body.length * 2, `${path} is not really compressed`)
      const dynGz = await get(path, { ...navigate, 'accept-encoding': 'gzip' })
      assert.equal(dynGz.headers['content-encoding'], 'gzip', path)
      gunzipSync(dynGz.body)
    }

    // bffgate's own answers keep their headers: never compressed, never the SPA's CSP.
    const user = await get('/bff/user', { 'accept-encoding': 'gzip, br' })
    assert.equal(user.status, 401)
    assert.equal(user.headers['content-encoding'], undefined)
    assert.equal(user.headers['cache-control'], 'no-store')
    assert.equal(user.headers['content-security-policy'], "frame-ancestors 'none'")
  })

  test('hashed assets are cached for a year as immutable; index.html and unhashed files are revalidated', async () => {
    const hashed = await get('/assets/index-BXq3k9aF.js', { 'accept-encoding': 'br' })
    assert.equal(hashed.headers['cache-control'], 'public, max-age=31536000, immutable')
    assert.equal(
      (await get('/assets/index-BXq3k9aF.js')).headers['cache-control'],
      'public, max-age=31536000, immutable',
    )
    for (const path of ['/', '/index.html', '/config.js', '/assets/logo.svg']) {
      const res = await get(path)
      assert.equal(res.headers['cache-control'], 'no-cache', path)
      assert.ok(res.headers.etag, `${path} has an ETag to revalidate with`)
      assert.equal((await get(path, { 'if-none-match': String(res.headers.etag) })).status, 304, path)
    }
  })
})

describe('issue 17 item 2: a configured Content-Security-Policy', () => {
  test("replaces the strict default on the SPA's files", async (t) => {
    const policy = "default-src 'self'; script-src 'self' 'sha256-abc='; connect-src 'self' https://events.example.com"
    const other = await startStack({ env: { BFF_STATIC_DIR: dir, BFF_CONTENT_SECURITY_POLICY: policy } })
    t.after(() => other.close())
    const res = await get('/orders/7', navigate, { base: other.url })
    assert.equal(res.status, 200)
    assert.equal(res.headers['content-security-policy'], policy)
  })
})
