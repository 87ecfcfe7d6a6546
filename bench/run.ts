/**
 * `npm run bench` (issue #9): bffgate against a default @fastify/http-proxy and the bare
 * upstream, all on loopback, with a real Redis and the development IdP.
 *
 * Processes: this one (load generator, IdP, Redis client), and children for the upstream, the
 * bare proxy and bffgate (`npm start`'s command: the compiled `dist/src/server.js`, built first,
 * configured through the environment as in production), so the gateway's RSS and CPU are its own.
 *
 * Environment: BENCH_QUICK=1 (about a minute), BENCH_SOAK_SECONDS=<n> (RSS over a long run),
 * BENCH_CPU_PROF=1 (writes the gateway's and the bare proxy's .cpuprofile to bench/results/tmp/prof/),
 * BENCH_GC=1 (counts each measured process's garbage collections: bench/gc-observer.mjs),
 * BENCH_LABEL=<name> (also writes bench/results/<name>.json), BENCH_LOG_LEVEL (default: unset, so
 * the gateway's own default, info), BENCH_AB_ROOT=<dir> (a second bffgate from another checkout,
 * measured as `bffgate-10k-ab` in the same interleaved rounds, for A/B comparisons), BENCH_AB_ENV
 * (JSON: that second gateway's extra settings; without BENCH_AB_ROOT, this checkout's),
 * BENCH_AB_ENTRY (that second gateway's entry script instead of `npm start`'s, e.g. src/server.ts),
 * BENCH_TARGETS / BENCH_CONNECTIONS (comma lists, to profile one case).
 */
import autocannon from 'autocannon'
import { execFileSync, fork, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import { loadConfig } from '../src/config/load.ts'
import { createConfiguredStore } from '../src/session/create.ts'
import { createKeyring } from '../src/session/keyring.ts'
import { decodeSessionValue } from '../src/session/value-codec.ts'
import { startDevIdp, DEFAULT_USER, type DevIdp } from '../dev/idp/index.ts'
import { createBrowser, loginAtDevIdp } from '../test/helpers/browser.ts'
import { freePort, startRedisServer } from '../test/helpers/redis.ts'
import { renderMarkdown, writeResults, type BenchResults, type GatewayMemory, type LoadRun } from './report.ts'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const resultsDir = join(root, 'bench', 'results')
const QUICK = process.env.BENCH_QUICK === '1'
const DURATION = QUICK ? 2 : 6
const WARMUP = QUICK ? 1 : 2
/**
 * Each comparison runs this many times, the targets interleaved and their order rotated per
 * round; the median run (by req/s) is reported. A shared machine drifts by tens of percent
 * within a minute: back-to-back single runs made the ratios noise.
 */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
if (!Number.isInteger(ROUNDS) || ROUNDS < 1)
  throw new Error(`BENCH_ROUNDS must be a whole number of at least 1, not ${process.env.BENCH_ROUNDS}`)
const CONNECTIONS = (process.env.BENCH_CONNECTIONS ?? '10,50,200').split(',').map(Number)
/** Which targets to run (comma list of upstream, bare-proxy, bffgate-1, bffgate-10k, 64k, express-peer, storm); default all. */
const TARGETS = new Set(
  (process.env.BENCH_TARGETS ?? 'upstream,bare-proxy,bffgate-1,bffgate-10k,64k,express-peer,storm').split(','),
)
const SESSIONS = Number(process.env.BENCH_SESSIONS ?? (QUICK ? 2000 : 10_000))
if (!Number.isInteger(SESSIONS) || SESSIONS < 1)
  throw new Error(`BENCH_SESSIONS must be a whole number of at least 1, not ${process.env.BENCH_SESSIONS}`)
/**
 * BENCH_SESSIONS_LARGE (opt-in, e.g. 100000): after the other runs, that many sessions in all
 * (the BENCH_SESSIONS ones and more), and bffgate at 50 connections over all of them against
 * the BENCH_SESSIONS ones, in the same interleaved rounds: throughput, CPU and RSS at that scale.
 */
const SESSIONS_LARGE = Number(process.env.BENCH_SESSIONS_LARGE ?? 0)
if (!Number.isInteger(SESSIONS_LARGE) || (SESSIONS_LARGE !== 0 && SESSIONS_LARGE <= SESSIONS))
  throw new Error(
    `BENCH_SESSIONS_LARGE must be a whole number above BENCH_SESSIONS (${SESSIONS}), not ${process.env.BENCH_SESSIONS_LARGE}`,
  )
const STORM_SESSIONS = QUICK ? 10 : 30
const STORM_SECONDS = QUICK ? 6 : 12
const STORM_TOKEN_TTL = 4
const STORM_SKEW = 1
const SOAK_SECONDS = Number(process.env.BENCH_SOAK_SECONDS ?? 0)
const CPU_PROF = process.env.BENCH_CPU_PROF === '1'
const GC = process.env.BENCH_GC === '1'
/** The gateway's log level: unset by default, so the gateway runs with its own default (info), as users get it. */
const LOG_LEVEL = process.env.BENCH_LOG_LEVEL
/**
 * A second bffgate measured beside this one (`bffgate-10k-ab`), on the same sessions: another
 * checkout's (BENCH_AB_ROOT), and/or this one with other settings (BENCH_AB_ENV, a JSON object
 * of environment variables, e.g. {"BFF_LOG_LEVEL":"warn"}).
 */
const AB_ENV =
  process.env.BENCH_AB_ENV !== undefined ? (JSON.parse(process.env.BENCH_AB_ENV) as Record<string, string>) : undefined
/** Node flags for the A/B gateway only (space-separated), e.g. a V8 heap setting against the same tree. */
const AB_NODE_FLAGS = (process.env.BENCH_AB_NODE_FLAGS ?? '').split(' ').filter((flag) => flag !== '')
/** The A/B gateway's entry script instead of `npm start`'s (e.g. src/server.ts, to measure type stripping). */
const AB_ENTRY = process.env.BENCH_AB_ENTRY
const AB_ROOT =
  process.env.BENCH_AB_ROOT ??
  (AB_ENV !== undefined || AB_NODE_FLAGS.length > 0 || AB_ENTRY !== undefined ? root : undefined)
const CLIENT_ID = 'bffgate-bench'
const CLIENT_SECRET = 'bffgate-bench-client-secret-0123456789'
const SESSION_SECRET = 'bench-session-secret-0123456789-abcdefghijklmnopqrstuvwxyz'
const COOKIE = '__Host-Http-bff'
const CLK_TCK = 100
/**
 * With two CPUs or more, the proxy under test (bare proxy or bffgate) gets CPU 1 to itself and
 * everything else (load generator, upstream, Redis, IdP) shares CPU 0: on a small machine the
 * proxies would otherwise compete with the load generator, and the ratios would be noise.
 */
const PIN = process.env.BENCH_PIN !== '0' && (await import('node:os')).cpus().length >= 2

function pin(pid: number, cpu: number): void {
  if (!PIN) return
  try {
    execFileSync('taskset', ['-a', '-p', '-c', String(cpu), String(pid)], { stdio: 'ignore' })
  } catch {
    process.stderr.write(`taskset failed for ${pid}; running unpinned\n`)
  }
}

const children: ChildProcess[] = []
/** The measured processes see only their own settings: a BFF_* or NODE_OPTIONS in the shell must not change what is measured. */
const measuredEnv = { PATH: process.env.PATH ?? '' }

/**
 * Node flags for a measured process named `name`: with BENCH_CPU_PROF a CPU profile
 * (`tmp/prof/<name>.cpuprofile`), with BENCH_GC its collections counted (bench/gc-observer.mjs,
 * `tmp/gc/<name>.json`).
 */
function observerFlags(name: string): string[] {
  return [
    ...(CPU_PROF
      ? ['--cpu-prof', '--cpu-prof-dir', join(resultsDir, 'tmp', 'prof'), '--cpu-prof-name', `${name}.cpuprofile`]
      : []),
    ...(GC ? ['--import', join(root, 'bench/gc-observer.mjs')] : []),
  ]
}
const observerEnv = (name: string): Record<string, string> =>
  GC ? { BENCH_GC_FILE: join(resultsDir, 'tmp', 'gc', `${name}.json`) } : {}

/** Starts a child script that reports its port over IPC. */
async function startChild(
  script: string,
  env: Record<string, string>,
  execArgv: string[] = [],
): Promise<{ child: ChildProcess; port: number }> {
  const child = fork(join(root, script), [], {
    env: { ...measuredEnv, ...env },
    execArgv,
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  })
  children.push(child)
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (m: { port: number }) => resolve(m.port))
    child.once('exit', (code) => reject(new Error(`${script} exited with ${code}`)))
  })
  pin(child.pid!, script.includes('upstream') ? 0 : 1)
  return { child, port }
}

/**
 * How bffgate runs in production: `npm start`'s command (which the image's CMD repeats;
 * test/deploy/dockerfile.test.ts checks that they agree): its Node flags and its entry, the
 * compiled `dist/src/server.js`. Not `node src/server.ts`: Node's type stripping alone costs
 * ~30 MiB of resident memory at start, which no user pays.
 */
const START_COMMAND = (
  JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: { start: string } }
).scripts.start.split(' ')
const PRODUCTION_NODE_FLAGS = START_COMMAND.filter((word) => word.startsWith('--'))
const PRODUCTION_ENTRY = START_COMMAND.at(-1)!

/** Compiles a checkout's sources as `npm run build` does (`dist/`), so its gateway runs as shipped. */
function build(checkout: string): void {
  execFileSync(join(root, 'node_modules/.bin/tsc'), ['-p', join(checkout, 'tsconfig.build.json')], {
    cwd: checkout,
    stdio: 'inherit',
  })
}

/** bffgate as in production (`npm start`'s flags and entry), configured by environment. */
async function startGateway(
  env: Record<string, string>,
  name: string,
  fromRoot = root,
  extraFlags: readonly string[] = [],
  entry = PRODUCTION_ENTRY,
): Promise<ChildProcess> {
  const execArgv = [
    ...PRODUCTION_NODE_FLAGS,
    ...observerFlags(name),
    // Node flags for bffgate only (space-separated), to try runtime tuning against the same floor.
    ...(process.env.BENCH_GATEWAY_NODE_FLAGS ?? '').split(' ').filter((flag) => flag !== ''),
    ...extraFlags,
  ]
  const child = fork(join(fromRoot, entry), [], {
    env: { ...measuredEnv, ...env, ...observerEnv(name) },
    execArgv,
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  })
  children.push(child)
  const url = env.BFF_PUBLIC_URL!
  const deadline = Date.now() + 20_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`bffgate exited with ${child.exitCode}`)
    try {
      if ((await fetch(`${url}/healthz`)).ok) {
        pin(child.pid!, 1)
        return child
      }
    } catch {}
    if (Date.now() > deadline) throw new Error('bffgate did not become healthy')
    await sleep(100)
  }
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise((resolve) => child.once('exit', resolve))
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
  await exited
  clearTimeout(timer)
}

function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024
}

/** User+system CPU seconds of a process so far. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK
}

async function commandStats(redis: Redis): Promise<Record<string, number>> {
  const out: Record<string, number> = {}
  for (const line of (await redis.info('commandstats')).split('\n')) {
    const m = /^cmdstat_([^:]+):calls=(\d+)/.exec(line)
    if (m) out[m[1]!] = Number(m[2])
  }
  return out
}

/**
 * With BENCH_GC: each measured process's collections (written by bench/gc-observer.mjs at its
 * exit), with their pause time per request it answered in the measured runs. The time includes
 * the warm-ups (the same share of every process's runs), so compare processes, not absolutes.
 */
function gcByProcess(runs: readonly LoadRun[]): NonNullable<BenchResults['gc']> {
  const processOf = (target: string) =>
    target === 'bare-proxy'
      ? 'bare'
      : target.endsWith('-ab')
        ? 'gateway-ab'
        : target.startsWith('bffgate')
          ? 'gateway'
          : undefined
  const out: NonNullable<BenchResults['gc']> = {}
  for (const name of ['bare', 'gateway', 'gateway-ab']) {
    const file = join(resultsDir, 'tmp', 'gc', `${name}.json`)
    if (!existsSync(file)) continue
    const kinds = JSON.parse(readFileSync(file, 'utf8')) as NonNullable<BenchResults['gc']>[string]['kinds']
    const requests = runs.filter((run) => processOf(run.target) === name).reduce((a, run) => a + run.requests, 0)
    const totalMs = Object.values(kinds).reduce((a, kind) => a + kind.totalMs, 0)
    out[name] = {
      requests,
      kinds,
      usPerRequest: requests > 0 ? Math.round((totalMs * 1000 * 10) / requests) / 10 : 0,
      minorUsPerRequest: requests > 0 ? Math.round(((kinds.minor?.totalMs ?? 0) * 1000 * 10) / requests) / 10 : 0,
    }
  }
  return out
}

async function usedMemory(redis: Redis): Promise<number> {
  return Number(/used_memory:(\d+)/.exec(await redis.info('memory'))![1])
}

/**
 * Store round trips by operation, from bffgate's own metrics (one histogram count each), and
 * the proxied requests it finished (`requests`): autocannon's count misses the requests still
 * in flight when a run ends, whose Redis reads were already made.
 */
async function storeOperations(gatewayUrl: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${adminUrls.get(gatewayUrl)}/metrics`)).text()
  const out: Record<string, number> = {}
  for (const m of text.matchAll(
    /^bff_redis_operation_duration_seconds_count\{[^}]*operation="([^"]+)"[^}]*\} (\d+)/gm,
  )) {
    out[m[1]!] = (out[m[1]!] ?? 0) + Number(m[2])
  }
  for (const m of text.matchAll(/^bff_http_requests_total\{[^}]*route="\/api"[^}]*\} (\d+)/gm))
    out.requests = (out.requests ?? 0) + Number(m[1])
  return out
}

/** A process's resident memory by kind (/proc/<pid>/status), in MiB: anonymous (heaps, malloc) and file-backed (code). */
function residentMiB(pid: number): { rssMiB: number; rssAnonMiB: number; rssFileMiB: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kib = (field: string) =>
    Math.round((Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0) / 1024) * 10) / 10
  return { rssMiB: kib('VmRSS'), rssAnonMiB: kib('RssAnon'), rssFileMiB: kib('RssFile') }
}

/**
 * The gateway's memory after the runs, in MiB: its V8 heap (total and used) and external memory
 * from its own metrics, its resident memory by kind, and what of the anonymous part neither V8's
 * heap nor external memory explain (`nativeOtherMiB`: malloc arenas of the main and the thread-pool
 * threads, V8's code and other spaces outside the heap's figure, thread stacks).
 */
async function gatewayMemory(gatewayUrl: string, pid: number): Promise<GatewayMemory> {
  const text = await (await fetch(`${adminUrls.get(gatewayUrl)}/metrics`)).text()
  const read = (name: string) =>
    Math.round((Number(new RegExp(`^${name} (\\S+)`, 'm').exec(text)?.[1] ?? 0) / 1048576) * 10) / 10
  const heap = {
    heapTotalMiB: read('nodejs_heap_size_total_bytes'),
    heapUsedMiB: read('nodejs_heap_size_used_bytes'),
    externalMiB: read('nodejs_external_memory_bytes'),
  }
  const resident = residentMiB(pid)
  return {
    ...heap,
    ...resident,
    nativeOtherMiB: Math.round((resident.rssAnonMiB - heap.heapTotalMiB - heap.externalMiB) * 10) / 10,
  }
}

function diff(after: Record<string, number>, before: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {}
  for (const [k, v] of Object.entries(after)) if (v - (before[k] ?? 0) > 0) out[k] = v - (before[k] ?? 0)
  return out
}

const sum = (values: Record<string, number>) => Object.values(values).reduce((a, b) => a + b, 0)

interface LoadOptions {
  readonly url: string
  readonly connections: number
  readonly duration: number
  /** Stop after this many requests instead (autocannon's `amount`). */
  readonly amount?: number
  readonly cookies?: readonly string[]
  /** Start where the last run over the same cookie list stopped (see `nextCookie`). */
  readonly continueTurn?: boolean
  /** Default: bffgate's session cookie. */
  readonly cookieName?: string
}

/**
 * Where each cookie list's turn stands, for runs that go on from where the last run over the
 * same list stopped (`continueTurn`, the BENCH_SESSIONS_LARGE comparison): runs shorter than the
 * list then still visit all of its sessions in turn (with 100,000 sessions a run reaches only
 * some of them; restarting at the first measures the same few again, warm). The other runs
 * restart at the first session, as before, so their figures stay comparable with earlier runs.
 */
const nextCookie = new WeakMap<readonly string[], number>()

/** One autocannon run; with several cookies, each request takes the next one in turn. */
async function load(options: LoadOptions): Promise<autocannon.Result> {
  const headers: Record<string, string> = { 'x-csrf': '1' }
  const cookies = options.cookies
  const cookieName = options.cookieName ?? COOKIE
  if (cookies?.length === 1) headers.cookie = `${cookieName}=${cookies[0]}`
  let next = cookies !== undefined && options.continueTurn === true ? (nextCookie.get(cookies) ?? 0) : 0
  const result = await autocannon({
    url: options.url,
    connections: options.connections,
    duration: options.duration,
    ...(options.amount !== undefined && { amount: options.amount }),
    headers,
    ...(cookies !== undefined &&
      cookies.length > 1 && {
        requests: [
          {
            setupRequest: (request: autocannon.Request) => ({
              ...request,
              headers: { ...request.headers, cookie: `${cookieName}=${cookies[next++ % cookies.length]}` },
            }),
          },
        ],
      }),
  })
  if (cookies !== undefined) nextCookie.set(cookies, next % cookies.length)
  return result
}

interface Measured {
  readonly pid?: number
  readonly gatewayUrl?: string
  readonly redis?: Redis
}

/** Warm-up, then the measured run, with the process figures around it. */
async function measure(
  target: string,
  body: 'small' | '64k',
  options: LoadOptions,
  around: Measured = {},
): Promise<LoadRun> {
  await load({ ...options, duration: WARMUP })
  const cmdBefore = around.redis !== undefined ? await commandStats(around.redis) : undefined
  const opsBefore = around.gatewayUrl !== undefined ? await storeOperations(around.gatewayUrl) : undefined
  const cpuBefore = around.pid !== undefined ? cpuSeconds(around.pid) : undefined
  const result = await load(options)
  const cpuAfter = around.pid !== undefined ? cpuSeconds(around.pid) : undefined
  const completed = result.requests.total
  const run: LoadRun = {
    target,
    body,
    connections: options.connections,
    seconds: options.duration,
    rps: Math.round(result.requests.average),
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    requests: completed,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
    ...(around.pid !== undefined && { rssMiB: Math.round(rssMiB(around.pid) * 10) / 10 }),
    ...(cpuBefore !== undefined &&
      cpuAfter !== undefined &&
      completed > 0 && { cpuUsPerRequest: Math.round(((cpuAfter - cpuBefore) * 1e6) / completed) }),
  }
  if (cmdBefore !== undefined && around.redis !== undefined && completed > 0) {
    const commands = diff(await commandStats(around.redis), cmdBefore)
    delete commands.info // our own INFO calls
    run.redisCommandsPerRequest = Math.round((sum(commands) / completed) * 1000) / 1000
    run.redisCommands = commands
  }
  if (opsBefore !== undefined && around.gatewayUrl !== undefined && completed > 0) {
    const ops = diff(await storeOperations(around.gatewayUrl), opsBefore)
    const proxied = ops.requests ?? completed
    delete ops.requests
    run.storeRoundTripsPerRequest = Math.round((sum(ops) / proxied) * 1000) / 1000
    run.storeOperations = ops
    if (run.redisCommands !== undefined)
      run.redisCommandsPerRequest = Math.round((sum(run.redisCommands) / proxied) * 1000) / 1000
  }
  process.stdout.write(
    `${target.padEnd(18)} ${body.padEnd(5)} c=${String(options.connections).padEnd(3)} ${String(run.rps).padStart(6)} req/s p50 ${run.p50Ms} ms p99 ${run.p99Ms} ms` +
      `${run.non2xx > 0 || run.errors > 0 ? ` non2xx=${run.non2xx} errors=${run.errors}` : ''}${run.rssMiB !== undefined ? ` rss=${run.rssMiB} MiB` : ''}` +
      `${run.cpuUsPerRequest !== undefined ? ` cpu=${run.cpuUsPerRequest} µs/req` : ''}${run.storeRoundTripsPerRequest !== undefined ? ` redis rt/req=${run.storeRoundTripsPerRequest} cmds/req=${run.redisCommandsPerRequest}` : ''}\n`,
  )
  return run
}

interface Comparison {
  readonly target: string
  readonly body: 'small' | '64k'
  readonly options: LoadOptions
  readonly around: Measured
}

/** {@link ROUNDS} interleaved rounds of the compared targets; the median run of each. */
async function measureInterleaved(compared: readonly Comparison[]): Promise<LoadRun[]> {
  const rounds = compared.map((): LoadRun[] => [])
  for (let round = 0; round < ROUNDS; round++) {
    for (let k = 0; k < compared.length; k++) {
      const i = (k + round) % compared.length
      const { target, body, options, around } = compared[i]!
      rounds[i]!.push(await measure(target, body, options, around))
    }
  }
  return rounds.map((runs) => {
    const sorted = [...runs].sort((a, b) => a.rps - b.rps)
    return {
      ...sorted[Math.floor((sorted.length - 1) / 2)]!,
      roundsRps: runs.map((run) => run.rps),
      rounds: runs.map(({ rps, p99Ms, cpuUsPerRequest }) => ({ rps, p99Ms, cpuUsPerRequest })),
    }
  })
}

/** Admin (metrics) URL of each gateway started here, by its public URL. */
const adminUrls = new Map<string, string>()

function gatewayEnv(
  port: number,
  adminPort: number,
  idp: DevIdp,
  upstream: string,
  redisUrl: string,
  extra: Record<string, string> = {},
): Record<string, string> {
  adminUrls.set(`http://127.0.0.1:${port}`, `http://127.0.0.1:${adminPort}`)
  return {
    BFF_PORT: String(port),
    BFF_HOST: '127.0.0.1',
    BFF_ADMIN_PORT: String(adminPort),
    BFF_ADMIN_HOST: '127.0.0.1',
    BFF_PUBLIC_URL: `http://127.0.0.1:${port}`,
    BFF_OIDC_ISSUER: idp.issuer,
    BFF_OIDC_CLIENT_ID: CLIENT_ID,
    BFF_OIDC_CLIENT_SECRET: CLIENT_SECRET,
    BFF_OIDC_AUDIENCE: 'https://api.bffgate.test',
    BFF_ALLOW_INSECURE_HTTP: 'true',
    BFF_SESSION_SECRET: SESSION_SECRET,
    BFF_SESSION_STORE: 'redis',
    BFF_REDIS_URL: redisUrl,
    BFF_REDIS_KEY_PREFIX: `bench${port}:`,
    BFF_ROUTES: JSON.stringify([{ path: '/api', upstream }]),
    ...(LOG_LEVEL !== undefined && { BFF_LOG_LEVEL: LOG_LEVEL }),
    ...extra,
  }
}

async function startIdp(ports: number[], accessTokenTtlSeconds: number, peerPort?: number): Promise<DevIdp> {
  return startDevIdp({
    accessTokenTtlSeconds,
    clients: [
      {
        client_id: CLIENT_ID,
        client_secret: CLIENT_SECRET,
        redirect_uris: [
          ...ports.map((p) => `http://127.0.0.1:${p}/bff/callback`),
          ...(peerPort !== undefined ? [`http://127.0.0.1:${peerPort}/callback`] : []),
        ],
        post_logout_redirect_uris: ports.map((p) => `http://127.0.0.1:${p}/`),
      },
    ],
    log: () => {},
  })
}

/** A real login through the gateway: the session cookie's value. */
async function login(gatewayUrl: string): Promise<string> {
  const browser = createBrowser()
  await loginAtDevIdp(
    browser,
    `${gatewayUrl}/bff/login`,
    { username: DEFAULT_USER.username, password: DEFAULT_USER.password },
    {
      until: (next) => next.origin === gatewayUrl && !next.pathname.startsWith('/bff/'),
    },
  )
  const value = browser.cookie(gatewayUrl, COOKIE)?.value
  if (value === undefined) throw new Error('login gave no session cookie')
  return value
}

/**
 * The Express peer (bench/peers), logged in through the dev IdP; undefined (and the reason in
 * the results) when it is not wanted, cannot be installed or fails.
 */
async function startPeer(
  idp: DevIdp,
  peerPort: number,
  upstreamUrl: string,
  redisUrl: string,
  results: BenchResults,
): Promise<{ child: ChildProcess; pid: number; url: string; cookie: string } | undefined> {
  if (!TARGETS.has('express-peer')) return undefined
  if (!existsSync(join(root, 'bench/peers/node_modules/express-openid-connect'))) {
    process.stderr.write('express-peer: installing its packages (npm install --prefix bench/peers)\n')
    try {
      execFileSync('npm', ['install', '--prefix', 'bench/peers', '--no-audit', '--no-fund'], {
        cwd: root,
        stdio: ['ignore', 2, 2],
        timeout: 300_000,
      })
    } catch (err) {
      results.expressPeerError =
        `skipped: npm install --prefix bench/peers failed: ${(err as Error).message.split('\n')[0]}`.slice(0, 200)
      process.stdout.write(`express-peer ${results.expressPeerError}\n`)
      return undefined
    }
  }
  try {
    const peer = await startChild('bench/peers/express-peer.mjs', {
      PORT: String(peerPort),
      ISSUER: idp.issuer,
      CLIENT_ID,
      CLIENT_SECRET,
      UPSTREAM: upstreamUrl,
      REDIS_URL: redisUrl,
      AUDIENCE: 'https://api.bffgate.test',
    })
    const peerUrl = `http://127.0.0.1:${peerPort}`
    const browser = createBrowser()
    await loginAtDevIdp(
      browser,
      `${peerUrl}/login`,
      { username: DEFAULT_USER.username, password: DEFAULT_USER.password },
      {
        until: (next) => next.origin === peerUrl && next.pathname === '/',
      },
    )
    const peerCookie = browser.cookie(peerUrl, 'appSession')?.value
    if (peerCookie === undefined) throw new Error('the Express peer set no appSession cookie')
    const probe = await fetch(`${peerUrl}/api/small`, { headers: { cookie: `appSession=${peerCookie}` } })
    if (probe.status !== 200)
      throw new Error(`the Express peer answered ${probe.status}: ${(await probe.text()).slice(0, 300)}`)
    return { child: peer.child, pid: peer.child.pid!, url: peerUrl, cookie: peerCookie }
  } catch (err) {
    // A broken peer must not cost the rest of the run.
    results.expressPeerError = (err as Error).message.split('\n')[0]!.slice(0, 200)
    process.stdout.write(`express-peer failed: ${results.expressPeerError}\n`)
    return undefined
  }
}

async function main(): Promise<void> {
  if (GC) {
    rmSync(join(resultsDir, 'tmp', 'gc'), { recursive: true, force: true })
    mkdirSync(join(resultsDir, 'tmp', 'gc'), { recursive: true })
  }
  const started = Date.now()
  mkdirSync(resultsDir, { recursive: true })
  build(root)
  if (AB_ROOT !== undefined && AB_ROOT !== root && !(AB_ENTRY ?? PRODUCTION_ENTRY).endsWith('.ts')) build(AB_ROOT)
  const redisServer = await startRedisServer()
  pin(process.pid, 0)
  pin(redisServer.pid, 0)
  const redis = new Redis(redisServer.url)
  const runs: LoadRun[] = []
  const results: BenchResults = {
    date: new Date().toISOString(),
    label: process.env.BENCH_LABEL ?? 'latest',
    quick: QUICK,
    node: process.version,
    cpus: (await import('node:os')).cpus().length,
    logLevel: LOG_LEVEL ?? 'info (the default: BFF_LOG_LEVEL unset)',
    durationSeconds: DURATION,
    warmupSeconds: WARMUP,
    rounds: ROUNDS,
    pinned: PIN,
    runs,
  }
  const gatewayPort = await freePort()
  const stormPort = await freePort()
  const peerPort = await freePort()
  const gatewayAdminPort = await freePort()
  const stormAdminPort = await freePort()
  const idp = await startIdp([gatewayPort], 3600, peerPort)
  try {
    const upstream = await startChild('bench/upstream.ts', {})
    const upstreamUrl = `http://127.0.0.1:${upstream.port}`
    const bare = await startChild(
      'bench/bare-proxy.mjs',
      { UPSTREAM: upstreamUrl, ...observerEnv('bare') },
      observerFlags('bare'),
    )
    const bareUrl = `http://127.0.0.1:${bare.port}`
    const env = gatewayEnv(gatewayPort, gatewayAdminPort, idp, upstreamUrl, redisServer.url)
    const gateway = await startGateway(env, 'gateway')
    const gatewayUrl = env.BFF_PUBLIC_URL!
    const cookie = await login(gatewayUrl)
    const check = await fetch(`${gatewayUrl}/api/small`, { headers: { cookie: `${COOKIE}=${cookie}`, 'x-csrf': '1' } })
    if (check.status !== 200) throw new Error(`a proxied request with the session answered ${check.status}`)
    results.gatewayStartRssMiB = Math.round(rssMiB(gateway.pid!) * 10) / 10

    // 10k distinct sessions of distinct users: the logged-in session's record with its own
    // subject and IdP session id each (so each has its own two index entries, as in production),
    // written under fresh tickets by a store with the gateway's own secrets and prefix (the
    // real create path, real tickets).
    const config = loadConfig(env)
    const store = createConfiguredStore(config, createKeyring(config.session.secrets))
    const loaded = await store.load(cookie, { slide: false })
    if (loaded === undefined) throw new Error('cannot read the logged-in session')
    const memoryBefore = await usedMemory(redis)
    const createSessions = async (from: number, to: number): Promise<string[]> => {
      const created: string[] = []
      for (let i = from; i < to; i += 200) {
        created.push(
          ...(await Promise.all(
            Array.from(
              { length: Math.min(200, to - i) },
              async (_, j) =>
                (
                  await store.create({
                    ...loaded.record,
                    sub: `${loaded.record.sub}-${i + j}`,
                    sid: `${loaded.record.sid ?? 'sid'}-${i + j}`,
                  })
                ).cookieValue,
            ),
          )),
        )
      }
      return created
    }
    const cookies = await createSessions(0, SESSIONS)
    const memoryAfter = await usedMemory(redis)
    results.sessions = SESSIONS
    results.redisBytesPerSession = Math.round((memoryAfter - memoryBefore) / SESSIONS)
    const [, sample] = await redis.scan(0, 'MATCH', `${config.redis.keyPrefix}session:*`, 'COUNT', 100)
    const sampleValue = sample[0] === undefined ? null : await redis.getBuffer(sample[0])
    if (sampleValue !== null) results.sealedRecordBytes = decodeSessionValue(sampleValue)?.sealed.length
    process.stdout.write(`created ${SESSIONS} sessions: ${results.redisBytesPerSession} bytes of Redis memory each\n`)

    // The A/B gateway: another checkout's bffgate on the same sessions (same prefix and secrets).
    let abGateway: { url: string; pid: number } | undefined
    if (AB_ROOT !== undefined) {
      const [abPort, abAdminPort] = [await freePort(), await freePort()]
      adminUrls.set(`http://127.0.0.1:${abPort}`, `http://127.0.0.1:${abAdminPort}`)
      const abEnv = {
        ...env,
        ...AB_ENV,
        BFF_PORT: String(abPort),
        BFF_ADMIN_PORT: String(abAdminPort),
        BFF_PUBLIC_URL: `http://127.0.0.1:${abPort}`,
      }
      const child = await startGateway(abEnv, 'gateway-ab', AB_ROOT, AB_NODE_FLAGS, AB_ENTRY)
      abGateway = { url: abEnv.BFF_PUBLIC_URL, pid: child.pid! }
    }

    // The Express peer (bench/peers), measured in the same interleaved rounds at every
    // connection count; its packages are installed on first use.
    const peer = await startPeer(idp, peerPort, upstreamUrl, redisServer.url, results)

    for (const connections of CONNECTIONS) {
      if (TARGETS.has('upstream'))
        runs.push(
          await measure('upstream', 'small', { url: `${upstreamUrl}/api/small`, connections, duration: DURATION }),
        )
      runs.push(
        ...(await measureInterleaved([
          ...(TARGETS.has('bare-proxy')
            ? [
                {
                  target: 'bare-proxy',
                  body: 'small' as const,
                  options: { url: `${bareUrl}/api/small`, connections, duration: DURATION },
                  around: { pid: bare.child.pid! },
                },
              ]
            : []),
          ...(TARGETS.has('bffgate-1')
            ? [
                {
                  target: 'bffgate-1',
                  body: 'small' as const,
                  options: { url: `${gatewayUrl}/api/small`, connections, duration: DURATION, cookies: [cookie] },
                  around: { pid: gateway.pid!, gatewayUrl, redis },
                },
              ]
            : []),
          ...(TARGETS.has('bffgate-10k')
            ? [
                {
                  target: 'bffgate-10k',
                  body: 'small' as const,
                  options: { url: `${gatewayUrl}/api/small`, connections, duration: DURATION, cookies },
                  around: { pid: gateway.pid!, gatewayUrl, redis },
                },
              ]
            : []),
          ...(abGateway !== undefined
            ? [
                {
                  target: 'bffgate-10k-ab',
                  body: 'small' as const,
                  options: { url: `${abGateway.url}/api/small`, connections, duration: DURATION, cookies },
                  around: { pid: abGateway.pid, gatewayUrl: abGateway.url, redis },
                },
              ]
            : []),
          ...(peer !== undefined
            ? [
                {
                  target: 'express-peer',
                  body: 'small' as const,
                  options: {
                    url: `${peer.url}/api/small`,
                    connections,
                    duration: DURATION,
                    cookies: [peer.cookie],
                    cookieName: 'appSession',
                  },
                  around: { pid: peer.pid, redis },
                },
              ]
            : []),
        ])),
      )
    }
    if (peer !== undefined) await stopChild(peer.child)
    if (TARGETS.has('64k')) {
      runs.push(
        await measure('upstream', '64k', { url: `${upstreamUrl}/api/big`, connections: 50, duration: DURATION }),
      )
      runs.push(
        ...(await measureInterleaved([
          {
            target: 'bare-proxy',
            body: '64k',
            options: { url: `${bareUrl}/api/big`, connections: 50, duration: DURATION },
            around: { pid: bare.child.pid! },
          },
          {
            target: 'bffgate-1',
            body: '64k',
            options: { url: `${gatewayUrl}/api/big`, connections: 50, duration: DURATION, cookies: [cookie] },
            around: { pid: gateway.pid!, gatewayUrl, redis },
          },
        ])),
      )
    }

    if (SOAK_SECONDS > 0) {
      const samples: number[] = []
      // The gateway's memory by kind every 5 s: a leak shows as V8 heap used growing without end;
      // the heap's and malloc's headroom grow towards a plateau.
      const series: (GatewayMemory & { atSeconds: number })[] = []
      const soakStarted = Date.now()
      const soak = load({ url: `${gatewayUrl}/api/small`, connections: 50, duration: SOAK_SECONDS, cookies })
      const sampler = setInterval(() => {
        samples.push(rssMiB(gateway.pid!))
        gatewayMemory(gatewayUrl, gateway.pid!).then(
          (memory) => series.push({ atSeconds: Math.round((Date.now() - soakStarted) / 1000), ...memory }),
          () => {},
        )
      }, 5000)
      const result = await soak
      clearInterval(sampler)
      const first = samples[0] ?? 0
      const last = samples.at(-1) ?? 0
      results.soak = {
        seconds: SOAK_SECONDS,
        rps: Math.round(result.requests.average),
        rssFirstMiB: first,
        rssLastMiB: last,
        rssMaxMiB: Math.max(...samples),
        growth: first > 0 ? Math.round(((last - first) / first) * 1000) / 1000 : 0,
        series,
      }
      process.stdout.write(`soak ${SOAK_SECONDS}s: RSS ${first} → ${last} MiB (max ${results.soak.rssMaxMiB})\n`)
      for (const point of series)
        process.stdout.write(
          `  ${String(point.atSeconds).padStart(4)} s: RSS ${point.rssMiB} MiB, V8 heap ${point.heapUsedMiB} used of ${point.heapTotalMiB}, external ${point.externalMiB}, the rest ${point.nativeOtherMiB}\n`,
        )
    }
    if (SESSIONS_LARGE > 0) {
      // The same gateway over SESSIONS_LARGE sessions against the SESSIONS ones, interleaved.
      const before = await usedMemory(redis)
      // The new sessions first: the BENCH_SESSIONS ones were just visited (their idle deadlines slid
      // within the minute), so starting on them made the first round's figures cheaper than the rest.
      const largeCookies = [...(await createSessions(SESSIONS, SESSIONS_LARGE)), ...cookies]
      const bytesPerSession = Math.round(((await usedMemory(redis)) - before) / (SESSIONS_LARGE - SESSIONS))
      process.stdout.write(
        `created ${SESSIONS_LARGE - SESSIONS} more sessions (${SESSIONS_LARGE} in all): ${bytesPerSession} bytes of Redis memory each\n`,
      )
      const around = { pid: gateway.pid!, gatewayUrl, redis }
      // One walk over every session first: with N sessions in use at R requests per second a
      // session comes back every N / R seconds (~25 s here), within the minute its derived keys
      // are cached, so the measured rounds are that steady state (each request a session's
      // second visit or later: keys cached, its record opened again unless among the 10,000
      // kept), not first visits, which no running deployment sees on every request.
      for (const url of [gatewayUrl, ...(abGateway !== undefined ? [abGateway.url] : [])]) {
        const walkStarted = Date.now()
        await load({
          url: `${url}/api/small`,
          connections: 50,
          duration: 600,
          amount: largeCookies.length,
          cookies: largeCookies,
          continueTurn: true,
        })
        process.stdout.write(
          `${url}: walked all ${SESSIONS_LARGE} sessions once in ${Math.round((Date.now() - walkStarted) / 1000)} s before the measured rounds\n`,
        )
      }
      const largeRuns = await measureInterleaved([
        {
          target: `bffgate-${SESSIONS_LARGE}`,
          body: 'small',
          options: {
            url: `${gatewayUrl}/api/small`,
            connections: 50,
            duration: DURATION,
            cookies: largeCookies,
            continueTurn: true,
          },
          around,
        },
        {
          target: `bffgate-${SESSIONS}`,
          body: 'small',
          options: { url: `${gatewayUrl}/api/small`, connections: 50, duration: DURATION, cookies, continueTurn: true },
          around,
        },
        // With BENCH_AB_ROOT/BENCH_AB_ENV, the A/B gateway over the same lists in the same rounds
        // (the turn goes on where the other gateway stopped: each visits sessions of its own).
        ...(abGateway !== undefined
          ? [
              {
                target: `bffgate-${SESSIONS_LARGE}-ab`,
                body: 'small' as const,
                options: {
                  url: `${abGateway.url}/api/small`,
                  connections: 50,
                  duration: DURATION,
                  cookies: largeCookies,
                  continueTurn: true,
                },
                around: { pid: abGateway.pid, gatewayUrl: abGateway.url, redis },
              },
              {
                target: `bffgate-${SESSIONS}-ab`,
                body: 'small' as const,
                options: {
                  url: `${abGateway.url}/api/small`,
                  connections: 50,
                  duration: DURATION,
                  cookies,
                  continueTurn: true,
                },
                around: { pid: abGateway.pid, gatewayUrl: abGateway.url, redis },
              },
            ]
          : []),
      ])
      results.large = {
        sessions: SESSIONS_LARGE,
        redisBytesPerSession: bytesPerSession,
        runs: largeRuns,
        gatewayMemory: await gatewayMemory(gatewayUrl, gateway.pid!),
      }
    }
    results.gatewayMemory = await gatewayMemory(gatewayUrl, gateway.pid!)
    results.bareMemory = residentMiB(bare.child.pid!)
    process.stdout.write(
      `gateway memory at the end: ${JSON.stringify(results.gatewayMemory)}; bare proxy: ${JSON.stringify(results.bareMemory)}\n`,
    )
    await store.close()
    await stopChild(gateway)

    await stopChild(bare.child)

    // Refresh storm: short access tokens expire under load; each expiry must cost one exchange.
    const stormIdp = TARGETS.has('storm') ? await startIdp([stormPort], STORM_TOKEN_TTL) : undefined
    if (stormIdp !== undefined)
      try {
        const stormEnv = gatewayEnv(stormPort, stormAdminPort, stormIdp, upstreamUrl, redisServer.url, {
          BFF_REFRESH_SKEW_SECONDS: String(STORM_SKEW),
        })
        const stormGateway = await startGateway(stormEnv, 'gateway-storm')
        const stormUrl = stormEnv.BFF_PUBLIC_URL!
        const stormCookies: string[] = []
        for (let i = 0; i < STORM_SESSIONS; i++) stormCookies.push(await login(stormUrl))
        await fetch(`${upstreamUrl}/__track?on=1`)
        const before = sum(stormIdp.stats().tokenRequests)
        const stormStarted = Date.now()
        const result = await load({
          url: `${stormUrl}/api/small`,
          connections: 50,
          duration: STORM_SECONDS,
          cookies: stormCookies,
        })
        const elapsed = (Date.now() - stormStarted) / 1000
        const tokenCalls = sum(stormIdp.stats().tokenRequests) - before
        const seen = (await (await fetch(`${upstreamUrl}/__stats`)).json()) as { distinctAuthorizations: number }
        await fetch(`${upstreamUrl}/__track?on=0`)
        // Every session starts with one token (from its login, possibly already past its skew);
        // every further distinct token seen upstream is one expiry handled.
        const expiries = Math.max(0, seen.distinctAuthorizations - STORM_SESSIONS)
        const refreshesIfAllExpired = STORM_SESSIONS * Math.floor(elapsed / (STORM_TOKEN_TTL - STORM_SKEW))
        results.storm = {
          sessions: STORM_SESSIONS,
          seconds: STORM_SECONDS,
          accessTokenTtlSeconds: STORM_TOKEN_TTL,
          skewSeconds: STORM_SKEW,
          rps: Math.round(result.requests.average),
          p50Ms: result.latency.p50,
          p99Ms: result.latency.p99,
          non2xx: result.non2xx,
          errors: result.errors + result.timeouts,
          tokenEndpointCalls: tokenCalls,
          distinctTokensSeenUpstream: seen.distinctAuthorizations,
          expiriesHandled: expiries,
          expectedExpiriesApprox: refreshesIfAllExpired,
          tokenCallsPerSessionExpiry: expiries > 0 ? Math.round((tokenCalls / expiries) * 1000) / 1000 : 0,
          rssMiB: Math.round(rssMiB(stormGateway.pid!) * 10) / 10,
        }
        process.stdout.write(`storm: ${JSON.stringify(results.storm)}\n`)
        await stopChild(stormGateway)
      } finally {
        await stormIdp.close()
      }
    await stopChild(upstream.child)
  } finally {
    for (const child of children) await stopChild(child).catch(() => {})
    await idp.close()
    redis.disconnect()
    await redisServer.stop()
  }
  if (GC) results.gc = gcByProcess(results.runs)
  results.wallSeconds = Math.round((Date.now() - started) / 1000)
  // Only a complete run with default settings speaks for the project: others leave the README alone.
  results.complete =
    !QUICK &&
    !CPU_PROF &&
    [
      'BENCH_TARGETS',
      'BENCH_CONNECTIONS',
      'BENCH_ROUNDS',
      'BENCH_GATEWAY_NODE_FLAGS',
      'BENCH_GC',
      'BENCH_LOG_LEVEL',
      'BENCH_PIN',
      'BENCH_AB_ROOT',
      'BENCH_AB_ENV',
      'BENCH_AB_NODE_FLAGS',
      'BENCH_SESSIONS',
    ].every((name) => process.env[name] === undefined)
  writeResults(results, resultsDir, join(root, 'README.md'))
  process.stdout.write(
    `\n${renderMarkdown(results)}\nwrote bench/results/latest.{json,md,svg}${results.complete ? " and the README's results" : ''} in ${results.wallSeconds} s\n`,
  )
}

await main()
