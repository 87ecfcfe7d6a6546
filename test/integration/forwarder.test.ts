import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Readable } from 'node:stream'
import { after, before, describe, test } from 'node:test'
import Fastify, { type FastifyInstance } from 'fastify'
import { BUFFERED_RESPONSE_MAX_BYTES, createForwarder, type UpstreamFailure } from '../../src/proxy/forwarder.ts'
import { connectionListed, isHopByHop, responseHeadersOf } from '../../src/proxy/upstream-headers.ts'

/**
 * The proxy's hop (src/proxy/forwarder.ts) between a real fastify server and a real node:http
 * upstream: what crosses, what does not, buffering against streaming, and failures.
 */

type UpstreamHandler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void

let upstream: Server
let upstreamOrigin: string
let handle: UpstreamHandler = (_req, res) => {
  res.end()
}
/** Each upstream request: its headers and whether it ended by the client going away. */
const seen: Array<{ url: string; headers: IncomingMessage['headers']; aborted: boolean }> = []

let app: FastifyInstance
let appUrl: string
const failures: UpstreamFailure[] = []

before(async () => {
  upstream = createServer((req, res) => {
    const entry = { url: req.url ?? '', headers: req.headers, aborted: false }
    seen.push(entry)
    res.on('close', () => {
      if (!res.writableFinished) entry.aborted = true
    })
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => handle(req, res, Buffer.concat(chunks)))
  })
  upstream.listen(0, '127.0.0.1')
  await once(upstream, 'listening')
  upstreamOrigin = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`

  const forwarder = createForwarder({ headersTimeoutMs: 500 })
  app = Fastify()
  // As @fastify/http-proxy does: bodies reach the handler as the raw stream.
  app.addContentTypeParser('*', (_request, payload, done) => {
    done(null, payload)
  })
  app.all('/p/*', (request, reply) => {
    const listed = connectionListed(request.headers)
    const headers: Record<string, string | string[] | undefined> = {}
    for (const name in request.headers)
      if (!isHopByHop(name, listed) && name !== 'host') headers[name] = request.headers[name]
    forwarder.forward(
      reply,
      {
        origin: upstreamOrigin,
        path: request.url.slice(2),
        method: request.method,
        headers,
        body: request.body instanceof Readable ? request.body : undefined,
      },
      {
        onHead: (_status, responseHeaders) => responseHeaders,
        onDropped: () => {
          reply.code(500).send()
        },
        onFailure(kind) {
          failures.push(kind)
          reply.code(kind === 'timeout' ? 504 : 502).send({ error: kind })
        },
      },
    )
    return reply
  })
  app.addHook('onClose', async () => forwarder.close())
  appUrl = await app.listen({ port: 0, host: '127.0.0.1' })
})

after(async () => {
  await app.close()
  upstream.closeAllConnections()
  upstream.close()
})

/** A raw HTTP/1.1 request (fetch would hide hop-by-hop headers and add its own). */
function call(
  path: string,
  options: { method?: string; headers?: Record<string, string>; body?: Buffer } = {},
): Promise<{ status: number; headers: IncomingMessage['headers']; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      `${appUrl}${path}`,
      { method: options.method ?? 'GET', headers: options.headers },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (chunk: Buffer) => chunks.push(chunk))
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }))
        res.on('error', reject)
      },
    )
    req.on('error', reject)
    req.end(options.body)
  })
}

describe('forwarder', () => {
  test('pure: hop-by-hop headers and those named in Connection are dropped; bad header characters are stripped', () => {
    const listed = connectionListed({ connection: 'close, X-Hop ,keep-alive' })
    assert.deepEqual([...listed!], ['close', 'x-hop', 'keep-alive'])
    for (const name of [
      'connection',
      'keep-alive',
      'transfer-encoding',
      'te',
      'trailer',
      'upgrade',
      'proxy-connection',
      'expect',
      'x-hop',
    ]) {
      assert.equal(isHopByHop(name, listed), true, name)
    }
    assert.equal(isHopByHop('content-type', listed), false)
    assert.deepEqual(
      responseHeadersOf({
        'content-type': 'a\u0001b',
        'set-cookie': ['x=1\u0000', 'y=2'],
        connection: 'x-hop',
        'x-hop': '1',
        etag: '"e"',
      }),
      {
        'content-type': 'ab',
        'set-cookie': ['x=1', 'y=2'],
        etag: '"e"',
      },
    )
  })

  test('status, headers, path and query reach each side; hop-by-hop headers do not', async () => {
    handle = (_req, res) => {
      res.writeHead(201, {
        'content-type': 'application/json',
        'x-upstream': 'yes',
        'x-private-hop': 'no',
        connection: 'x-private-hop',
        'set-cookie': ['a=1', 'b=2'],
      })
      res.end('{"ok":true}')
    }
    const res = await call('/p/items/42?sort=asc&q=a%20b', {
      headers: { connection: 'keep-alive, x-client-hop', 'x-client-hop': 'no', 'x-kept': 'yes', te: 'trailers' },
    })
    assert.equal(res.status, 201)
    assert.equal(res.body.toString(), '{"ok":true}')
    assert.equal(res.headers['x-upstream'], 'yes')
    assert.deepEqual(res.headers['set-cookie'], ['a=1', 'b=2'])
    assert.equal(res.headers['x-private-hop'], undefined)
    const sent = seen.at(-1)!
    assert.equal(sent.url, '/items/42?sort=asc&q=a%20b')
    assert.equal(sent.headers['x-kept'], 'yes')
    assert.equal(sent.headers['x-client-hop'], undefined)
    assert.equal(sent.headers.te, undefined)
  })

  test('a request body streams to the upstream unchanged', async () => {
    handle = (_req, res, body) => {
      res.end(createHash('sha256').update(body).digest('hex'))
    }
    const body = Buffer.alloc(3 * 1024 * 1024 + 7, 'ab')
    const res = await call('/p/upload', {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body,
    })
    assert.equal(res.status, 200)
    assert.equal(res.body.toString(), createHash('sha256').update(body).digest('hex'))
  })

  test('answers at and above the buffering bound arrive whole; HEAD keeps its length; 204 has no body', async () => {
    for (const size of [0, BUFFERED_RESPONSE_MAX_BYTES, BUFFERED_RESPONSE_MAX_BYTES + 1, 5 * 1024 * 1024]) {
      const payload = Buffer.alloc(size, 'z')
      handle = (_req, res) => {
        res.writeHead(200, { 'content-length': size }).end(payload)
      }
      const res = await call('/p/file')
      assert.equal(res.status, 200)
      assert.equal(res.body.length, size, `size ${size}`)
      assert.equal(res.headers['content-length'], String(size))
    }
    handle = (_req, res) => {
      res.writeHead(200, { 'content-length': 1234, 'content-type': 'text/plain' }).end()
    }
    const head = await call('/p/file', { method: 'HEAD' })
    assert.equal(head.headers['content-length'], '1234')
    assert.equal(head.body.length, 0)
    handle = (_req, res) => {
      res.writeHead(204).end()
    }
    const none = await call('/p/nothing', { method: 'DELETE' })
    assert.equal(none.status, 204)
    assert.equal(none.body.length, 0)
  })

  test('an unsized answer (server-sent events) streams: the first event arrives while the upstream is still writing', async () => {
    let finish = () => {}
    handle = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      res.write('data: first\n\n')
      finish = () => res.end('data: last\n\n')
    }
    const first = await new Promise<string>((resolve, reject) => {
      httpRequest(`${appUrl}/p/events`, (res) => {
        res.once('data', (chunk: Buffer) => {
          resolve(chunk.toString())
          res.on('data', () => {})
          finish()
        })
      })
        .on('error', reject)
        .end()
    })
    assert.equal(first, 'data: first\n\n')
  })

  test('a client that leaves a streamed answer midway stops the upstream request', async () => {
    handle = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      res.write('data: tick\n\n')
      const timer = setInterval(() => res.write('data: tick\n\n'), 20)
      res.on('close', () => clearInterval(timer))
    }
    await new Promise<void>((resolve, reject) => {
      const req = httpRequest(`${appUrl}/p/ticks`, (res) => {
        res.once('data', () => {
          req.destroy()
          resolve()
        })
      })
      req.on('error', () => {})
      req.on('close', () => resolve())
      req.end()
      setTimeout(() => reject(new Error('no data')), 2000).unref()
    })
    const entry = seen.at(-1)!
    for (let i = 0; i < 50 && !entry.aborted; i++) await new Promise((resolve) => setTimeout(resolve, 20))
    assert.equal(entry.aborted, true, 'the upstream request was left running')
  })

  test('no answer in time is a timeout; a refused connection or a cut answer is unreachable', async () => {
    failures.length = 0
    handle = () => {} // never answers
    const slow = await call('/p/slow')
    assert.equal(slow.status, 504)
    handle = (_req, res) => {
      res.writeHead(200, { 'content-length': 100 })
      res.write('partial')
      res.destroy()
    }
    const cut = await call('/p/cut')
    assert.equal(cut.status, 502, 'a buffered answer cut midway is a clean 502, not half an answer')
    assert.equal(cut.headers['content-length'], String(cut.body.length))
    assert.deepEqual(failures, ['timeout', 'unreachable'])
  })
})
