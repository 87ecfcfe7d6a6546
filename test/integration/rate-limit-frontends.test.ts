/**
 * The login rate limit with several frontends on different hosts that serve the same paths (no
 * path prefix): each frontend has its own allowance, and a refused login lands on that frontend's
 * own login error page, not on the page of whichever frontend shares the path.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { startDevIdp, type DevIdp } from '../../dev/idp/index.ts'
import { buildApp } from '../../src/app.ts'
import { loadConfig } from '../../src/config/load.ts'
import { SESSION_SECRET } from '../helpers/stack.ts'

const FRONTENDS = [
  { name: 'shop', host: 'shop.localhost', errorPath: '/shop-oops' },
  { name: 'admin', host: 'admin.localhost', errorPath: '/admin-oops' },
]
const NAVIGATION = { 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document' }

let idp: DevIdp
let app: FastifyInstance
before(async () => {
  idp = await startDevIdp({
    log: () => {},
    clients: FRONTENDS.map(({ name, host }) => ({
      client_id: name,
      client_secret: `${name}-secret-0123456789-0123456789`,
      redirect_uris: [`http://${host}:8080/bff/callback`],
    })),
  })
  const dir = await mkdtemp(join(tmpdir(), 'bff-rate-frontends-'))
  for (const { name } of FRONTENDS) await writeFile(join(dir, name), `${name}-secret-0123456789-0123456789`)
  await writeFile(
    join(dir, 'bff.json'),
    JSON.stringify({
      frontends: FRONTENDS.map(({ name, host, errorPath }) => ({
        name,
        publicUrl: `http://${host}:8080`,
        clientId: name,
        clientSecretFile: join(dir, name),
        loginErrorPath: errorPath,
      })),
    }),
  )
  const config = loadConfig(
    {
      BFF_CONFIG: join(dir, 'bff.json'),
      BFF_OIDC_ISSUER: idp.issuer,
      BFF_ALLOW_INSECURE_HTTP: 'true',
      BFF_SESSION_SECRET: SESSION_SECRET,
      BFF_SESSION_STORE: 'memory',
      BFF_MAX_EVENT_LOOP_DELAY_MS: '0',
      BFF_LOG_LEVEL: 'warn',
      BFF_RATE_LIMIT_LOGIN: '1',
    },
    { readFile: (path) => readFileSync(path, 'utf8') },
  )
  app = await buildApp(config)
})
after(async () => {
  await app?.close()
  await idp?.close()
})

test('each frontend on its own host has its own login allowance and its own login error page when refused', async () => {
  const login = (host: string) => app.inject({ method: 'GET', url: '/bff/login', headers: { host, ...NAVIGATION } })
  for (const { host, errorPath } of FRONTENDS) {
    const first = await login(host)
    assert.equal(first.statusCode, 302, `${host}: the first login goes to the IdP`)
    assert.ok(first.headers.location?.startsWith(idp.issuer), `${host}: ${first.headers.location}`)
    const refused = await login(host)
    assert.equal(refused.statusCode, 303, `${host}: the second is refused`)
    const location = new URL(String(refused.headers.location), 'http://x')
    assert.equal(location.pathname, errorPath, `${host}: its own error page`)
    assert.equal(location.searchParams.get('login_error'), 'rate_limited')
    assert.ok(Number(refused.headers['retry-after']) >= 1)
  }
})
