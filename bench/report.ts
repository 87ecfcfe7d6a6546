import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
/** One measured load run. Latencies in milliseconds. */
export interface LoadRun {
  target: string
  body: 'small' | '64k'
  connections: number
  seconds: number
  rps: number
  p50Ms: number
  p99Ms: number
  requests: number
  non2xx: number
  errors: number
  rssMiB?: number
  /** The target process's user+system CPU over the run, per completed request. */
  cpuUsPerRequest?: number
  redisCommandsPerRequest?: number
  redisCommands?: Record<string, number>
  /** Store operations (each one Redis round trip) per request, from bffgate's metrics. */
  storeRoundTripsPerRequest?: number
  storeOperations?: Record<string, number>
  /** req/s of every interleaved round; the run shown is the median one. */
  roundsRps?: number[]
  /** Every interleaved round's figures, in round order (round i of every target ran together). */
  rounds?: Array<{ rps: number; p99Ms: number; cpuUsPerRequest?: number | undefined }>
}

/** A gateway's memory (MiB): V8 heap and external memory from its metrics; resident memory by kind from /proc; the anonymous rest. */
export interface GatewayMemory {
  heapTotalMiB: number
  heapUsedMiB: number
  externalMiB: number
  rssMiB?: number
  rssAnonMiB?: number
  rssFileMiB?: number
  /** Anonymous resident memory beyond V8's heap and external memory: malloc arenas, code and other V8 spaces, stacks. */
  nativeOtherMiB?: number
}

export interface BenchResults {
  date: string
  label: string
  quick: boolean
  node: string
  cpus: number
  logLevel: string
  /** Proxy under test on CPU 1, everything else on CPU 0. */
  pinned?: boolean
  durationSeconds: number
  warmupSeconds: number
  /** Interleaved rounds per comparison (absent in results written before rounds existed). */
  rounds?: number
  /** A run of every target with default settings: only such a run writes the README's table. */
  complete?: boolean
  runs: LoadRun[]
  gatewayStartRssMiB?: number
  sessions?: number
  redisBytesPerSession?: number
  sealedRecordBytes?: number | undefined
  soak?: {
    seconds: number
    rps: number
    rssFirstMiB: number
    rssLastMiB: number
    rssMaxMiB: number
    growth: number
    /** The gateway's memory every 5 s (results from before it was recorded have none). */
    series?: (GatewayMemory & { atSeconds: number })[]
  }
  storm?: Record<string, number>
  /** With BENCH_GC: each measured process's collections by kind, and their pause time per request it answered. */
  gc?: Record<
    string,
    {
      requests: number
      usPerRequest: number
      minorUsPerRequest: number
      kinds: Record<string, { count: number; totalMs: number; p50Ms: number; p99Ms: number; maxMs: number }>
    }
  >
  wallSeconds?: number
  /** The gateway's memory after the runs (MiB). */
  gatewayMemory?: GatewayMemory
  /** The bare proxy's resident memory by kind after the runs (MiB). */
  bareMemory?: { rssMiB: number; rssAnonMiB: number; rssFileMiB: number }
  /** BENCH_SESSIONS_LARGE: the gateway over that many sessions against the BENCH_SESSIONS ones, interleaved at 50 connections. */
  large?: { sessions: number; redisBytesPerSession: number; runs: LoadRun[]; gatewayMemory: GatewayMemory }
  /** Why the Express peer produced no figures, when it did not. */
  expressPeerError?: string
}

const ratio = (a: number | undefined, b: number | undefined) =>
  a !== undefined && b !== undefined && b > 0 ? (a / b).toFixed(2) : ''

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}

type Figure = 'rps' | 'p99Ms' | 'cpuUsPerRequest'

/**
 * A target's figure against the bare proxy's: the median of the ratios of rounds that ran
 * together (the machine's drift cancels within a round), or, for results without rounds, the
 * ratio of the runs shown.
 */
export function pairedRatio(run: LoadRun, bare: LoadRun | undefined, figure: Figure): string {
  if (bare === undefined) return ''
  const paired = (run.rounds ?? []).flatMap((round, i) => {
    const a = round[figure]
    const b = bare.rounds?.[i]?.[figure]
    return a !== undefined && b !== undefined && b > 0 ? [a / b] : []
  })
  if (paired.length > 0 && paired.length === run.rounds?.length) return median(paired).toFixed(2)
  if (figure === 'rps' && run.roundsRps !== undefined && run.roundsRps.length === bare.roundsRps?.length) {
    return median(run.roundsRps.map((rps, i) => rps / bare.roundsRps![i]!)).toFixed(2)
  }
  return ratio(run[figure], bare[figure])
}

/** The results as a Markdown table, every bffgate figure also as a ratio to the bare proxy. */
export function renderMarkdown(r: BenchResults): string {
  const lines = [
    `# bffgate benchmark (${r.label}, ${r.date})`,
    '',
    `Node ${r.node}, ${r.cpus} CPUs, loopback; ${r.durationSeconds} s per run after ${r.warmupSeconds} s warm-up${r.quick ? ' (BENCH_QUICK)' : ''}${r.rounds !== undefined && r.rounds > 1 ? `; bare proxy, bffgate and the Express peer compared in ${r.rounds} interleaved rounds: the figures shown are the median round's, the ratios the median of each round's ratio (every round's req/s in the last column)` : ''}; gateway log level ${r.logLevel}${r.pinned === true ? '; the proxy under test pinned to CPU 1, load generator, upstream, Redis and IdP to CPU 0' : ''}.`,
    'bffgate-1: one logged-in session; bffgate-10k: requests spread over distinct sessions. Ratios are to bare-proxy at the same connections and body.',
    '',
    '| target | body | conns | req/s | p50 ms | p99 ms | non-2xx | rss MiB | CPU µs/req | Redis cmds/req | Redis round trips/req | req/s ÷ bare | p99 ÷ bare | CPU ÷ bare | rounds req/s |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|',
  ]
  for (const run of r.runs) {
    const bare = r.runs.find(
      (b) => b.target === 'bare-proxy' && b.body === run.body && b.connections === run.connections,
    )
    const isGateway = run.target.startsWith('bffgate') || run.target === 'express-peer'
    lines.push(
      `| ${run.target} | ${run.body} | ${run.connections} | ${run.rps} | ${run.p50Ms} | ${run.p99Ms} | ${run.non2xx + run.errors} | ${run.rssMiB ?? ''} | ${run.cpuUsPerRequest ?? ''} | ${run.redisCommandsPerRequest ?? ''} | ${run.storeRoundTripsPerRequest ?? ''} | ` +
        `${isGateway ? pairedRatio(run, bare, 'rps') : ''} | ${isGateway ? pairedRatio(run, bare, 'p99Ms') : ''} | ${isGateway ? pairedRatio(run, bare, 'cpuUsPerRequest') : ''} | ${run.roundsRps?.join(' / ') ?? ''} |`,
    )
  }
  // Against the Express peer, measured in the same interleaved rounds: the median of the per-round ratios.
  const peerLines: string[] = []
  for (const peer of r.runs.filter((run) => run.target === 'express-peer')) {
    for (const target of ['bffgate-1', 'bffgate-10k']) {
      const gateway = r.runs.find(
        (run) => run.target === target && run.body === 'small' && run.connections === peer.connections,
      )
      if (gateway === undefined) continue
      peerLines.push(
        `- ${target} ÷ Express peer at ${peer.connections} connections: req/s ${pairedRatio(gateway, peer, 'rps')}×, p99 ${pairedRatio(gateway, peer, 'p99Ms')}× (lower is better), CPU per request ${pairedRatio(gateway, peer, 'cpuUsPerRequest')}×.`,
      )
    }
  }
  if (peerLines.length > 0) lines.push('', ...peerLines)
  lines.push('')
  if (r.sessions !== undefined)
    lines.push(
      `- Sessions: ${r.sessions}, each of its own user and IdP session; Redis memory per session ${r.redisBytesPerSession} bytes (INFO used_memory delta ÷ sessions, the session key and its two index entries; sealed record ${r.sealedRecordBytes} bytes).`,
    )
  if (r.gatewayStartRssMiB !== undefined)
    lines.push(
      `- bffgate RSS at start ${r.gatewayStartRssMiB} MiB${r.gatewayMemory !== undefined ? `; after the runs its V8 heap was ${r.gatewayMemory.heapUsedMiB} MiB used of ${r.gatewayMemory.heapTotalMiB} MiB, external memory ${r.gatewayMemory.externalMiB} MiB` : ''}.`,
    )
  const m = r.gatewayMemory
  if (m?.rssMiB !== undefined)
    lines.push(
      `- bffgate resident memory after the runs: ${m.rssMiB} MiB = ${m.rssFileMiB} MiB file-backed (code) + ${m.rssAnonMiB} MiB anonymous: V8 heap ${m.heapTotalMiB} MiB, external ${m.externalMiB} MiB, the rest ${m.nativeOtherMiB} MiB (malloc arenas, V8 code and other spaces, stacks)${r.bareMemory !== undefined ? `; bare proxy ${r.bareMemory.rssMiB} MiB = ${r.bareMemory.rssFileMiB} file-backed + ${r.bareMemory.rssAnonMiB} anonymous` : ''}.`,
    )
  if (r.large !== undefined) {
    for (const suffix of ['', '-ab']) {
      const large = r.large.runs.find((x) => x.target === `bffgate-${r.large!.sessions}${suffix}`)
      const base = r.large.runs.find((x) => x.target === `bffgate-${r.sessions}${suffix}`)
      if (large === undefined || base === undefined) continue
      lines.push(
        `- ${r.large.sessions} sessions${suffix === '' ? '' : ' (A/B gateway)'} (BENCH_SESSIONS_LARGE; ${r.large.redisBytesPerSession} bytes of Redis each), the same gateway at 50 connections, interleaved with its ${base.target.replace('bffgate-', '')} sessions: ${large.rps} against ${base.rps} req/s (per-round ratio ${pairedRatio(large, base, 'rps')}×; rounds ${large.roundsRps?.join(' / ')} against ${base.roundsRps?.join(' / ')}), CPU ${large.cpuUsPerRequest} against ${base.cpuUsPerRequest} µs/request (rounds ${large.rounds?.map((x) => x.cpuUsPerRequest).join(' / ')} against ${base.rounds?.map((x) => x.cpuUsPerRequest).join(' / ')}), store round trips ${large.storeRoundTripsPerRequest} against ${base.storeRoundTripsPerRequest} per request, RSS ${large.rssMiB} against ${base.rssMiB} MiB${suffix === '' ? `; at the end V8 heap ${r.large.gatewayMemory.heapUsedMiB} of ${r.large.gatewayMemory.heapTotalMiB} MiB, RSS ${r.large.gatewayMemory.rssMiB} MiB` : ''}.`,
      )
    }
  }
  if (r.soak !== undefined)
    lines.push(
      `- Soak ${r.soak.seconds} s at 50 connections, ${r.soak.rps} req/s: RSS ${r.soak.rssFirstMiB.toFixed(1)} → ${r.soak.rssLastMiB.toFixed(1)} MiB (max ${r.soak.rssMaxMiB.toFixed(1)}), growth ${(r.soak.growth * 100).toFixed(1)} %` +
        (r.soak.series !== undefined && r.soak.series.length > 0
          ? `; by minute (RSS / V8 heap used of allocated / the rest, MiB): ${r.soak.series
              .filter((point, i, all) => i === 0 || i === all.length - 1 || point.atSeconds % 60 < 5)
              .map(
                (point) =>
                  `${point.atSeconds} s ${point.rssMiB} / ${point.heapUsedMiB} of ${point.heapTotalMiB} / ${point.nativeOtherMiB}`,
              )
              .join(', ')}.`
          : '.'),
    )
  if (r.storm !== undefined) {
    const s = r.storm
    lines.push(
      `- Refresh storm: ${s.sessions} sessions, access tokens of ${s.accessTokenTtlSeconds} s (skew ${s.skewSeconds} s), ${s.seconds} s at 50 connections: ${s.rps} req/s, p50 ${s.p50Ms} ms, p99 ${s.p99Ms} ms, non-2xx ${s.non2xx! + s.errors!}; ` +
        `${s.tokenEndpointCalls} token-endpoint calls for ${s.expiriesHandled} expiries handled (new tokens seen upstream; ~${s.expectedExpiriesApprox} if every session hit every expiry) = ${s.tokenCallsPerSessionExpiry} calls per session per expiry.`,
    )
  }
  for (const [name, gc] of Object.entries(r.gc ?? {}))
    lines.push(
      `- Garbage collection (BENCH_GC), ${name}: ${gc.usPerRequest} µs of pauses per request answered (scavenges ${gc.minorUsPerRequest}; warm-ups included), ` +
        Object.entries(gc.kinds)
          .map(([kind, k]) => `${kind} ${k.count}× (${k.totalMs} ms, p50 ${k.p50Ms} ms, p99 ${k.p99Ms} ms)`)
          .join(', ') +
        '.',
    )
  if (r.expressPeerError !== undefined) lines.push(`- Express peer: no figures (${r.expressPeerError}).`)
  return `${lines.join('\n')}\n`
}

/**
 * Writes bench/results/latest.{json,md,svg} (and `<label>.json`), and the README's table when
 * the results are of a complete run.
 */
export function writeResults(r: BenchResults, resultsDir: string, readmePath: string): void {
  const json = JSON.stringify(r, null, 2)
  writeFileSync(join(resultsDir, 'latest.json'), json)
  if (r.label !== 'latest') writeFileSync(join(resultsDir, `${r.label}.json`), json)
  writeFileSync(join(resultsDir, 'latest.md'), renderMarkdown(r))
  writeFileSync(join(resultsDir, 'latest.svg'), renderChart(r))
  if (r.complete === true) writeFileSync(readmePath, withResultsInReadme(readFileSync(readmePath, 'utf8'), r))
}

const README_START = '<!-- bench-results:start (written by npm run bench) -->'
const README_END = '<!-- bench-results:end -->'

/** The README with its results section (between the markers) replaced by these results. */
export function withResultsInReadme(readme: string, r: BenchResults): string {
  const start = readme.indexOf(README_START)
  const end = readme.indexOf(README_END)
  if (start === -1 || end < start) return readme
  const body = renderMarkdown(r).split('\n').slice(2).join('\n').trim() // without the title line
  return `${readme.slice(0, start + README_START.length)}\n\n${body}\n\n${readme.slice(end)}`
}

const COLORS: Record<string, string> = {
  upstream: '#888',
  'bare-proxy': '#1f77b4',
  'bffgate-1': '#d62728',
  'bffgate-10k': '#ff7f0e',
  'bffgate-10k-ab': '#8c564b',
  'express-peer': '#9467bd',
}

/** Two hand-drawn panels: throughput and p99 by connection count, one line per target (small body). */
export function renderChart(r: BenchResults): string {
  const runs = r.runs.filter((x) => x.body === 'small')
  const targets = [...new Set(runs.map((x) => x.target))]
  const conns = [...new Set(runs.map((x) => x.connections))].sort((a, b) => a - b)
  const W = 420
  const H = 260
  const pad = 50
  const panel = (ox: number, title: string, value: (x: (typeof runs)[number]) => number, unit: string) => {
    const max = Math.max(...runs.map(value)) * 1.1 || 1
    const x = (i: number) => ox + pad + (i * (W - 2 * pad)) / Math.max(1, conns.length - 1)
    const y = (v: number) => H - pad + 10 - (v / max) * (H - 2 * pad)
    const out = [
      `<text x="${ox + W / 2}" y="20" text-anchor="middle" font-size="14">${title}</text>`,
      `<line x1="${ox + pad}" y1="${H - pad + 10}" x2="${ox + W - pad}" y2="${H - pad + 10}" stroke="#000"/>`,
      `<line x1="${ox + pad}" y1="${pad - 10}" x2="${ox + pad}" y2="${H - pad + 10}" stroke="#000"/>`,
      `<text x="${ox + 8}" y="${pad - 14}" font-size="10">${Math.round(max)} ${unit}</text>`,
      `<text x="${ox + W / 2}" y="${H - 8}" text-anchor="middle" font-size="11">connections</text>`,
    ]
    conns.forEach((c, i) =>
      out.push(`<text x="${x(i)}" y="${H - pad + 24}" text-anchor="middle" font-size="10">${c}</text>`),
    )
    for (const t of targets) {
      const points = conns
        .map((c, i) => {
          const run = runs.find((q) => q.target === t && q.connections === c)
          return run ? `${x(i).toFixed(1)},${y(value(run)).toFixed(1)}` : ''
        })
        .filter(Boolean)
      out.push(
        `<polyline fill="none" stroke="${COLORS[t] ?? '#2ca02c'}" stroke-width="2" points="${points.join(' ')}"/>`,
      )
      for (const p of points) {
        const [px, py] = p.split(',')
        out.push(`<circle cx="${px}" cy="${py}" r="3" fill="${COLORS[t] ?? '#2ca02c'}"/>`)
      }
    }
    return out.join('\n')
  }
  const legend = targets
    .map(
      (t, i) =>
        `<rect x="${20 + i * 130}" y="${H + 8}" width="12" height="12" fill="${COLORS[t] ?? '#2ca02c'}"/><text x="${36 + i * 130}" y="${H + 18}" font-size="11">${t}</text>`,
    )
    .join('\n')
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${2 * W}" height="${H + 30}" font-family="sans-serif">
<rect width="100%" height="100%" fill="#fff"/>
${panel(0, 'Throughput (req/s, small body)', (q) => q.rps, 'req/s')}
${panel(W, 'p99 latency (ms, small body)', (q) => q.p99Ms, 'ms')}
${legend}
</svg>
`
}
