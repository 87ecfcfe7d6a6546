import type { FastifyReply } from 'fastify'
import type { IncomingHttpHeaders } from 'node:http'
import { Readable } from 'node:stream'
import { Pool, type Dispatcher } from 'undici'
import { responseHeadersOf } from './upstream-headers.ts'

/**
 * Responses whose declared length is at most this many bytes are collected and sent as one
 * buffer (one write, no stream per request, and a failure midway is still a clean 502);
 * longer or unsized ones (downloads, server-sent events) stream with backpressure, without
 * copies. The bound is measured (bench/README.md, "Figures behind the code").
 */
export const BUFFERED_RESPONSE_MAX_BYTES = 16 * 1024

/** Why an upstream gave no answer: no response headers in time (504), or anything else (502). */
export type UpstreamFailure = 'timeout' | 'unreachable'

export interface ForwardRequest {
  /** The upstream origin (`http://api:9000`): one connection pool per origin. */
  readonly origin: string
  /** Path and query as the upstream sees them. */
  readonly path: string
  readonly method: string
  /** Request headers as sent upstream: the caller has already removed hop-by-hop and browser credentials. */
  readonly headers: IncomingHttpHeaders
  /** The request body, streamed as it arrives; undefined for none. */
  readonly body: Readable | undefined
}

export interface ForwardHandlers {
  /**
   * The upstream answered: its status and client-bound headers (hop-by-hop removed). Return
   * the headers to send, or `'drop'` to discard the answer (its body is drained so the
   * connection is reused; then {@link onDropped} runs, and the reply is the caller's).
   */
  onHead(statusCode: number, headers: IncomingHttpHeaders): IncomingHttpHeaders | 'drop'
  onDropped(): void
  /** No answer could be relayed: nothing has been sent yet, the reply is the caller's. */
  onFailure(kind: UpstreamFailure, err: Error): void
}

export interface ForwarderOptions {
  /** How long to wait for an upstream's response headers (then {@link ForwardHandlers.onFailure} `timeout`). */
  readonly headersTimeoutMs: number
}

export interface Forwarder {
  /** Sends the request upstream and answers `reply` with the upstream's answer. */
  forward(reply: FastifyReply, request: ForwardRequest, handlers: ForwardHandlers): void
  close(): Promise<void>
}

/**
 * The proxy's hop to the upstreams, on undici's dispatcher API: one keep-alive pool per
 * upstream origin, no per-request URL parsing, and small answers relayed as one buffer.
 * It replaces @fastify/reply-from under @fastify/http-proxy (which still routes, validates
 * paths and proxies WebSockets), at about half reply-from's CPU per request (bench/README.md).
 */
export function createForwarder(options: ForwarderOptions): Forwarder {
  const pools = new Map<string, Pool>()
  const poolFor = (origin: string): Pool => {
    let pool = pools.get(origin)
    if (pool === undefined) {
      pool = new Pool(origin, { headersTimeout: options.headersTimeoutMs })
      pools.set(origin, pool)
    }
    return pool
  }

  return {
    forward(reply, request, handlers) {
      const dispatch: Dispatcher.DispatchOptions = {
        path: request.path,
        method: request.method as Dispatcher.HttpMethod,
        headers: request.headers,
        body: request.body ?? null,
      }
      try {
        poolFor(request.origin).dispatch(dispatch, new RelayHandler(reply, request.method === 'HEAD', handlers))
      } catch (err) {
        // undici refused the request itself (a header it will not send): nothing left, nothing answered.
        handlers.onFailure('unreachable', err as Error)
      }
    },
    async close() {
      await Promise.all([...pools.values()].map(async (pool) => pool.close()))
      pools.clear()
    },
  }
}

type RelayState = 'waiting' | 'buffering' | 'streaming' | 'dropping' | 'done'

/** Relays one upstream answer to the reply: buffered when small and sized, else streamed. */
class RelayHandler implements Dispatcher.DispatchHandler {
  private state: RelayState = 'waiting'
  private chunks: Buffer[] = []
  private statusCode = 0
  private headers: IncomingHttpHeaders = {}
  private body: UpstreamBody | undefined
  private readonly reply: FastifyReply
  private readonly head: boolean
  private readonly handlers: ForwardHandlers

  constructor(reply: FastifyReply, head: boolean, handlers: ForwardHandlers) {
    this.reply = reply
    this.head = head
    this.handlers = handlers
  }

  /** Present so that undici treats this as a handler of its current API. */
  onRequestStart(): void {}

  onResponseStart(
    controller: Dispatcher.DispatchController,
    statusCode: number,
    upstreamHeaders: IncomingHttpHeaders,
  ): void {
    if (statusCode < 200) return // 1xx informational: the final answer follows
    const headers = this.handlers.onHead(statusCode, responseHeadersOf(upstreamHeaders))
    if (headers === 'drop') {
      this.state = 'dropping'
      return
    }
    const length = Number(upstreamHeaders['content-length'])
    if (this.head || statusCode === 204 || statusCode === 304 || length <= BUFFERED_RESPONSE_MAX_BYTES) {
      // The answer is set only once it is complete: a failure midway is still a clean 502.
      this.state = 'buffering'
      this.statusCode = statusCode
      this.headers = headers
      return
    }
    this.state = 'streaming'
    this.reply.code(statusCode).headers(headers)
    this.body = new UpstreamBody(controller)
    this.reply.send(this.body)
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.state === 'buffering') this.chunks.push(chunk)
    else if (this.state === 'streaming' && !this.body!.push(chunk)) controller.pause()
  }

  onResponseEnd(): void {
    const state = this.state
    this.state = 'done'
    if (state === 'buffering') {
      const chunks = this.chunks
      this.chunks = []
      this.reply.code(this.statusCode).headers(this.headers)
      this.reply.send(chunks.length === 0 ? undefined : chunks.length === 1 ? chunks[0] : Buffer.concat(chunks))
    } else if (state === 'streaming') {
      this.body!.push(null)
    } else if (state === 'dropping') {
      this.handlers.onDropped()
    }
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    const state = this.state
    if (state === 'done') return // the answer is complete already
    this.state = 'done'
    this.chunks = []
    if (state === 'streaming') {
      // Headers are out: all that is left is to cut the answer short.
      this.body!.destroy(err)
      return
    }
    const timedOut = (err as { code?: string }).code === 'UND_ERR_HEADERS_TIMEOUT'
    this.handlers.onFailure(state === 'waiting' && timedOut ? 'timeout' : 'unreachable', err)
  }
}

/** An upstream body streamed to the client: reading resumes the upstream, destroying aborts it. */
class UpstreamBody extends Readable {
  private readonly controller: Dispatcher.DispatchController

  constructor(controller: Dispatcher.DispatchController) {
    super()
    this.controller = controller
  }

  override _read(): void {
    if (this.controller.paused) this.controller.resume()
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    // The client went away (or the upstream failed): stop reading from the upstream.
    if (!this.readableEnded && !this.controller.aborted)
      this.controller.abort(err ?? new Error('client closed the connection'))
    callback(err)
  }
}
