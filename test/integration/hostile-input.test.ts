import assert from 'node:assert/strict'
import { request as httpRequest } from 'node:http'
import { after, before, test } from 'node:test'
import * as fc from 'fast-check'
import type { Redis } from 'ioredis'
import { startTestRedis, type TestRedis } from '../helpers/redis.ts'
import { startStack, type Stack } from '../helpers/stack.ts'

/**
 * Property-based attacks on every endpoint and the proxy: random and hostile methods, paths,
 * query strings, cookies, headers and bodies. Never a 5xx, never a crash, and never a write
 * to Redis for a request without a valid session.
 */

let redis: TestRedis
let stack: Stack
let monitor: Awaited<ReturnType<Redis['monitor']>>
const writes: string[][] = []
/** Writes of the rate limiter's per-address counters (bounded and expiring; checked apart). */
const rateLimitWrites: string[][] = []
const WRITE_COMMANDS = new Set([
  'set',
  'hset',
  'sadd',
  'srem',
  'del',
  'unlink',
  'expire',
  'pexpire',
  'evalsha',
  'eval',
  'getdel',
  'publish',
  'multi',
])

before(async () => {
  redis = await startTestRedis()
  // The monitor starts while this Redis is still quiet: ioredis fails ("Command queue state
  // error") when another client's command is echoed before its MONITOR has been acknowledged.
  monitor = await redis.client().monitor()
  let watching = false
  monitor.on('monitor', (_time: string, args: string[]) => {
    if (
      !watching ||
      !WRITE_COMMANDS.has(String(args[0]).toLowerCase()) ||
      !args.some((a) => String(a).includes(stack.keyPrefix))
    )
      return
    if (args.some((a) => String(a).startsWith(`${stack.keyPrefix}ratelimit:`))) rateLimitWrites.push(args)
    else writes.push(args)
  })
  stack = await startStack({ redis, backchannel: true })
  // What the gateway writes while starting is not a request's doing.
  watching = true
})
after(async () => {
  monitor?.disconnect()
  await stack?.close()
  await redis?.stop()
})

interface RawResponse {
  status: number
  body: string
  headers: Record<string, string | string[] | undefined>
}

/** Raw HTTP, so that paths and headers reach bffgate exactly as generated. */
function send(
  method: string,
  path: string,
  headers: Record<string, string>,
  body: Buffer | undefined,
): Promise<RawResponse> {
  const { hostname, port } = new URL(stack.url)
  return new Promise((resolve, reject) => {
    // A fresh connection per request: a reused one may have been closed by an early answer.
    const req = httpRequest(
      {
        agent: false,
        host: hostname,
        port,
        method,
        path,
        headers: { ...headers, ...(body && { 'content-length': String(body.length) }) },
      },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), headers: res.headers }),
        )
      },
    )
    req.on('error', reject)
    // A hang is a failure with its request named, not a stuck run.
    req.setTimeout(15_000, () => req.destroy(new Error(`${method} ${path}: no answer within 15 s`)))
    req.end(body)
  })
}

/** Stands for the gateway's own origin, known only once the stack runs. */
const SELF = '<self>'
const withOrigin = (h: Record<string, string>): Record<string, string> =>
  h.origin === SELF ? { ...h, origin: stack.url } : h

const token = fc.stringMatching(/^[A-Za-z0-9%._~!$&'()*+,;=:@\-/?#[\]]{0,40}$/)
const hostile = fc.oneof(
  fc.constantFrom(
    '..',
    '%2e%2e',
    '%2f',
    '//',
    '\\',
    '%00',
    '%ff',
    'http://evil.example',
    '%E0%A4%A',
    ';',
    '%C3%A9',
    '%3Cscript%3E',
    "'",
    '"',
    '{',
    '$',
    '*',
  ),
  token,
)
const path = fc
  .tuple(
    fc.constantFrom(
      '/bff/login',
      '/bff/callback',
      '/bff/user',
      '/bff/logout',
      '/bff/logged-out',
      '/bff/backchannel-logout',
      '/bff/',
      '/api',
      '/api/',
      '/api/x',
      '/healthz',
      '/readyz',
      '/',
      '/nope',
      '//api',
      '/API/x',
    ),
    fc.array(hostile, { maxLength: 4 }),
    fc.option(fc.array(fc.tuple(hostile, hostile), { maxLength: 4 })),
  )
  .map(([base, segments, query]) => {
    const joined = `${base}${segments.map((s) => (s.startsWith('/') ? s : `/${s}`)).join('')}`
    return query === null ? joined : `${joined}?${query.map(([k, v]) => `${k}=${v}`).join('&')}`
  })
const cookieValue = fc.oneof(
  // Only what a client can put in a Cookie header: no separators, controls or non-ASCII.
  // oxlint-disable-next-line no-control-regex
  fc.string({ maxLength: 80 }).map((s) => s.replace(/[;\r\n,\u0000-\u001f\u007f-\uffff]/g, '')),
  fc.uint8Array({ minLength: 50, maxLength: 60 }).map((b) => Buffer.from(b).toString('base64url')),
  fc.constant('A'.repeat(71)),
  fc.constant('x'.repeat(6000)),
)
const headers = fc
  .record(
    {
      cookie: fc.option(
        fc
          .tuple(fc.constantFrom('__Host-Http-bff', '__Host-bff-login', 'other'), cookieValue)
          .map(([n, v]) => `${n}=${v}`),
      ),
      'x-csrf': fc.option(fc.constantFrom('1', '0', '', 'true')),
      origin: fc.option(fc.constantFrom(SELF, 'https://evil.example', 'null', '')),
      'sec-fetch-site': fc.option(fc.constantFrom('same-origin', 'cross-site', 'none', 'same-site', '??')),
      'content-type': fc.option(
        fc.constantFrom(
          'application/json',
          'application/x-www-form-urlencoded',
          'text/plain',
          'multipart/form-data; boundary=x',
          'application/octet-stream',
          '*/*',
          'garbage',
        ),
      ),
      authorization: fc.option(fc.constantFrom('Bearer x', 'Basic Zm9vOmJhcg==', 'DPoP y')),
    },
    { requiredKeys: [] },
  )
  .map(
    (h) =>
      Object.fromEntries(Object.entries(h).filter(([, v]) => v !== null && v !== undefined)) as Record<string, string>,
  )
const body = fc.option(
  fc.oneof(
    fc.uint8Array({ maxLength: 2048 }).map((b) => Buffer.from(b)),
    fc.json().map((j) => Buffer.from(j)),
    fc.constant(Buffer.from('logout_token=eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.')),
    fc.constant(Buffer.alloc(200 * 1024, 'a')),
  ),
)
const method = fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD', 'PROPFIND')

test('random and hostile requests never get a 5xx and never write to Redis without a session', async () => {
  let requests = 0
  await fc.assert(
    fc.asyncProperty(method, path, headers, body, async (m, p, h, b) => {
      const withBody = m === 'GET' || m === 'HEAD' ? undefined : (b ?? undefined)
      const res = await send(m, p, withOrigin(h), withBody)
      requests++
      assert.ok(res.status < 500, `${m} ${p} ${JSON.stringify(h)} → ${res.status} ${res.body.slice(0, 200)}`)
      if (res.status >= 400 && m !== 'HEAD' && res.body !== '') {
        const parsed = JSON.parse(res.body) as { error?: unknown }
        assert.equal(typeof parsed.error, 'string', `${m} ${p} → a non-JSON error body`)
      }
    }),
    { numRuns: 400, seed: Number(process.env.FC_SEED ?? Date.now() % 2 ** 31) },
  )
  assert.equal(requests >= 400, true)
  assert.deepEqual(writes, [], 'an unauthenticated request wrote to Redis')
  // Only the rate limiter counts unauthenticated requests: one expiring counter per limited
  // endpoint and client address, whatever the requests were.
  const counters = new Set(
    rateLimitWrites.flatMap((args) => args.filter((a) => String(a).startsWith(`${stack.keyPrefix}ratelimit:`))),
  )
  assert.ok(counters.size <= 3, `rate-limit counters: ${[...counters].join(', ')}`)
  for (const key of counters) {
    assert.ok(
      rateLimitWrites.some(
        (args) => String(args[0]).toLowerCase() === 'pexpire' && args[1] === key && Number(args[2]) <= 60_000,
      ),
      `${key} does not expire`,
    )
  }
  assert.equal((await fetch(`${stack.url}/healthz`)).status, 200, 'the server is still up')
  // The watcher itself works: a login writes, and it sees it.
  await stack.login()
  for (let i = 0; i < 50 && writes.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 20))
  assert.ok(
    writes.some((args) => String(args[0]).toLowerCase() === 'hset'),
    'the Redis monitor saw no write at all',
  )
})

test('the same hostile requests carrying a real session cookie never get a 5xx either', async () => {
  const { browser } = await stack.login()
  const session = browser.cookies(stack.url).find((c) => c.name === '__Host-Http-bff')!
  await fc.assert(
    fc.asyncProperty(method, path, headers, body, async (m, p, h, b) => {
      const withBody = m === 'GET' || m === 'HEAD' ? undefined : (b ?? undefined)
      const res = await send(m, p, { ...withOrigin(h), cookie: `__Host-Http-bff=${session.value}` }, withBody)
      assert.ok(res.status < 500, `${m} ${p} ${JSON.stringify(h)} → ${res.status} ${res.body.slice(0, 200)}`)
    }),
    { numRuns: 200, seed: Number(process.env.FC_SEED ?? Date.now() % 2 ** 31) },
  )
})

test("bffgate's own answers carry the security headers, and /bff/* is never cached", async () => {
  for (const target of ['/bff/user', '/bff/login', '/healthz', '/nope']) {
    const res = await fetch(`${stack.url}${target}`, { redirect: 'manual' })
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff', target)
    assert.equal(res.headers.get('x-frame-options'), 'DENY', target)
    assert.equal(res.headers.get('content-security-policy'), "frame-ancestors 'none'", target)
    assert.equal(res.headers.get('referrer-policy'), 'no-referrer', target)
    if (target.startsWith('/bff/')) assert.equal(res.headers.get('cache-control'), 'no-store', target)
  }
})

test("a body over the limit of bffgate's own endpoints is refused with 413 JSON, not read whole", async () => {
  const res = await send(
    'POST',
    '/bff/logout',
    { 'x-csrf': '1', 'content-type': 'application/json' },
    Buffer.alloc(200 * 1024, 'a'),
  )
  assert.equal(res.status, 413)
  assert.equal((JSON.parse(res.body) as { error: string }).error, 'bad_request')
})
