import type { FastifyBaseLogger, FastifyServerOptions } from 'fastify'
import pino from 'pino'

/** What an error code looks like (`ECONNREFUSED`, `BFF_ERR_*`, `FST_ERR_*`, `ERR_*`, `UND_ERR_*`): upper case, digits, `_`. */
const ERROR_CODE = /^[A-Z][A-Z0-9_]{0,63}$/
/** How deep `cause` chains (and `AggregateError`'s `errors`) are followed. */
const CAUSE_DEPTH = 4

interface LoggedError {
  type: string
  message: string
  code?: string
  stack?: string
  cause?: LoggedError
  errors?: LoggedError[]
}

/**
 * A `code` field as logged: an error code is kept, anything else (an authorization code, a
 * value someone put there) is replaced. Applies to the `code` of every log object and of every
 * logged error and its causes.
 */
export function loggedCode(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined
  return typeof value === 'string' && ERROR_CODE.test(value) ? value : '[redacted]'
}

function messageWithCauses(err: Error): string {
  let message = err.message
  let cause = err.cause
  for (let depth = 0; cause instanceof Error && depth < CAUSE_DEPTH; depth++, cause = cause.cause) {
    if (cause.message !== '') message += `: ${cause.message}`
  }
  return message
}

/**
 * An error as logged: its type, message, error code, stack and causes, and nothing else.
 * Libraries hang response bodies, token sets and request options on their errors (openid-client's
 * `cause` can be a token endpoint's JSON); those never reach the log. `stack: false` for
 * expected failures (a 4xx), whose stack says nothing.
 */
export function loggedError(err: unknown, options: { stack?: boolean } = {}, depth = 0): LoggedError {
  // Not an Error (a response body, a string): only its type, since anything could be in it.
  if (!(err instanceof Error))
    return { type: err === null ? 'null' : typeof err, message: '(not an Error: not logged)' }
  // As pino's own serializer: the message followed by its causes' (`a: b: c`), so one field says what failed and why.
  const out: LoggedError = { type: err.name, message: depth === 0 ? messageWithCauses(err) : err.message }
  const code = loggedCode((err as { code?: unknown }).code)
  if (code !== undefined) out.code = code
  if (options.stack !== false && err.stack !== undefined) out.stack = err.stack
  if (depth < CAUSE_DEPTH) {
    if (err.cause !== undefined) out.cause = loggedError(err.cause, options, depth + 1)
    if (err instanceof AggregateError && Array.isArray(err.errors))
      out.errors = err.errors.slice(0, 5).map((e: unknown) => loggedError(e, options, depth + 1))
  }
  return out
}

/**
 * pino options: JSON lines, secrets kept out by construction rather than by a walk over every
 * log object. fastify's own per-request lines are off (see `buildApp`): bffgate writes one access
 * line per request itself (http/observability.ts). Errors are logged through
 * {@link loggedError} (type, message, code, stack, causes only) and `code` fields through
 * {@link loggedCode}, so neither a response body hung on an error nor an authorization code can be
 * logged; redaction is left with exact paths only (wildcard paths make pino copy and walk every
 * logged object: ~7 µs per line measured). Request URLs are logged without their query string,
 * which can carry an authorization code, state or anything an SPA put there.
 */
export function loggerOptions(level: string): NonNullable<FastifyServerOptions['logger']> {
  return {
    level,
    redact: {
      paths: ['req.headers.cookie', 'req.headers.authorization', 'res.headers["set-cookie"]'],
      censor: '[redacted]',
    },
    serializers: {
      req(request: { method: string; url: string; id: string; ip?: string }) {
        const question = request.url.indexOf('?')
        return {
          id: request.id,
          method: request.method,
          url: question === -1 ? request.url : request.url.slice(0, question),
        }
      },
      // fastify's type wants a `stack` on every serialized error; ours has one only when the error had one.
      err: ((err: unknown) => loggedError(err)) as unknown as (err: Error) => {
        type: string
        message: string
        stack: string
      },
      code: loggedCode,
    },
  }
}

/** The fields of the access line (one per request, http/observability.ts). */
export interface AccessLine {
  readonly reqId: string
  readonly method: string
  readonly route: string
  /** The frontend the route belongs to; given only when there are several frontends. */
  readonly frontend?: string | undefined
  readonly status: number
  readonly ms: number
  readonly code?: string | undefined
}

const ACCESS_MESSAGE = JSON.stringify('request completed')
const INFO = 30
const FLUSH_AT = 16 * 1024
const FLUSH_AFTER_MS = 50
/** Access lines still held when the process exits are written then (one listener for all writers). */
const atExit = new Set<() => void>()
process.once('exit', () => {
  for (const flush of atExit) {
    try {
      flush()
    } catch {}
  }
})

/**
 * The access line's writer: the same JSON line `log.info(fields, 'request completed')` writes
 * (pino's level number, epoch `time`, the logger's bindings, then the fields and `msg`), built
 * as one template string and handed to the logger's own stream. pino's generic path walks the
 * object, looks up a serializer for each key and escapes each value, ~2.5 µs a line on this
 * machine against ~1 µs here; the line is the only thing logged per request. The lines of one
 * event-loop turn are written together (see below), so an access line can follow a line logged
 * later in the same turn; each has its time. Strings go through
 * `JSON.stringify` (a request id or method is never trusted to need no escaping). A logger that
 * is not pino's (or any option that changes pino's line shape) falls back to `log.info`.
 */
export interface AccessLineWriter {
  /** Writes one access line (within 50 ms, with the others of that time). */
  readonly write: (line: AccessLine) => void
  /** Writes what is held now; the process's exit no longer needs to (the app is closing). */
  readonly close: () => void
}

export function accessLineWriter(log: FastifyBaseLogger): AccessLineWriter {
  const raw = log as unknown as Record<symbol, unknown> & { levelVal?: number }
  const stream = raw[pino.symbols.streamSym] as { write: (line: string) => unknown } | undefined
  const chindings = raw[pino.symbols.chindingsSym]
  const formatters = raw[pino.symbols.formattersSym] as { log?: unknown } | undefined
  const hooks = raw[pino.symbols.hooksSym] as { logMethod?: unknown; streamWrite?: unknown } | undefined
  // pino's defaults for everything that shapes a line; anything else goes through pino itself.
  // (pino's types do not list the message-prefix symbol.)
  const msgPrefixSym = (pino.symbols as unknown as Record<string, symbol | undefined>).msgPrefixSym
  const plainShape =
    raw[pino.symbols.messageKeySym] === 'msg' &&
    raw[pino.symbols.timeSym] === pino.stdTimeFunctions.epochTime &&
    raw[pino.symbols.mixinSym] === undefined &&
    (msgPrefixSym === undefined || raw[msgPrefixSym] === undefined) &&
    formatters?.log === undefined &&
    hooks?.logMethod === undefined &&
    hooks?.streamWrite === undefined
  if (stream === undefined || typeof stream.write !== 'function' || typeof chindings !== 'string' || !plainShape) {
    return {
      write: ({ reqId, method, route, frontend, status, ms, code }) =>
        log.info(
          {
            reqId,
            method,
            route,
            ...(frontend !== undefined && { frontend }),
            status,
            ms,
            ...(code !== undefined && { code }),
          },
          'request completed',
        ),
      close: () => {},
    }
  }
  const line = ({ reqId, method, route, frontend, status, ms, code }: AccessLine): string =>
    `{"level":${INFO},"time":${Date.now()}${chindings},"reqId":${JSON.stringify(reqId)},"method":${JSON.stringify(method)},"route":${JSON.stringify(route)}${frontend !== undefined ? `,"frontend":${JSON.stringify(frontend)}` : ''},"status":${status},"ms":${ms}${code !== undefined ? `,"code":${JSON.stringify(code)}` : ''},"msg":${ACCESS_MESSAGE}}\n`
  // Another stream than pino's own destination (a test's capture, a user's) gets one line per
  // write, as pino writes them.
  if ((stream as { constructor?: { name?: string } }).constructor?.name !== 'SonicBoom') {
    return {
      write: (fields) => {
        if ((raw.levelVal ?? INFO) <= INFO) stream.write(line(fields))
      },
      close: () => {},
    }
  }
  // Lines go to pino's destination (sonic-boom) in batches: sonic-boom measures the byte length
  // of everything it holds on each write while a write is in flight, and each of its writes is
  // an fs.write through libuv's thread pool (the costs: bench/README.md). Flushed at FLUSH_AT
  // bytes, FLUSH_AFTER_MS after the first line held, at the app's close and at exit (also on a
  // second stop signal: src/server.ts exits through process.exit).
  let pending = ''
  let scheduled = false
  const flush = () => {
    scheduled = false
    if (pending === '') return
    const out = pending
    pending = ''
    stream.write(out)
  }
  // pino's own exit handler flushes its stream before this one runs, so this flushes it again.
  const atExitFlush = () => {
    flush()
    ;(stream as { flushSync?: () => void }).flushSync?.()
  }
  atExit.add(atExitFlush)
  let closed = false
  const write = (fields: AccessLine): void => {
    if ((raw.levelVal ?? INFO) > INFO) return
    // After close (a request that finished during shutdown), straight to the stream: nothing may wait for a timer.
    if (closed) {
      stream.write(line(fields))
      return
    }
    pending += line(fields)
    if (pending.length >= FLUSH_AT) flush()
    else if (!scheduled) {
      scheduled = true
      setTimeout(flush, FLUSH_AFTER_MS).unref()
    }
  }
  return {
    write,
    close: () => {
      closed = true
      atExit.delete(atExitFlush)
      flush()
    },
  }
}
