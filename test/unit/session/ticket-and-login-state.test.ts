import assert from 'node:assert/strict'
import { test } from 'node:test'
import { createKeyring } from '../../../src/session/keyring.ts'
import { openLoginState, sealLoginState } from '../../../src/login/transaction.ts'
import { createTicket, decodeTicket, encodeTicket, TICKET_LENGTH } from '../../../src/session/ticket.ts'

const SECRET_A = 'unit-secret-A-0123456789abcdefghijklmnopqrstu'
const SECRET_B = 'unit-secret-B-vwxyz9876543210ABCDEFGHIJKLMNOP'

test('a ticket round-trips and carries 128 random bits of id and 256 of secret', () => {
  const keyring = createKeyring([SECRET_A])
  const ticket = createTicket(keyring.current.kid)
  const encoded = encodeTicket(ticket)
  assert.equal(encoded.length, TICKET_LENGTH)
  const decoded = decodeTicket(encoded)!
  assert.equal(decoded.id.length, 16)
  assert.equal(decoded.secret.length, 32)
  assert.ok(decoded.id.equals(ticket.id) && decoded.secret.equals(ticket.secret) && decoded.kid.equals(ticket.kid))
})

test('a non-canonical encoding of a valid ticket is refused (one ticket, one cookie value)', () => {
  const good = encodeTicket(createTicket(createKeyring([SECRET_A]).current.kid))
  const last = good.at(-1)!
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
  // The last character carries 4 data bits and 2 spare bits: flip a spare bit.
  const sibling = alphabet[alphabet.indexOf(last) ^ 1]!
  assert.ok(
    Buffer.from(good.slice(0, -1) + sibling, 'base64url').equals(Buffer.from(good, 'base64url')),
    'the sibling decodes to the same bytes',
  )
  assert.equal(decodeTicket(good.slice(0, -1) + sibling), undefined)
})

test('malformed tickets decode to nothing', () => {
  const good = encodeTicket(createTicket(createKeyring([SECRET_A]).current.kid))
  for (const bad of [
    undefined,
    '',
    good.slice(1),
    `${good}x`,
    `${good.slice(0, -1)}=`,
    `B${good.slice(1)}`,
    '!'.repeat(TICKET_LENGTH),
  ]) {
    assert.equal(decodeTicket(bad), undefined, JSON.stringify(bad))
  }
})

test('login state opens with the secret that sealed it, also after rotation, and not when expired or tampered', () => {
  const before = createKeyring([SECRET_A])
  const state = { state: 's', nonce: 'n', codeVerifier: 'v', returnTo: '/x', expiresAt: 2000 }
  const sealed = sealLoginState(before, state)
  assert.deepEqual(openLoginState(before, sealed, 1000), state)
  assert.deepEqual(openLoginState(createKeyring([SECRET_B, SECRET_A]), sealed, 1000), state)
  assert.equal(openLoginState(createKeyring([SECRET_B]), sealed, 1000), undefined)
  assert.equal(openLoginState(before, sealed, 2000), undefined, 'expired')
  const flipped = sealed.slice(0, 20) + (sealed[20] === 'A' ? 'B' : 'A') + sealed.slice(21)
  assert.equal(openLoginState(before, flipped, 1000), undefined)
  assert.equal(openLoginState(before, 'x'.repeat(5000), 1000), undefined)
  assert.equal(openLoginState(before, undefined, 1000), undefined)
})
