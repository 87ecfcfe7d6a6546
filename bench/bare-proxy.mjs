import proxy from '@fastify/http-proxy'
import Fastify from 'fastify'

/**
 * The floor: a default @fastify/http-proxy in front of the same upstream, no authentication,
 * no logging. bffgate's figures are reported as ratios to this process's. Plain JavaScript, as
 * bffgate runs compiled: a TypeScript entry would load Node's type stripper (~17 MiB more RSS).
 */
const app = Fastify({ logger: false })
await app.register(proxy, { upstream: process.env.UPSTREAM, prefix: '/api' })
await app.listen({ port: Number(process.env.PORT ?? 0), host: '127.0.0.1' })
const address = app.server.address()
process.send?.({ port: typeof address === 'object' && address !== null ? address.port : 0 })
process.on('SIGTERM', () => {
  app.close().then(
    () => process.exit(0),
    () => process.exit(1),
  )
})
