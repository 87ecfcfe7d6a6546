import assert from 'node:assert/strict'
import type { IncomingMessage } from 'node:http'
import { test } from 'node:test'
import type { FrontendConfig } from '../../../src/config/types.ts'
import { createFrontendOf, createRequestHost, needsFrontendSelection } from '../../../src/frontends/routing.ts'

/** A raw request as the router sees it: headers, target and the peer's address. */
const raw = (url: string, headers: Record<string, string>, peer = '10.0.0.9') =>
  ({ url, headers, socket: { remoteAddress: peer } }) as unknown as IncomingMessage

const frontend = (name: string, hosts: string[] | undefined, pathPrefix = '') =>
  ({ name, hosts, pathPrefix }) as unknown as FrontendConfig

test('the routing host is Host, or the last X-Forwarded-Host entry only from a trusted proxy, as fastify reads it', () => {
  const untrusting = createRequestHost([])
  assert.equal(
    untrusting(raw('/', { host: 'shop.example.com', 'x-forwarded-host': 'admin.example.com' })),
    'shop.example.com',
  )
  const trusting = createRequestHost(['10.0.0.0/8'])
  assert.equal(
    trusting(raw('/', { host: 'lb.internal', 'x-forwarded-host': 'evil.example, admin.example.com' })),
    'admin.example.com',
  )
  assert.equal(
    trusting(raw('/', { host: 'lb.internal', 'x-forwarded-host': 'admin.example.com' }, '192.0.2.1')),
    'lb.internal',
    'a peer that is no trusted proxy cannot choose the frontend',
  )
  assert.equal(trusting(raw('/', { host: 'shop.example.com' })), 'shop.example.com')
})

test("a request's frontend: by host and path prefix; none for a host or path no frontend answers", () => {
  const frontendOf = createFrontendOf(
    [frontend('shop', ['shop.example.com']), frontend('admin', ['www.example.com'], '/admin')],
    [],
  )
  assert.equal(frontendOf(raw('/api/x', { host: 'SHOP.example.com:443' }))?.name, 'shop')
  assert.equal(frontendOf(raw('/admin/bff/user?x=1', { host: 'www.example.com' }))?.name, 'admin')
  assert.equal(frontendOf(raw('/administrator', { host: 'www.example.com' })), undefined)
  assert.equal(frontendOf(raw('/admin/..%2fx', { host: 'www.example.com' })), undefined)
  assert.equal(frontendOf(raw('/', { host: 'other.example.com' })), undefined)
})

test('selection runs only when needed: several frontends, or one under a prefix; one without a prefix answers every host', () => {
  assert.equal(needsFrontendSelection([frontend('default', undefined)]), false)
  assert.equal(needsFrontendSelection([frontend('shop', ['shop.example.com'])]), false)
  assert.equal(needsFrontendSelection([frontend('a', undefined, '/a')]), true)
  assert.equal(needsFrontendSelection([frontend('a', ['a.example']), frontend('b', ['b.example'])]), true)
})
