import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import pino from 'pino'
import { accessLineWriter, loggedCode, loggedError, loggerOptions } from '../../src/logger.ts'

describe('logged errors and codes', () => {
  test('error codes are kept, anything else in a code field is not', () => {
    for (const code of [
      'ECONNREFUSED',
      'BFF_ERR_SESSION_ENDED',
      'FST_ERR_CTP_INVALID_JSON_BODY',
      'UND_ERR_CONNECT_TIMEOUT',
      'ERR_INVALID_URL',
    ])
      assert.equal(loggedCode(code), code)
    // Authorization codes and other values someone put under `code`.
    for (const value of [
      'SplxlOBeZQQYbYS6WxSbIA',
      'abc123secret',
      'a'.repeat(80),
      'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789',
      42,
      { code: 'x' },
    ]) {
      assert.equal(loggedCode(value), '[redacted]', String(value))
    }
    assert.equal(loggedCode(undefined), undefined)
  })

  test('an error is logged as type, message, code, stack and causes: nothing a library hung on it', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), {
      code: 'ECONNREFUSED',
      address: '127.0.0.1',
    })
    const failed = new TypeError('fetch failed', { cause: refused })
    const body = { access_token: 'eyJ.secret.token', refresh_token: 'ORT-secret', id_token: 'eyJ.id.token' }
    const oauth = Object.assign(new Error('unexpected response', { cause: body }), {
      code: 'SplxlOBeZQQYbYS6WxSbIA',
      response: { body },
      parameters: { code: 'the-authorization-code' },
    })
    const logged = loggedError(new AggregateError([failed, oauth], 'both failed'))
    const text = JSON.stringify(logged)
    assert.equal(logged.type, 'AggregateError')
    assert.equal(logged.errors?.[0]?.cause?.code, 'ECONNREFUSED')
    assert.equal(logged.errors?.[0]?.message, 'fetch failed', 'below the top, each error has its own message')
    assert.equal(
      loggedError(failed).message,
      'fetch failed: connect ECONNREFUSED 127.0.0.1:1',
      "the top message names the causes, as pino's does",
    )
    assert.equal(logged.errors?.[1]?.code, '[redacted]')
    assert.deepEqual(logged.errors?.[1]?.cause, { type: 'object', message: '(not an Error: not logged)' })
    for (const secret of ['secret', 'ORT-', 'the-authorization-code', 'SplxlOBeZQQYbYS6WxSbIA', 'address'])
      assert.ok(!text.includes(secret), secret)
    assert.ok(typeof logged.stack === 'string')
    assert.equal(loggedError(refused, { stack: false }).stack, undefined)
  })

  test('a cause chain is followed to a bounded depth', () => {
    let err: Error = new Error('root')
    for (let i = 0; i < 50; i++) err = new Error(`level ${i}`, { cause: err })
    let depth = 0
    for (let e = loggedError(err); e.cause !== undefined; e = e.cause) depth += 1
    assert.ok(depth <= 4, `depth ${depth}`)
  })
})

describe('the access line', () => {
  const capture = (options: pino.LoggerOptions) => {
    const lines: string[] = []
    const log = pino(options, {
      write: (line: string) => {
        lines.push(line)
      },
    })
    return { log, lines }
  }
  const fields = [
    { reqId: 'AbC-1', method: 'GET', route: '/api', status: 200, ms: 1.25, code: undefined },
    { reqId: 'x"\\\n\u2028y', method: 'PROPFIND', route: 'unmatched', status: 404, ms: 0, code: 'BFF_ERR_NOT_FOUND' },
  ]

  test('written by hand, it is the line log.info writes, field for field and byte for byte apart from the time', () => {
    for (const line of fields) {
      const viaPino = capture(loggerOptions('info') as pino.LoggerOptions)
      const { code, ...rest } = line
      viaPino.log.info({ ...rest, ...(code !== undefined && { code }) }, 'request completed')
      const byHand = capture(loggerOptions('info') as pino.LoggerOptions)
      accessLineWriter(byHand.log).write(line)
      assert.equal(byHand.lines.length, 1)
      const withoutTime = (text: string) => text.replace(/"time":\d+/, '"time":0')
      assert.equal(withoutTime(byHand.lines[0]!), withoutTime(viaPino.lines[0]!))
      assert.deepEqual(Object.keys(JSON.parse(byHand.lines[0]!) as object), [
        'level',
        'time',
        'pid',
        'hostname',
        'reqId',
        'method',
        'route',
        'status',
        'ms',
        ...(code !== undefined ? ['code'] : []),
        'msg',
      ])
    }
  })

  test('nothing is written above info, also after the level changes', () => {
    const { log, lines } = capture(loggerOptions('warn') as pino.LoggerOptions)
    const { write } = accessLineWriter(log)
    write(fields[0]!)
    assert.equal(lines.length, 0)
    log.level = 'info'
    write(fields[0]!)
    assert.equal(lines.length, 1)
  })

  test('a logger that shapes its lines otherwise (a mixin, another message key) is written to through pino', () => {
    for (const options of [
      { mixin: () => ({ extra: 1 }) },
      { messageKey: 'message' },
      { formatters: { log: (o: object) => ({ ...o, shaped: true }) } },
    ]) {
      const { log, lines } = capture({ ...(loggerOptions('info') as pino.LoggerOptions), ...options })
      accessLineWriter(log).write(fields[0]!)
      const parsed = JSON.parse(lines[0]!) as Record<string, unknown>
      assert.equal(parsed.reqId, 'AbC-1')
      assert.ok(
        parsed.extra === 1 || parsed.message === 'request completed' || parsed.shaped === true,
        JSON.stringify(parsed),
      )
    }
  })

  test("on pino's own destination, lines are written in batches, in order: at 16 KiB or within 50 ms", async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'bff-access-')), 'log')
    const destination = pino.destination({ dest: file, sync: false })
    await new Promise((resolve) => destination.once('ready', resolve))
    // What the writer hands to the stream, one entry per write call.
    const handed: string[] = []
    const write = destination.write.bind(destination)
    destination.write = (data: string) => {
      handed.push(data)
      return write(data)
    }
    const log = pino(loggerOptions('info') as pino.LoggerOptions, destination)
    const writer = accessLineWriter(log)
    const ids = (chunk: string) =>
      chunk
        .trimEnd()
        .split('\n')
        .map((l) => (JSON.parse(l) as { reqId: string }).reqId)
    // The complete lines in the file: a read can land in the middle of the stream's write, so
    // whatever follows the last newline is not a line yet.
    const written = () =>
      readFileSync(file, 'utf8')
        .split('\n')
        .slice(0, -1)
        .map((l) => (JSON.parse(l) as { reqId: string }).reqId)
    const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
    // Until `done()` holds (or 5 s pass).
    const until = async (done: () => boolean) => {
      for (const started = Date.now(); !done() && Date.now() - started < 5000;) await sleep(5)
    }
    for (let i = 0; i < 5; i++) writer.write({ ...fields[0]!, reqId: `r${i}` })
    assert.equal(handed.length, 0, 'held')
    await sleep(10)
    assert.equal(handed.length, 0, 'held for a while')
    await until(() => handed.length > 0)
    assert.deepEqual(handed.map(ids), [['r0', 'r1', 'r2', 'r3', 'r4']], 'then handed on by the timer, in one write')
    // Synchronously, before any timer can run: every 16 KiB held goes out at once.
    for (let i = 5; i < 200; i++) writer.write({ ...fields[0]!, reqId: `r${i}` })
    assert.ok(handed.length >= 2, 'past 16 KiB, handed on at once')
    for (const chunk of handed.slice(1)) assert.ok(Buffer.byteLength(chunk) >= 16 * 1024, 'in batches of 16 KiB')
    writer.close()
    const atClose = handed.length
    assert.deepEqual(
      handed.flatMap(ids),
      Array.from({ length: 200 }, (_, i) => `r${i}`),
      'all, in order, at close',
    )
    writer.write({ ...fields[0]!, reqId: 'after-close' })
    assert.equal(handed.length, atClose + 1, 'after close, a line goes to the stream at once')
    await until(() => written().length >= 201)
    assert.deepEqual(written(), [...Array.from({ length: 200 }, (_, i) => `r${i}`), 'after-close'], 'and in the file')
  })

  test('lines still held when the process exits are written (pino on stdout, as in production)', () => {
    const script = `import pino from 'pino'; import { accessLineWriter, loggerOptions } from ${JSON.stringify(join(import.meta.dirname, '../../src/logger.ts'))};
      const log = pino(loggerOptions('info')); const { write } = accessLineWriter(log);
      for (let i = 0; i < 3; i++) write({ reqId: 'x' + i, method: 'GET', route: '/api', status: 200, ms: 1 }); process.exit(0)`
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      cwd: join(import.meta.dirname, '../..'),
      encoding: 'utf8',
    })
    assert.equal(child.status, 0, child.stderr)
    assert.deepEqual(
      child.stdout
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as { reqId: string }).reqId),
      ['x0', 'x1', 'x2'],
    )
  })
})
