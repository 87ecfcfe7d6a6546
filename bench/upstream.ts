import { createServer } from 'node:http'

/**
 * The benchmark's upstream: a tiny node:http server, run as a child so that it does not share
 * an event loop with the load generator. `/big…` answers 64 KiB, anything else a small JSON.
 * With tracking on (`/__track?on=1`), it remembers every distinct Authorization value, so the
 * refresh storm can tell how many new access tokens the gateway actually obtained.
 */
const small = Buffer.from(JSON.stringify({ ok: true, items: [1, 2, 3], name: 'bffgate-bench' }))
const big = Buffer.alloc(64 * 1024, 'x')
const seen = new Set<string>()
let tracking = false

const server = createServer((req, res) => {
  const url = req.url ?? '/'
  if (url.startsWith('/__track')) {
    tracking = url.includes('on=1')
    seen.clear()
    res.end('{}')
    return
  }
  if (url.startsWith('/__stats')) {
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify({ distinctAuthorizations: seen.size }))
    return
  }
  if (tracking && typeof req.headers.authorization === 'string') seen.add(req.headers.authorization)
  const body = url.includes('/big') ? big : small
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length })
  res.end(body)
})
server.keepAliveTimeout = 65_000
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  const address = server.address()
  process.send?.({ port: typeof address === 'object' && address !== null ? address.port : 0 })
})
process.on('SIGTERM', () => process.exit(0))
