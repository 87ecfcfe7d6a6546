import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createServer } from 'node:net'
import { after, before, test } from 'node:test'
import { startDevIdp, type DevIdp } from '../../dev/idp/index.ts'
import { freePort, startTestRedis, type TestRedis } from '../helpers/redis.ts'

const serverEntry = new URL('../../src/server.ts', import.meta.url).pathname

interface Run { code: number | null; stdout: string; stderr: string }

function runServer (env: Record<string, string>, untilListening = false): { done: Promise<Run>; kill: (signal: NodeJS.Signals) => void; listening: Promise<void>; output: () => string } {
  const child = spawn(process.execPath, [serverEntry], { env: { PATH: process.env.PATH ?? '', BFF_ADMIN_PORT: '0', BFF_ADMIN_HOST: '127.0.0.1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  let resolveListening: () => void = () => {}
  const listening = new Promise<void>((resolve) => { resolveListening = resolve })
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString()
    // Both listeners: the browser port's and the admin port's.
    if (untilListening && stdout.split('Server listening').length > 2) resolveListening()
  })
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const done = once(child, 'exit').then(([code]) => ({ code: code as number | null, stdout, stderr }))
  return { done, kill: (signal) => child.kill(signal), listening, output: () => stdout }
}

let idp: DevIdp
let redis: TestRedis
before(async () => {
  redis = await startTestRedis()
  idp = await startDevIdp({ clients: [{ client_id: 'srv', client_secret: 'srv-secret-0123456789', redirect_uris: ['http://127.0.0.1:1/bff/callback'] }], log: () => {} })
})
after(async () => {
  await idp?.close()
  await redis?.stop()
})

test('a bad configuration exits with status 78 and one message naming every bad variable', async () => {
  const { done } = runServer({ BFF_PORT: 'http', BFF_OIDC_SCOPES: 'openid online_access offline_access', BFF_SESSION_SECRET: 'short' })
  const run = await done
  assert.equal(run.code, 78)
  assert.match(run.stderr, /^bffgate: invalid configuration:\n/)
  for (const name of ['BFF_PORT', 'BFF_PUBLIC_URL', 'BFF_OIDC_ISSUER', 'BFF_OIDC_CLIENT_ID', 'BFF_OIDC_CLIENT_SECRET', 'BFF_SESSION_SECRET', 'BFF_OIDC_SCOPES']) {
    assert.ok(run.stderr.includes(`"${name}"`), `${name} not named in:\n${run.stderr}`)
  }
  assert.ok(!run.stderr.includes('short'), 'a secret value was printed')
})

test('an unreachable issuer stops the start with the reason and a non-zero status', async () => {
  const port = await freePort()
  const { done } = runServer({
    BFF_PORT: String(port), BFF_HOST: '127.0.0.1', BFF_PUBLIC_URL: `http://127.0.0.1:${port}`,
    BFF_OIDC_ISSUER: `http://127.0.0.1:${await freePort()}`, BFF_ALLOW_INSECURE_HTTP: 'true',
    BFF_OIDC_CLIENT_ID: 'srv', BFF_OIDC_CLIENT_SECRET: 'srv-secret-0123456789',
    BFF_SESSION_SECRET: 'server-test-secret-0123456789-abcdefghijklmnop', BFF_REDIS_URL: redis.url,
  })
  const run = await done
  assert.equal(run.code, 1)
  assert.match(run.stderr, /cannot start: discovery of http:\/\/127\.0\.0\.1:\d+ failed/)
})

test('a port already in use stops the start with the address named and status 1', async (t) => {
  const blocker = createServer()
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
  t.after(() => blocker.close())
  const port = (blocker.address() as { port: number }).port
  const { done } = runServer({
    BFF_PORT: String(port), BFF_HOST: '127.0.0.1', BFF_PUBLIC_URL: `http://127.0.0.1:${port}`,
    BFF_OIDC_ISSUER: idp.issuer, BFF_ALLOW_INSECURE_HTTP: 'true',
    BFF_OIDC_CLIENT_ID: 'srv', BFF_OIDC_CLIENT_SECRET: 'srv-secret-0123456789',
    BFF_SESSION_SECRET: 'server-test-secret-0123456789-abcdefghijklmnop', BFF_REDIS_URL: redis.url,
  })
  const run = await done
  assert.equal(run.code, 1)
  assert.match(run.stderr, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}: .*EADDRINUSE`))
})

test('with a valid configuration it serves, and SIGTERM stops it with status 0', async () => {
  const port = await freePort()
  const server = runServer({
    BFF_PORT: String(port), BFF_HOST: '127.0.0.1', BFF_PUBLIC_URL: `http://127.0.0.1:${port}`,
    BFF_OIDC_ISSUER: idp.issuer, BFF_ALLOW_INSECURE_HTTP: 'true',
    BFF_OIDC_CLIENT_ID: 'srv', BFF_OIDC_CLIENT_SECRET: 'srv-secret-0123456789',
    BFF_SESSION_SECRET: 'server-test-secret-0123456789-abcdefghijklmnop', BFF_REDIS_URL: redis.url,
  }, true)
  await Promise.race([server.listening, server.done.then((r) => { throw new Error(`exited early: ${r.stderr}${r.stdout}`) })])
  const adminPort = /"listener":"admin"[^\n]*Server listening at http:\/\/127\.0\.0\.1:(\d+)/.exec(server.output())?.[1]
  assert.ok(adminPort !== undefined, 'the admin listener logged its address')
  assert.equal((await fetch(`http://127.0.0.1:${adminPort}/readyz`)).status, 200)
  assert.match(await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text(), /# TYPE bff_http_requests_total counter/)
  assert.equal((await fetch(`http://127.0.0.1:${port}/metrics`)).status, 404)
  const health = await fetch(`http://127.0.0.1:${port}/healthz`)
  assert.equal(health.status, 200)
  const ready = await fetch(`http://127.0.0.1:${port}/readyz`)
  assert.equal(ready.status, 200)
  const login = await fetch(`http://127.0.0.1:${port}/bff/login`, { redirect: 'manual' })
  assert.equal(login.status, 302)
  assert.ok(login.headers.get('location')?.startsWith(`${idp.issuer}/`))
  server.kill('SIGTERM')
  const run = await server.done
  assert.equal(run.code, 0, run.stderr)
  // One JSON line per event; the stop is logged.
  assert.ok(run.stdout.split('\n').some((line) => line.includes('"event":"server.stopping"')))
})
