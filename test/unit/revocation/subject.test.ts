import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { resolveSubject, SubjectError } from '../../../src/revocation/subject.ts'

const IDP = 'https://tenant.example.com/'
const ORG = 'https://org.example.com'
const context = { userIssuers: [IDP, ORG] }

describe('resolveSubject', () => {
  test('iss_sub of the IdP or of the second user issuer names the user', () => {
    assert.deepEqual(resolveSubject({ format: 'iss_sub', iss: IDP, sub: 'u1' }, context), { kind: 'user', sub: 'u1' })
    assert.deepEqual(resolveSubject({ format: 'iss_sub', iss: ORG, sub: 'u1' }, context), { kind: 'user', sub: 'u1' })
  })

  test('iss_sub of any other issuer is foreign, compared exactly (no trailing-slash or case folding)', () => {
    for (const iss of [
      'https://evil.example',
      'https://tenant.example.com',
      'HTTPS://TENANT.EXAMPLE.COM/',
      `${ORG}/`,
    ]) {
      assert.equal(resolveSubject({ format: 'iss_sub', iss, sub: 'u1' }, context).kind, 'foreign', iss)
    }
  })

  test('opaque names the user by sub', () => {
    assert.deepEqual(resolveSubject({ format: 'opaque', id: '00u1' }, context), { kind: 'user', sub: '00u1' })
  })

  test('a complex subject with a session names that IdP session (and keeps the user)', () => {
    const subject = {
      format: 'complex',
      user: { format: 'iss_sub', iss: IDP, sub: 'u1' },
      session: { format: 'opaque', id: 'sid-1' },
      tenant: { format: 'opaque', id: 't' },
    }
    assert.deepEqual(resolveSubject(subject, context), { kind: 'session', sid: 'sid-1', sub: 'u1' })
    assert.deepEqual(resolveSubject({ format: 'complex', session: { format: 'opaque', id: 'sid-1' } }, context), {
      kind: 'session',
      sid: 'sid-1',
    })
  })

  test('a complex subject without format (SSF drafts) is read alike', () => {
    assert.deepEqual(
      resolveSubject({ user: { format: 'opaque', id: 'u1' }, session: { format: 'opaque', id: 's' } }, context),
      { kind: 'session', sid: 's', sub: 'u1' },
    )
  })

  test('a complex subject with only a user, or a session bffgate cannot match, names the user', () => {
    assert.deepEqual(
      resolveSubject(
        { format: 'complex', user: { format: 'opaque', id: 'u1' }, device: { format: 'opaque', id: 'd' } },
        context,
      ),
      { kind: 'user', sub: 'u1' },
    )
    assert.deepEqual(
      resolveSubject(
        { format: 'complex', user: { format: 'opaque', id: 'u1' }, session: { format: 'uri', uri: 'urn:x' } },
        context,
      ),
      { kind: 'user', sub: 'u1' },
    )
  })

  test('an e-mail address, and other recognised formats, cannot be mapped', () => {
    assert.equal(resolveSubject({ format: 'email', email: 'a@example.com' }, context).kind, 'unmappable')
    assert.equal(resolveSubject({ format: 'phone_number', phone_number: '+12065550100' }, context).kind, 'unmappable')
    assert.equal(
      resolveSubject({ format: 'complex', user: { format: 'email', email: 'a@example.com' } }, context).kind,
      'unmappable',
    )
    assert.equal(
      resolveSubject({ format: 'complex', device: { format: 'opaque', id: 'd' } }, context).kind,
      'unmappable',
    )
  })

  test('a critical member bffgate cannot process discards the event (SSF 1.0 receiver subject processing)', () => {
    const critical = { ...context, criticalMembers: ['tenant', 'session'] }
    const user = { format: 'opaque', id: 'u1' }
    assert.equal(
      resolveSubject({ format: 'complex', user, tenant: { format: 'opaque', id: 't' } }, critical).kind,
      'unmappable',
    )
    assert.deepEqual(resolveSubject({ format: 'complex', user, device: { format: 'opaque', id: 'd' } }, critical), {
      kind: 'user',
      sub: 'u1',
    })
    assert.deepEqual(resolveSubject({ format: 'complex', user, session: { format: 'opaque', id: 's' } }, critical), {
      kind: 'session',
      sid: 's',
      sub: 'u1',
    })
    assert.equal(
      resolveSubject({ format: 'complex', user, session: { format: 'uri', uri: 'urn:s' } }, critical).kind,
      'unmappable',
      'a critical session it cannot match',
    )
    assert.deepEqual(
      resolveSubject({ format: 'complex', user, tenant: { format: 'opaque', id: 't' } }, context),
      { kind: 'user', sub: 'u1' },
      'not critical: ignored',
    )
  })

  test('malformed identifiers are refused', () => {
    const bad: unknown[] = [
      null,
      'u1',
      [],
      {},
      { format: '' },
      { format: 7 },
      { format: 'nonsense', id: 'x' },
      { format: 'iss_sub', iss: IDP },
      { format: 'iss_sub', sub: 'u1' },
      { format: 'iss_sub', iss: IDP, sub: '' },
      { format: 'iss_sub', iss: IDP, sub: 5 },
      { format: 'opaque' },
      { format: 'opaque', id: 'x'.repeat(2000) },
      { format: 'email' },
      { format: 'complex', user: 'u1' },
      { format: 'complex', user: { format: 'complex' } },
      { format: 'complex', session: { format: 'opaque' } },
      { format: 'complex', session: {} },
    ]
    for (const subject of bad)
      assert.throws(() => resolveSubject(subject, context), SubjectError, JSON.stringify(subject))
  })
})
