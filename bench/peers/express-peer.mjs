/**
 * The Express peer for `npm run bench` (issue #9): the usual Node BFF stack, so bffgate's
 * figures can be compared with what teams build by hand. express-openid-connect does the
 * login (authorization code flow) and keeps its session in Redis through connect-redis (an
 * express-session store); http-proxy-middleware forwards `/api` with the access token.
 * Not a product: no CSRF check, no refresh beyond what a steady-state run needs.
 * Configured by environment (PORT, ISSUER, CLIENT_ID, CLIENT_SECRET, UPSTREAM, REDIS_URL, AUDIENCE).
 */
import express from 'express'
import openid from 'express-openid-connect'
import RedisStore from 'connect-redis'
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
  // connect-redis reads the TTL from express-session's cookie.expires (a Date); express-openid-connect
  // keeps epoch seconds there, which would read as long expired: give the TTL explicitly.
  session: { store: new RedisStore({ client: redis, prefix: 'peer:', ttl: () => 86_400 }) },
}))
app.use('/api', requiresAuth(), createProxyMiddleware({
  target: env.UPSTREAM,
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
