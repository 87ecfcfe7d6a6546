import type { FastifyBaseLogger } from 'fastify'

type Bindings = Parameters<FastifyBaseLogger['child']>[0]
type ChildLoggerOptions = NonNullable<Parameters<FastifyBaseLogger['child']>[1]>

type LogMethod = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace'

/**
 * A request's logger, made lazily: fastify asks for one per request (a pino child with the
 * request id bound), but at the default level a proxied request logs nothing through it (its
 * access line is written on the root logger). The pino child is created on the first call that
 * logs, so a request that logs nothing costs one small object instead of a child logger.
 */
class LazyRequestLogger implements FastifyBaseLogger {
  readonly #parent: FastifyBaseLogger
  readonly #bindings: Bindings
  readonly #options: ChildLoggerOptions
  #child: FastifyBaseLogger | undefined

  constructor(parent: FastifyBaseLogger, bindings: Bindings, options: ChildLoggerOptions) {
    this.#parent = parent
    this.#bindings = bindings
    this.#options = options
  }

  #real(): FastifyBaseLogger {
    this.#child ??= this.#parent.child(this.#bindings, this.#options)
    return this.#child
  }

  get level(): string {
    return (this.#child ?? this.#parent).level
  }
  set level(level: string) {
    this.#real().level = level
  }

  fatal(...args: unknown[]): void {
    this.#log('fatal', args)
  }
  error(...args: unknown[]): void {
    this.#log('error', args)
  }
  warn(...args: unknown[]): void {
    this.#log('warn', args)
  }
  info(...args: unknown[]): void {
    this.#log('info', args)
  }
  debug(...args: unknown[]): void {
    this.#log('debug', args)
  }
  trace(...args: unknown[]): void {
    this.#log('trace', args)
  }
  silent(): void {}

  child(bindings: Bindings, options?: ChildLoggerOptions): FastifyBaseLogger {
    return this.#real().child(bindings, options)
  }

  #log(method: LogMethod, args: unknown[]): void {
    // A level that is off costs no child: pino's disabled methods are no-ops on the parent too.
    if (this.#child === undefined && !isEnabled(this.#parent, method)) return
    ;(this.#real()[method] as (...a: unknown[]) => void)(...args)
  }
}

/** pino replaces a disabled level's method with one shared no-op; this asks pino where it can. */
function isEnabled(logger: FastifyBaseLogger, method: LogMethod): boolean {
  const ask = (logger as { isLevelEnabled?: (level: string) => boolean }).isLevelEnabled
  return typeof ask === 'function' ? ask.call(logger, method) : true
}

/** fastify's `childLoggerFactory`: the request logger above. */
export function lazyChildLogger(
  logger: FastifyBaseLogger,
  bindings: Bindings,
  options: ChildLoggerOptions,
): FastifyBaseLogger {
  return new LazyRequestLogger(logger, bindings, options)
}
