import { randomBytes } from 'node:crypto'

/**
 * The session cookie's value: an opaque ticket of a random 128-bit session id and a random
 * 256-bit secret, plus the 4-byte id of the server secret that keys it.
 *
 * Layout (base64url, 71 characters): version (1) | kid (4) | id (16) | secret (32).
 */
export interface Ticket {
  readonly kid: Buffer
  readonly id: Buffer
  readonly secret: Buffer
}

const VERSION = 1
const BYTES = 1 + 4 + 16 + 32
/** Length of an encoded ticket; anything else is rejected before any decoding work. */
export const TICKET_LENGTH = Math.ceil((BYTES * 4) / 3)

export function createTicket(kid: Buffer): Ticket {
  return { kid, id: randomBytes(16), secret: randomBytes(32) }
}

export function encodeTicket(ticket: Ticket): string {
  return Buffer.concat([Buffer.of(VERSION), ticket.kid, ticket.id, ticket.secret]).toString('base64url')
}

/** Parses a cookie value; `undefined` for anything that is not a well-formed ticket. */
export function decodeTicket(value: string | undefined): Ticket | undefined {
  if (value === undefined || value.length !== TICKET_LENGTH || !/^[A-Za-z0-9_-]+$/.test(value)) return undefined
  const bytes = Buffer.from(value, 'base64url')
  if (bytes.length !== BYTES || bytes[0] !== VERSION) return undefined
  // Only the canonical encoding: the last character's spare bits must be zero, so that one
  // ticket has exactly one cookie value.
  if (bytes.toString('base64url') !== value) return undefined
  return { kid: bytes.subarray(1, 5), id: bytes.subarray(5, 21), secret: bytes.subarray(21) }
}
