/**
 * The Express peer for `npm run bench` (issue #9): the usual Node BFF stack, so bffgate's
 * figures can be compared with what teams build by hand. express-openid-connect does the
 * login (authorization code flow) and keeps its session in Redis through connect-redis (an
 * express-session store); http-proxy-middleware forwards `/api` with the access token.
 * Not a product: no CSRF check, no refresh beyond what a steady-state run needs.
 *
 * connect-redis 8, not 7: express-openid-connect wraps the store's get/set/destroy with its own
 * promisify, which passes a callback only to methods that declare at least two parameters. 7's
 * `async get (sid, cb = noop)` has a length of 1, so it was awaited as a promise-returning
 * method and resolved to `undefined` (the callback's return value): every session was written but
 * never read back, and requiresAuth sent the request to the IdP again. 8 declares `get (sid, cb)`
 * and also resolves its promise with the session.
 *
 * Configured by environment (PORT, ISSUER, CLIENT_ID, CLIENT_SECRET, UPSTREAM, REDIS_URL, AUDIENCE).
 */
import { Agent } from 'node:http'
import express from 'express'
import openid from 'express-openid-connect'
import { RedisStore } from 'connect-redis'
import { Redis } from 'ioredis'
import { createProxyMiddleware } from 'http-proxy-middleware'

const { auth, requiresAuth } = openid

const env = process.env
const redis = new Redis(env.REDIS_URL)
const app = express()
app.disable('x-powered-by')
app.use(auth({
  baseURL: `http://127.0.0.1:${env.PORT}`,
  issuerBaseURL: env.ISSUER,
  clientID: env.CLIENT_ID,
  clientSecret: env.CLIENT_SECRET,
  secret: 'bench-peer-secret-0123456789-abcdefghijklmnopqrstuvwxyz',
  authRequired: false,
  idpLogout: false,
  authorizationParams: { response_type: 'code', scope: 'openid profile email offline_access', audience: env.AUDIENCE },
  // The library's defaults otherwise (rolling, 1 day idle, 7 days absolute; the store rewrites the
  // record on every response). connect-redis takes each key's TTL from the cookie.expires (epoch
  // ms) express-openid-connect passes with the record: the session's own expiry.
  session: { store: new RedisStore({ client: redis, prefix: 'peer:' }) },
}))
app.use('/api', requiresAuth(), createProxyMiddleware({
  target: env.UPSTREAM,
  // http-proxy's default is `agent: false` plus `Connection: close` upstream, which the upstream's
  // answer carries back to the client: a new TCP connection on both sides for every request. A
  // keep-alive agent is the documented remedy (node-http-proxy FAQ #767), and what the bare proxy's
  // undici pool does by default.
  agent: new Agent({ keepAlive: true }),
  // Express strips the mount path; the upstream sees the same path bffgate would send.
  pathRewrite: (path) => `/api${path}`,
  on: {
    proxyReq (proxyReq, req) {
      proxyReq.removeHeader('cookie')
      proxyReq.setHeader('authorization', `Bearer ${req.oidc.accessToken.access_token}`)
    },
  },
}))
app.get('/', (_req, res) => { res.json({ ok: true }) })
const server = app.listen(Number(env.PORT), '127.0.0.1', () => process.send?.({ port: Number(env.PORT) }))
process.on('SIGTERM', () => { server.close(); redis.disconnect(); process.exit(0) })
