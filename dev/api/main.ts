/**
 * `node dev/api/main.ts`: runs the demo API standalone.
 *
 * Environment: API_PORT (default 4001), API_HOST (default 127.0.0.1),
 * API_ISSUER (default http://127.0.0.1:4000, the dev IdP's default),
 * API_AUDIENCE (default https://api.bffgate.test).
 */
import { startDemoApi } from './index.ts'

const api = await startDemoApi({
  issuer: process.env.API_ISSUER ?? 'http://127.0.0.1:4000',
  audience: process.env.API_AUDIENCE ?? 'https://api.bffgate.test',
  port: Number(process.env.API_PORT ?? 4001),
  host: process.env.API_HOST ?? '127.0.0.1',
})

process.stdout.write(
  `demo API listening on ${api.url} (tokens from ${process.env.API_ISSUER ?? 'http://127.0.0.1:4000'})\n`,
)

const stop = async () => {
  await api.close()
  process.exit(0)
}
process.once('SIGINT', stop)
process.once('SIGTERM', stop)
