import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createServer, type AddressInfo, type Socket } from 'node:net'
import { after, before, test } from 'node:test'
import { startDevIdp, type DevIdp } from '../../dev/idp/index.ts'
import { setTimeout as sleep } from 'node:timers/promises'
import { freePort, startRedisServer, startTestRedis, type TestRedis } from '../helpers/redis.ts'

const serverEntry = new URL('../../src/server.ts', import.meta.url).pathname

interface Run {
  code: number | null
  stdout: string
  stderr: string
}

function runServer(
  env: Record<string, string>,
  untilListening = false,
): {
  done: Promise<Run>
  kill: (signal: NodeJS.Signals) => void
  listening: Promise<void>
  output: () => string
  stderr: () => string
} {
  const child = spawn(process.execPath, [serverEntry], {
    env: { PATH: process.env.PATH ?? '', BFF_ADMIN_PORT: '0', BFF_ADMIN_HOST: '127.0.0.1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  let resolveListening: () => void = () => {}
  const listening = new Promise<void>((resolve) => {
    resolveListening = resolve
  })
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString()
    // Both listeners: the browser port's and the admin port's.
    if (untilListening && stdout.split('Server listening').length > 2) resolveListening()
  })
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString()
  })
  const done = once(child, 'exit').then(([code]) => ({ code: code as number | null, stdout, stderr }))
  return {
    done,
    kill: (signal) => {
      if (child.exitCode === null) child.kill(signal)
    },
    listening,
    output: () => stdout,
    stderr: () => stderr,
  }
}

let idp: DevIdp
let redis: TestRedis
before(async () => {
  redis = await startTestRedis()
  idp = await startDevIdp({
    clients: [
      { client_id: 'srv', client_secret: 'srv-secret-0123456789', redirect_uris: ['http://127.0.0.1:1/bff/callback'] },
    ],
    log: () => {},
  })
})
after(async () => {
  await idp?.close()
  await redis?.stop()
})

test('a bad configuration exits with status 78 and one message naming every bad variable', async () => {
  const { done } = runServer({
    BFF_PORT: 'http',
    BFF_OIDC_SCOPES: 'openid online_access offline_access',
    BFF_SESSION_SECRET: 'short',
  })
  const run = await done
  assert.equal(run.code, 78)
  assert.match(run.stderr, /^bffgate: invalid configuration:\n/)
  for (const name of [
    'BFF_PORT',
    'BFF_PUBLIC_URL',
    'BFF_OIDC_ISSUER',
    'BFF_OIDC_CLIENT_ID',
    'BFF_OIDC_CLIENT_SECRET',
    'BFF_SESSION_SECRET',
    'BFF_OIDC_SCOPES',
  ]) {
    assert.ok(run.stderr.includes(`"${name}"`), `${name} not named in:\n${run.stderr}`)
  }
  assert.ok(!run.stderr.includes('short'), 'a secret value was printed')
})

/** A complete environment for `port`, against the shared IdP and Redis unless overridden. */
function envFor(port: number, overrides: Record<string, string> = {}): Record<string, string> {
  return {
    BFF_PORT: String(port),
    BFF_HOST: '127.0.0.1',
    BFF_PUBLIC_URL: `http://127.0.0.1:${port}`,
    BFF_OIDC_ISSUER: idp.issuer,
    BFF_ALLOW_INSECURE_HTTP: 'true',
    BFF_OIDC_CLIENT_ID: 'srv',
    BFF_OIDC_CLIENT_SECRET: 'srv-secret-0123456789',
    BFF_SESSION_SECRET: 'server-test-secret-0123456789-abcdefghijklmnop',
    BFF_REDIS_URL: redis.url,
    ...overrides,
  }
}

async function json(url: string): Promise<{ status: number; body: unknown }> {
  const response = await fetch(url)
  return { status: response.status, body: await response.json() }
}

/** Polls until `check` holds (or fails after `ms`). */
async function until(what: string, check: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) assert.fail(`timed out waiting until ${what}`)
    await sleep(100)
  }
}

test('an unreachable issuer is retried, then stops the start with the cause behind "fetch failed" and a non-zero status', async () => {
  const port = await freePort()
  const idpPort = await freePort()
  const { done } = runServer(
    envFor(port, { BFF_OIDC_ISSUER: `http://127.0.0.1:${idpPort}`, BFF_STARTUP_TIMEOUT_SECONDS: '2' }),
  )
  const run = await done
  assert.equal(run.code, 1)
  assert.match(
    run.stderr,
    /waiting for the identity provider: discovery of http:\/\/127\.0\.0\.1:\d+ failed: fetch failed \(ECONNREFUSED 127\.0\.0\.1:\d+\); retrying in 0\.5 s/,
  )
  assert.match(
    run.stderr,
    new RegExp(
      `cannot start: discovery of http://127\\.0\\.0\\.1:${idpPort} failed: fetch failed \\(ECONNREFUSED 127\\.0\\.0\\.1:${idpPort}\\)`,
    ),
  )
})

test("an issuer that differs from the IdP's own is not retried, and the message shows the issuer the IdP reported", async () => {
  const port = await freePort()
  const wrong = idp.issuer.replace('127.0.0.1', 'localhost')
  const started = Date.now()
  const run = await runServer(envFor(port, { BFF_OIDC_ISSUER: wrong })).done
  assert.equal(run.code, 1)
  assert.ok(Date.now() - started < 15_000, 'gave up at once')
  assert.ok(
    run.stderr.includes(`the IdP reports the issuer "${idp.issuer}"; set "BFF_OIDC_ISSUER" to exactly that`),
    run.stderr,
  )
  assert.doesNotMatch(run.stderr, /waiting for/)
})

test('an unreachable Redis names the variable that points at it and the cause', async () => {
  const port = await freePort()
  const redisPort = await freePort()
  const run = await runServer(
    envFor(port, {
      BFF_REDIS_URL: `redis://:hunter2-secret@127.0.0.1:${redisPort}/0`,
      BFF_STARTUP_TIMEOUT_SECONDS: '1',
    }),
  ).done
  assert.equal(run.code, 1)
  assert.match(
    run.stderr,
    new RegExp(
      `cannot start: Redis at "BFF_REDIS_URL" \\(redis://127\\.0\\.0\\.1:${redisPort}/0\\) is unreachable: .*ECONNREFUSED 127\\.0\\.0\\.1:${redisPort}`,
    ),
  )
  assert.ok(!run.stderr.includes('hunter2'), 'the password was printed')

  const sentinelPort = await freePort()
  const sentinel = await runServer(
    envFor(port, {
      BFF_REDIS_SENTINELS: `127.0.0.1:${sentinelPort}`,
      BFF_REDIS_SENTINEL_MASTER_NAME: 'mymaster',
      BFF_STARTUP_TIMEOUT_SECONDS: '1',
    }),
  ).done
  assert.equal(sentinel.code, 1)
  assert.match(
    sentinel.stderr,
    new RegExp(`cannot start: Redis at "BFF_REDIS_SENTINELS" \\(127\\.0\\.0\\.1:${sentinelPort}, master "mymaster"`),
  )
})

test('a port beyond 65535 and a mistyped variable are reported together as a configuration error', async () => {
  const env = envFor(8080, { BFF_PORT: '99999', BFF_ADMIN_PORT: '70000', BFF_SESION_SECRET: 'x' })
  delete env.BFF_SESSION_SECRET
  const run = await runServer(env).done
  assert.equal(run.code, 78)
  assert.match(run.stderr, /"BFF_PORT" must be at most 65535, got "99999"/)
  assert.match(run.stderr, /"BFF_ADMIN_PORT" must be at most 65535, got "70000"/)
  assert.match(run.stderr, /"BFF_SESSION_SECRET" is required/)
  assert.match(run.stderr, /note: unknown setting "BFF_SESION_SECRET" ignored: did you mean "BFF_SESSION_SECRET"\?/)
})

test('an IdP that comes up late: the admin port says alive but not ready meanwhile, then the gateway starts', async (t) => {
  const lateIdp = await startDevIdp({
    clients: [
      { client_id: 'srv', client_secret: 'srv-secret-0123456789', redirect_uris: ['http://127.0.0.1:1/bff/callback'] },
    ],
    log: () => {},
  })
  t.after(() => lateIdp.close())
  await lateIdp.stop()
  const [port, adminPort] = [await freePort(), await freePort()]
  const server = runServer(envFor(port, { BFF_OIDC_ISSUER: lateIdp.issuer, BFF_ADMIN_PORT: String(adminPort) }), true)
  t.after(() => server.kill('SIGKILL'))
  await until('the admin port answers', async () => (await fetch(`http://127.0.0.1:${adminPort}/healthz`)).ok)
  assert.deepEqual(await json(`http://127.0.0.1:${adminPort}/readyz`), { status: 503, body: { status: 'starting' } })
  await assert.rejects(
    fetch(`http://127.0.0.1:${port}/healthz`),
    'the browser port is not open before the start completes',
  )
  await until('it logs a retry', async () => server.stderr().includes('waiting for the identity provider'))
  await lateIdp.start()
  await Promise.race([
    server.listening,
    server.done.then((r) => {
      throw new Error(`exited: ${r.stderr}`)
    }),
  ])
  await until(
    'ready on the admin port',
    async () => (await fetch(`http://127.0.0.1:${adminPort}/readyz`)).status === 200,
  )
  assert.equal((await fetch(`http://127.0.0.1:${port}/bff/login`, { redirect: 'manual' })).status, 302)
  assert.match(await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text(), /bff_build_info/)
})

test('a Redis that comes up late: the start waits for it instead of exiting', async (t) => {
  const lateRedis = await startRedisServer()
  t.after(() => lateRedis.stop())
  await lateRedis.kill()
  const [port, adminPort] = [await freePort(), await freePort()]
  const server = runServer(envFor(port, { BFF_REDIS_URL: lateRedis.url, BFF_ADMIN_PORT: String(adminPort) }), true)
  t.after(() => server.kill('SIGKILL'))
  await until('it logs a retry naming BFF_REDIS_URL', async () =>
    server.stderr().includes(`waiting for Redis at "BFF_REDIS_URL" (redis://127.0.0.1:${lateRedis.port})`),
  )
  assert.deepEqual(await json(`http://127.0.0.1:${adminPort}/readyz`), { status: 503, body: { status: 'starting' } })
  await lateRedis.restart()
  await Promise.race([
    server.listening,
    server.done.then((r) => {
      throw new Error(`exited: ${r.stderr}`)
    }),
  ])
  await until(
    'ready on the admin port',
    async () => (await fetch(`http://127.0.0.1:${adminPort}/readyz`)).status === 200,
  )
  assert.equal((await fetch(`http://127.0.0.1:${port}/readyz`)).status, 200)
})

test('a port already in use stops the start with the address named and status 1', async (t) => {
  const blocker = createServer()
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
  t.after(() => blocker.close())
  const port = (blocker.address() as { port: number }).port
  const { done } = runServer(envFor(port))
  const run = await done
  assert.equal(run.code, 1)
  assert.match(run.stderr, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}: .*EADDRINUSE`))
})

test('with a valid configuration it serves, and SIGTERM stops it with status 0', async () => {
  const port = await freePort()
  const server = runServer(envFor(port), true)
  await Promise.race([
    server.listening,
    server.done.then((r) => {
      throw new Error(`exited early: ${r.stderr}${r.stdout}`)
    }),
  ])
  const adminPort = /"listener":"admin"[^\n]*Server listening at http:\/\/127\.0\.0\.1:(\d+)/.exec(server.output())?.[1]
  assert.ok(adminPort !== undefined, 'the admin listener logged its address')
  assert.equal((await fetch(`http://127.0.0.1:${adminPort}/readyz`)).status, 200)
  assert.match(
    await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text(),
    /# TYPE bff_http_requests_total counter/,
  )
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

test('a second signal during the drain stops at once with status 1, and the access lines still held are written', async (t) => {
  // An upstream that never answers keeps one request in flight, so the drain cannot finish.
  const held: Socket[] = []
  const upstream = createServer((socket) => {
    held.push(socket)
  })
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve))
  t.after(() => {
    for (const socket of held) socket.destroy()
    upstream.close()
  })
  const upstreamPort = (upstream.address() as AddressInfo).port
  const port = await freePort()
  const server = runServer(
    envFor(port, {
      BFF_ROUTES: JSON.stringify([{ path: '/slow', upstream: `http://127.0.0.1:${upstreamPort}`, token: 'none' }]),
    }),
    true,
  )
  await Promise.race([
    server.listening,
    server.done.then((r) => {
      throw new Error(`exited early: ${r.stderr}${r.stdout}`)
    }),
  ])
  const stuck = fetch(`http://127.0.0.1:${port}/slow/x`, { headers: { 'x-csrf': '1' } }).catch(() => undefined)
  while (held.length === 0) await sleep(10)
  // Its access line is held (batched for up to 50 ms) when the two signals arrive.
  assert.equal((await fetch(`http://127.0.0.1:${port}/bff/login`, { redirect: 'manual' })).status, 302)
  server.kill('SIGTERM')
  await sleep(5)
  server.kill('SIGTERM')
  const run = await server.done
  await stuck
  assert.equal(run.code, 1, run.stderr)
  const lines = run.stdout.split('\n')
  assert.ok(
    lines.some((line) => line.includes('"event":"server.stop_forced"')),
    run.stdout,
  )
  assert.ok(
    lines.some((line) => line.includes('"route":"/bff/login"') && line.includes('"status":302')),
    `the login's access line was written:\n${run.stdout}`,
  )
})
