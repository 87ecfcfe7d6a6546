/**
 * In-process A/B of the logging cost per request (issue #20): fastify with each logging setup,
 * the same route, light-my-request injections, CPU time per request in interleaved rounds.
 * Kinds (KINDS, comma list): none (no logger), old (fastify's two lines per request, a child
 * logger per request, the former wildcard redaction, UUID ids), new-info (bffgate's: one access
 * line on the root logger built by `accessLineWriter` and written to pino's stream, lazy child
 * loggers, exact-path redaction, counter ids), new-warn (the same at warn: no line), pino-info
 * (the same, but the line written with `log.info(fields, msg)`, as before `accessLineWriter`),
 * new-buffered / new-sync (new-info on a pino destination with a 4 KiB buffer / synchronous).
 * Usage: `node bench/log-cost.ts | cat > /dev/null` (stdout a pipe, as in a container); ROUNDS (default 7).
 */
import Fastify, { LogController, type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { randomUUID } from 'node:crypto'
import pino from 'pino'
import { accessLineWriter, loggerOptions } from '../src/logger.ts'
import { lazyChildLogger } from '../src/request-logger.ts'

/** What bffgate's logger was before issue #20. */
const OLD_REDACT = [
  'req.headers.cookie',
  'req.headers.authorization',
  'res.headers["set-cookie"]',
  '*.access_token',
  '*.refresh_token',
  '*.id_token',
  '*.code',
  '*.client_secret',
]
const ID_PREFIX = 'AbCdEfGhIjKl'
let lastId = 0

async function build(kind: string): Promise<FastifyInstance> {
  const current = loggerOptions(kind === 'new-warn' ? 'warn' : 'info')
  if (kind === 'new-buffered')
    Object.assign(current, { stream: pino.destination({ dest: 1, minLength: 4096, sync: false }) })
  if (kind === 'new-sync') Object.assign(current, { stream: pino.destination({ dest: 1, sync: true }) })
  const options: FastifyServerOptions =
    kind === 'none'
      ? { logger: false }
      : kind === 'old'
        ? {
            logger: { level: 'info', redact: { paths: OLD_REDACT, censor: '[redacted]' } },
            genReqId: () => randomUUID(),
          }
        : {
            logger: current,
            logController: new LogController({ disableRequestLogging: true }),
            childLoggerFactory: lazyChildLogger,
            genReqId: () => `${ID_PREFIX}-${(++lastId).toString(36)}`,
          }
  const app = Fastify(options) as unknown as FastifyInstance
  const log = app.log
  if (kind === 'pino-info') {
    app.addHook('onResponse', (request, reply, done) => {
      log.info(
        {
          reqId: request.id,
          method: request.method,
          route: '/api',
          status: reply.statusCode,
          ms: Math.round(reply.elapsedTime * 100) / 100,
        },
        'request completed',
      )
      done()
    })
  } else if (kind.startsWith('new')) {
    const writeAccessLine = accessLineWriter(log).write
    app.addHook('onResponse', (request, reply, done) => {
      writeAccessLine({
        reqId: request.id,
        method: request.method,
        route: '/api',
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime * 100) / 100,
        code: undefined,
      })
      done()
    })
  }
  app.get('/api/*', (_request, reply) => {
    reply.send('{"ok":true}')
  })
  await app.ready()
  return app
}

const kinds = (process.env.KINDS ?? 'none,old,pino-info,new-info,new-warn').split(',')
const apps = new Map(await Promise.all(kinds.map(async (kind) => [kind, await build(kind)] as const)))
const N = 5000
const inject = (app: FastifyInstance) => app.inject({ url: '/api/x?code=1', headers: { cookie: 'a=b' } })
const results = new Map(kinds.map((kind) => [kind, [] as number[]]))
for (const app of apps.values()) for (let i = 0; i < 2000; i++) await inject(app)
for (let round = 0; round < Number(process.env.ROUNDS ?? 7); round++) {
  for (let j = 0; j < kinds.length; j++) {
    const kind = kinds[(j + round) % kinds.length]!
    const app = apps.get(kind)!
    const started = process.cpuUsage()
    for (let i = 0; i < N; i++) await inject(app)
    const used = process.cpuUsage(started)
    results.get(kind)!.push((used.user + used.system) / N)
  }
}
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!
const base = median(results.get(kinds[0]!)!)
for (const kind of kinds) {
  const runs = results.get(kind)!
  process.stderr.write(
    `${kind.padEnd(11)} median ${median(runs).toFixed(1)} µs/req (Δ vs ${kinds[0]} ${(median(runs) - base).toFixed(1)}); rounds ${runs.map((x) => x.toFixed(1)).join(' ')}\n`,
  )
}
