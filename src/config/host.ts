import { isIP } from 'node:net'

/**
 * A host as a frontend is selected by: lowercase, without the port (cookies ignore ports, so
 * two ports of one host are one cookie scope), without the one trailing dot of a fully
 * qualified name (`app.example.com.` is `app.example.com`), IPv6 in brackets. Anything else a
 * `Host` or `X-Forwarded-Host` header might carry (userinfo, a path, a comma-separated list,
 * spaces, percent-encoding, non-ASCII, empty labels, a bad port) gives `undefined`. Pure.
 *
 * @example normalizeHost('App.Example.COM.:8443') // 'app.example.com'
 */
export function normalizeHost(value: string | undefined): string | undefined {
  if (value === undefined || value.length === 0 || value.length > 261) return undefined
  const lower = value.toLowerCase()
  const ipv6 = /^\[([0-9a-f:.]+)\](?::(\d{1,5}))?$/.exec(lower)
  if (ipv6 !== null) return isIP(ipv6[1]!) === 6 && isPort(ipv6[2]) ? `[${ipv6[1]}]` : undefined
  const named = /^([a-z0-9._-]+?)(?::(\d{1,5}))?$/.exec(lower)
  if (named === null || !isPort(named[2])) return undefined
  const name = named[1]!.endsWith('.') ? named[1]!.slice(0, -1) : named[1]!
  if (name.length === 0 || name.length > 253) return undefined
  const labels = name.split('.')
  return labels.every(
    (label) => label.length > 0 && label.length <= 63 && !label.startsWith('-') && !label.endsWith('-'),
  )
    ? name
    : undefined
}

function isPort(text: string | undefined): boolean {
  return text === undefined || Number(text) <= 65535
}
