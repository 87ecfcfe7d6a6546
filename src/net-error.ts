/**
 * What a network failure was, in a few words: node's `fetch failed` and ioredis' retry
 * messages hide the system error (`ECONNREFUSED 127.0.0.1:4000`, `ENOTFOUND idp.internal`)
 * in their `cause` chain; this finds it.
 */
export function describeNetworkCause(err: unknown): string | undefined {
  const seen = new Set<unknown>()
  for (let current = err; current instanceof Error && !seen.has(current); current = current.cause) {
    seen.add(current)
    if (current instanceof AggregateError && current.errors.length > 0) {
      // Several addresses tried (IPv4 and IPv6 of one name): name each.
      const parts = current.errors
        .map((e: unknown) => describeSystemError(e))
        .filter((d): d is string => d !== undefined)
      if (parts.length > 0) return [...new Set(parts)].join(', ')
    }
    const described = describeSystemError(current)
    if (described !== undefined) return described
  }
  return undefined
}

function describeSystemError(err: unknown): string | undefined {
  if (!(err instanceof Error)) return undefined
  const { code, address, port, hostname } = err as NodeJS.ErrnoException & {
    address?: string
    port?: number
    hostname?: string
  }
  if (typeof code !== 'string' || !/^E[A-Z0-9_]+$|^UND_ERR_|^ERR_TLS|CERT|^DEPTH_ZERO/.test(code)) return undefined
  const where = address !== undefined ? `${address}${port !== undefined ? `:${port}` : ''}` : hostname
  if (where !== undefined) return `${code} ${where}`
  return err.message.includes(code) ? err.message : `${code} (${err.message})`
}
