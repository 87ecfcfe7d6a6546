/**
 * `npm run demo`: the development IdP, the demo API and bffgate in one process, with a small
 * page served by bffgate. Uses Redis when BFF_REDIS_URL is set, the memory store otherwise;
 * listens on BFF_PORT (default 8080). Prints the URL and the test user's credentials.
 *
 * `npm run demo -- --frontends` (or DEMO_FRONTENDS=1): two frontends on the one gateway
 * (docs/frontends.md), each with its own client at the IdP, cookie and session: `shop` at
 * http://localhost:8080 and `admin` at http://127.0.0.1:8080, told apart by host.
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { buildApp } from '../src/app.ts'
import { ConfigError, loadConfig } from '../src/config/load.ts'
import { startDemoApi } from './api/index.ts'
import { inlineScriptHashes, policyWithScriptHashes } from './demo/csp.ts'
import { DEFAULT_USER, startDevIdp } from './idp/index.ts'

const port = Number(process.env.BFF_PORT ?? 8080)
const publicUrl = process.env.BFF_PUBLIC_URL ?? `http://localhost:${port}`
const clientId = 'bffgate-demo'
// Development-only credentials, generated per run: the demo never needs them outside this process.
const clientSecret = `demo-${crypto.randomUUID()}`
const sessionSecret = `${crypto.randomUUID()}-${crypto.randomUUID()}`
const twoFrontends = process.argv.includes('--frontends') || process.env.DEMO_FRONTENDS === '1'
// The second frontend: the same page on another host, with a client of its own.
const admin = {
  clientId: 'bffgate-demo-admin',
  clientSecret: `demo-admin-${crypto.randomUUID()}`,
  publicUrl: `http://127.0.0.1:${port}`,
}

const idp = await startDevIdp({
  port: Number(process.env.IDP_PORT ?? 0),
  accessTokenTtlSeconds: Number(process.env.IDP_ACCESS_TOKEN_TTL ?? 60),
  clients: [
    {
      client_id: clientId,
      client_secret: clientSecret,
      redirect_uris: [`${publicUrl}/bff/callback`],
      post_logout_redirect_uris: [`${publicUrl}/bff/logged-out`],
    },
    ...(twoFrontends
      ? [
          {
            client_id: admin.clientId,
            client_secret: admin.clientSecret,
            redirect_uris: [`${admin.publicUrl}/bff/callback`],
            post_logout_redirect_uris: [`${admin.publicUrl}/bff/logged-out`],
          },
        ]
      : []),
  ],
})
const api = await startDemoApi({ issuer: idp.issuer, audience: 'https://api.bffgate.test' })

// /live takes the GETs of an EventSource, an <img> and a download, which cannot send x-csrf.
const routes = [
  { path: '/api', upstream: api.url },
  { path: '/live', upstream: api.url, csrf: 'same-origin' },
]
const staticDir = fileURLToPath(new URL('./demo/public', import.meta.url))
// With --frontends, the BFF_CONFIG file and the client secrets are files of this process's memory.
const files: Record<string, string> = {
  '/demo/bff.json': JSON.stringify({
    frontends: [
      { name: 'shop', publicUrl, clientId, clientSecretFile: '/demo/shop-secret', routes, staticDir },
      {
        name: 'admin',
        publicUrl: admin.publicUrl,
        clientId: admin.clientId,
        clientSecretFile: '/demo/admin-secret',
        routes,
        staticDir,
      },
    ],
  }),
  '/demo/shop-secret': clientSecret,
  '/demo/admin-secret': admin.clientSecret,
}
const readFile = (path: string): string => {
  const content = files[path]
  if (content === undefined) throw new Error(`ENOENT: ${path}`)
  return content
}

let config
try {
  config = loadConfig(
    {
      BFF_HOST: '127.0.0.1',
      BFF_ADMIN_HOST: '127.0.0.1',
      BFF_PORT: String(port),
      BFF_PUBLIC_URL: publicUrl,
      BFF_OIDC_ISSUER: idp.issuer,
      ...(twoFrontends
        ? { BFF_CONFIG: '/demo/bff.json' }
        : {
            BFF_OIDC_CLIENT_ID: clientId,
            BFF_OIDC_CLIENT_SECRET: clientSecret,
            BFF_ROUTES: JSON.stringify(routes),
            BFF_STATIC_DIR: staticDir,
          }),
      BFF_OIDC_AUDIENCE: 'https://api.bffgate.test',
      BFF_ALLOW_INSECURE_HTTP: 'true',
      BFF_SESSION_SECRET: sessionSecret,
      BFF_SESSION_STORE: process.env.BFF_REDIS_URL ? 'redis' : 'memory',
      ...(process.env.BFF_REDIS_URL && { BFF_REDIS_URL: process.env.BFF_REDIS_URL }),
      // The strict default, plus the hashes of minimal.html's inline scripts.
      BFF_CONTENT_SECURITY_POLICY: policyWithScriptHashes(
        inlineScriptHashes(readFileSync(new URL('./demo/public/minimal.html', import.meta.url), 'utf8')),
      ),
      BFF_LOG_LEVEL: process.env.BFF_LOG_LEVEL ?? 'info',
    },
    { readFile },
  )
} catch (err) {
  if (err instanceof ConfigError) {
    process.stderr.write(`demo: ${err.message}\n`)
    process.exit(78)
  }
  throw err
}

const app = await buildApp(config)
await app.listen({ port: config.port, host: config.host })
const adminUrl = await app.admin.listen({ port: config.admin.port, host: config.admin.host })

process.stdout.write(`
  bffgate demo is running

    open        ${publicUrl}/${
      twoFrontends
        ? `  (frontend shop, client ${clientId})
                ${admin.publicUrl}/  (frontend admin, client ${admin.clientId}: its own login, cookie and session)`
        : ''
    }
    log in as   ${DEFAULT_USER.username} / ${DEFAULT_USER.password}

    IdP         ${idp.issuer}  (access tokens live ${process.env.IDP_ACCESS_TOKEN_TTL ?? 60} s)
    demo API    ${api.url}  (proxied at ${publicUrl}/api)
    metrics     ${adminUrl}/metrics  (admin port, BFF_ADMIN_PORT)
    sessions    ${config.session.store === 'redis' ? `Redis at ${new URL(config.redis.url).host}` : 'in memory (set BFF_REDIS_URL to use Redis)'}

  Ctrl+C stops everything.
`)

const stop = async () => {
  await app.close()
  await api.close()
  await idp.close()
  process.exit(0)
}
process.once('SIGINT', stop)
process.once('SIGTERM', stop)
