/**
 * `npm run fault` (issue 14 item 4): the fault run, with bffgate's default settings.
 *
 * Two bffgate replicas (real processes, `node src/server.ts`), one redis-server with
 * append-only persistence, the development IdP issuing 20 s access tokens, the demo API as
 * upstream, 40 logged-in sessions and 32 concurrent request loops spread over both replicas
 * (as a load balancer would: a replica that refuses connections is skipped). Faults, at these
 * shares of the run (60 s by default): Redis killed at 15 s and restarted 2 s later; replica B
 * killed at 35 s and started again; the IdP's token endpoint answering 503 from 45 to 50 s.
 *
 * Reports per phase: requests, over 1 s and over 5 s, the longest, 5xx, token-endpoint calls
 * per session per token lifetime, and sessions lost at the end. Everything runs on 127.0.0.1
 * and stops by itself.
 *
 * Environment: FAULT_SECONDS (default 60), FAULT_SESSIONS (40), FAULT_LOOPS (32),
 * FAULT_TOKEN_SECONDS (20), FAULT_LOG_LEVEL (warn).
 */
import { fork, type ChildProcess } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { startDemoApi } from '../dev/api/index.ts'
import { DEFAULT_USER, startDevIdp } from '../dev/idp/index.ts'
import { createBrowser, loginAtDevIdp } from '../test/helpers/browser.ts'
import { freePort, startRedisServer } from '../test/helpers/redis.ts'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const numberFrom = (name: string, fallback: number): number => {
  const value = Number(process.env[name] ?? fallback)
  if (!Number.isFinite(value) || value <= 0)
    throw new Error(`${name} must be a positive number, not ${process.env[name]}`)
  return value
}
const SECONDS = numberFrom('FAULT_SECONDS', 60)
const SESSIONS = numberFrom('FAULT_SESSIONS', 40)
const LOOPS = numberFrom('FAULT_LOOPS', 32)
const TOKEN_SECONDS = numberFrom('FAULT_TOKEN_SECONDS', 20)
const LOG_LEVEL = process.env.FAULT_LOG_LEVEL ?? 'warn'
const CLIENT_ID = 'bffgate-fault'
const CLIENT_SECRET = 'bffgate-fault-client-secret-0123456789'
const SESSION_SECRET = 'fault-session-secret-0123456789-abcdefghijklmnopqrstuvwxyz'
const COOKIE = '__Host-Http-bff'
/** The fault times of the 60 s scenario, scaled to the run's length (ms from the start). */
const at = (secondsOf60: number): number => Math.round((secondsOf60 / 60) * SECONDS * 1000)
const REDIS_KILL = at(15)
const REDIS_DOWN_MS = 2000
const REPLICA_KILL = at(35)
const IDP_FAIL_FROM = at(45)
const IDP_FAIL_TO = at(50)

interface Sample {
  readonly start: number
  readonly end: number
  readonly status: number
  readonly session: number
}

const children = new Set<ChildProcess>()

/** A bffgate replica as in production (`node src/server.ts`, configured by environment), on a given port. */
async function startGateway(env: Record<string, string>): Promise<ChildProcess> {
  const child = fork(join(root, 'src/server.ts'), [], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  })
  children.add(child)
  child.once('exit', () => children.delete(child))
  const url = `http://127.0.0.1:${env.BFF_PORT}`
  const deadline = Date.now() + 20_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`bffgate exited with ${child.exitCode}`)
    try {
      if ((await fetch(`${url}/healthz`)).ok) return child
    } catch {}
    if (Date.now() > deadline) throw new Error('bffgate did not become healthy')
    await sleep(100)
  }
}

async function kill(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise((resolve) => child.once('exit', resolve))
  child.kill(signal)
  await exited
}

async function main(): Promise<void> {
  const redis = await startRedisServer({ appendOnly: true })
  const [portA, portB] = [await freePort(), await freePort()]
  const adminPorts = new Map([
    [portA, await freePort()],
    [portB, await freePort()],
  ])
  const publicUrl = `http://127.0.0.1:${portA}`
  const idp = await startDevIdp({
    accessTokenTtlSeconds: TOKEN_SECONDS,
    clients: [
      {
        client_id: CLIENT_ID,
        client_secret: CLIENT_SECRET,
        redirect_uris: [`${publicUrl}/bff/callback`],
        post_logout_redirect_uris: [`${publicUrl}/`],
      },
    ],
    log: () => {},
  })
  const api = await startDemoApi({ issuer: idp.issuer, audience: 'https://api.bffgate.test' })
  // Default settings: only what a deployment must set. Both replicas serve one public URL.
  const env = (port: number): Record<string, string> => ({
    BFF_PORT: String(port),
    BFF_HOST: '127.0.0.1',
    BFF_ADMIN_PORT: String(adminPorts.get(port)),
    BFF_ADMIN_HOST: '127.0.0.1',
    BFF_PUBLIC_URL: publicUrl,
    BFF_OIDC_ISSUER: idp.issuer,
    BFF_OIDC_CLIENT_ID: CLIENT_ID,
    BFF_OIDC_CLIENT_SECRET: CLIENT_SECRET,
    BFF_OIDC_AUDIENCE: 'https://api.bffgate.test',
    BFF_ALLOW_INSECURE_HTTP: 'true',
    BFF_SESSION_SECRET: SESSION_SECRET,
    BFF_SESSION_STORE: 'redis',
    BFF_REDIS_URL: redis.url,
    BFF_ROUTES: JSON.stringify([{ path: '/api', upstream: api.url }]),
    BFF_LOG_LEVEL: LOG_LEVEL,
  })
  const cleanup = async (): Promise<void> => {
    await Promise.all([...children].map((child) => kill(child, 'SIGTERM')))
    await api.close()
    await idp.close()
    await redis.stop()
  }
  try {
    let replicaB = await startGateway(env(portB))
    await startGateway(env(portA))
    const urls = [publicUrl, `http://127.0.0.1:${portB}`]

    // Logins spread over one token lifetime, as real users' are: their refreshes are spread too.
    process.stdout.write(`logging in ${SESSIONS} sessions over ${TOKEN_SECONDS} s ...\n`)
    const cookies: string[] = []
    const loginStart = Date.now()
    for (let i = 0; i < SESSIONS; i++) {
      await sleep(Math.max(0, loginStart + (i * TOKEN_SECONDS * 1000) / SESSIONS - Date.now()))
      const browser = createBrowser()
      await loginAtDevIdp(
        browser,
        `${publicUrl}/bff/login`,
        { username: DEFAULT_USER.username, password: DEFAULT_USER.password },
        {
          until: (next) => next.origin === publicUrl && !next.pathname.startsWith('/bff/'),
        },
      )
      const value = browser.cookie(publicUrl, COOKIE)?.value
      if (value === undefined) throw new Error('a login gave no session cookie')
      cookies.push(`${COOKIE}=${value}`)
    }

    idp.resetStats()
    const t0 = Date.now()
    const samples: Sample[] = []
    const tokenCalls: Array<{ at: number; calls: number }> = [{ at: 0, calls: 0 }]
    const events: Record<string, number> = {}
    const running = { stop: false }
    const elapsed = () => Date.now() - t0

    /** One request as a load balancer sends it: to the next replica, skipping one that refuses connections. */
    const send = async (loop: number, n: number, session: number): Promise<Sample> => {
      const start = elapsed()
      for (let attempt = 0; attempt < urls.length; attempt++) {
        const url = urls[(loop + n + attempt) % urls.length]!
        try {
          const res = await fetch(`${url}/api/hello`, {
            headers: { 'x-csrf': '1', cookie: cookies[session]! },
            signal: AbortSignal.timeout(30_000),
          })
          await res.arrayBuffer()
          return { start, end: elapsed(), status: res.status, session }
        } catch {}
      }
      return { start, end: elapsed(), status: 0, session }
    }
    const loops = Array.from({ length: LOOPS }, async (_, loop) => {
      for (let n = 0; !running.stop; n++) samples.push(await send(loop, n, (loop + n * LOOPS) % SESSIONS))
    })
    const sampleTokenCalls = setInterval(
      () => tokenCalls.push({ at: elapsed(), calls: idp.stats().tokenRequests.refresh_token ?? 0 }),
      250,
    )

    const waitUntil = async (ms: number) => {
      await sleep(Math.max(0, ms - elapsed()))
    }
    await waitUntil(REDIS_KILL)
    await redis.kill()
    events.redisKilled = elapsed()
    await sleep(REDIS_DOWN_MS)
    await redis.restart()
    events.redisBack = elapsed()
    await waitUntil(REPLICA_KILL)
    await kill(replicaB, 'SIGKILL')
    events.replicaKilled = elapsed()
    replicaB = await startGateway(env(portB))
    events.replicaBack = elapsed()
    await waitUntil(IDP_FAIL_FROM)
    idp.failTokenRequests({ status: 503, count: 1_000_000, retryAfter: 5 })
    events.idpFailFrom = elapsed()
    await waitUntil(IDP_FAIL_TO)
    idp.failTokenRequests({ status: 503, count: 0 })
    events.idpFailTo = elapsed()
    await waitUntil(SECONDS * 1000)
    running.stop = true
    await Promise.all(loops)
    clearInterval(sampleTokenCalls)
    const totalCalls = idp.stats().tokenRequests.refresh_token ?? 0
    tokenCalls.push({ at: elapsed(), calls: totalCalls })

    // Sessions lost: any session that no longer answers 200 once everything is back.
    let lost = 0
    for (const cookie of cookies) {
      const res = await fetch(`${publicUrl}/api/hello`, { headers: { 'x-csrf': '1', cookie } })
      await res.arrayBuffer()
      if (res.status !== 200) lost++
    }

    const windows: Array<[string, number, number]> = [
      ['redis down', events.redisKilled!, events.redisBack! + 1000],
      ['replica killed', events.replicaKilled!, events.replicaBack!],
      ['idp 503', events.idpFailFrom!, events.idpFailTo!],
    ]
    const inWindow = (s: Sample) => windows.some(([, from, to]) => s.end >= from && s.start <= to)
    const phases: Array<[string, number, number]> = [
      ['before faults', 0, events.redisKilled!],
      ['redis down + 1 s', events.redisKilled!, events.redisBack! + 1000],
      ['after redis', events.redisBack! + 1000, events.replicaKilled!],
      ['replica kill/restart', events.replicaKilled!, events.idpFailFrom!],
      ['idp 503', events.idpFailFrom!, events.idpFailTo!],
      ['after idp', events.idpFailTo!, SECONDS * 1000 + 60_000],
    ]
    const callsAt = (ms: number): number => {
      let calls = 0
      for (const sample of tokenCalls) if (sample.at <= ms) calls = sample.calls
      return calls
    }
    const rows = phases.map(([name, from, to]) => {
      const inPhase = samples.filter((s) => s.start >= from && s.start < to)
      const seconds = (Math.min(to, tokenCalls.at(-1)!.at) - from) / 1000
      const calls = callsAt(Math.min(to, tokenCalls.at(-1)!.at)) - callsAt(from)
      return {
        phase: name,
        fromS: Math.round(from / 100) / 10,
        requests: inPhase.length,
        over1s: inPhase.filter((s) => s.end - s.start > 1000).length,
        over5s: inPhase.filter((s) => s.end - s.start > 5000).length,
        longestMs: inPhase.reduce((max, s) => Math.max(max, s.end - s.start), 0),
        status5xx: inPhase.filter((s) => s.status >= 500).length,
        failed: inPhase.filter((s) => s.status === 0).length,
        status401: inPhase.filter((s) => s.status === 401).length,
        tokenCallsPerSessionPerLifetime: Math.round((calls / SESSIONS / (seconds / TOKEN_SECONDS)) * 100) / 100,
      }
    })
    const outside = samples.filter((s) => !inWindow(s))
    /** Refresh counters of both replicas (replica B's since its restart). */
    const counters: Record<string, number> = {}
    for (const adminPort of adminPorts.values()) {
      const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text()
      for (const name of [
        'bff_refresh_background_total',
        'bff_refresh_lock_waits_total',
        'bff_refresh_lock_takeovers_total',
        'bff_refresh_lock_leases_lost_total',
        'bff_refresh_single_flight_joins_total',
      ]) {
        const value = new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]
        counters[name] = (counters[name] ?? 0) + Number(value ?? 0)
      }
    }
    const summary = {
      seconds: SECONDS,
      sessions: SESSIONS,
      loops: LOOPS,
      tokenSeconds: TOKEN_SECONDS,
      requests: samples.length,
      tokenCalls: totalCalls,
      tokenCallsPerSessionPerLifetime: Math.round((totalCalls / SESSIONS / (SECONDS / TOKEN_SECONDS)) * 100) / 100,
      longestOutsideRedisDownMs: samples
        .filter((s) => !(s.end >= windows[0]![1] && s.start <= windows[0]![2]))
        .reduce((max, s) => Math.max(max, s.end - s.start), 0),
      status5xxOutsideFaultWindows: outside.filter((s) => s.status >= 500 || s.status === 0).length,
      sessionsLost: lost,
      counters,
      events,
    }
    process.stdout.write(
      '\n| phase | from s | requests | > 1 s | > 5 s | longest ms | 5xx | no answer | 401 | token calls / session / lifetime |\n|---|---|---|---|---|---|---|---|---|---|\n',
    )
    for (const r of rows) {
      process.stdout.write(
        `| ${r.phase} | ${r.fromS} | ${r.requests} | ${r.over1s} | ${r.over5s} | ${r.longestMs} | ${r.status5xx} | ${r.failed} | ${r.status401} | ${r.tokenCallsPerSessionPerLifetime} |\n`,
      )
    }
    process.stdout.write(`\n${JSON.stringify(summary, null, 2)}\n`)
  } finally {
    await cleanup()
  }
}

await main()
