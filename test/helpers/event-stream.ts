/**
 * A reader of server-sent events over real HTTP (Node has no EventSource): opens the stream,
 * parses events as they arrive, and lets a test wait for the next one.
 */
export interface ServerSentEvent {
  readonly event: string
  readonly data: string
  /** `performance.now()` when it arrived. */
  readonly at: number
}

export interface EventStream {
  readonly status: number
  readonly headers: Headers
  /** The body, for a refused stream (JSON error). */
  readonly text: string
  readonly events: ServerSentEvent[]
  /** Comment lines seen (heartbeats). */
  readonly comments: string[]
  /** Resolves with the next event named `name` (one already received counts), or rejects after `timeoutMs`. */
  next(name: string, timeoutMs?: number): Promise<ServerSentEvent>
  /** Resolves when the server ended the stream. */
  readonly closed: Promise<void>
  close(): void
}

export async function openEventStream(url: string, headers: Record<string, string>): Promise<EventStream> {
  const abort = new AbortController()
  const res = await fetch(url, { headers: { accept: 'text/event-stream', ...headers }, signal: abort.signal })
  const events: ServerSentEvent[] = []
  const comments: string[] = []
  const waiters = new Set<() => void>()
  let text = ''
  let finished = false
  let closed: Promise<void> = Promise.resolve()
  if (res.status !== 200 || !(res.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
    text = await res.text()
    finished = true
  } else {
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader()
    closed = (async () => {
      let buffer = ''
      try {
        for (;;) {
          const { value, done } = await reader.read()
          if (done) break
          buffer += value
          let end: number
          while ((end = buffer.indexOf('\n\n')) !== -1) {
            const block = buffer.slice(0, end)
            buffer = buffer.slice(end + 2)
            let event = 'message'
            const data: string[] = []
            for (const line of block.split('\n')) {
              if (line.startsWith(':')) comments.push(line.slice(1).trim())
              else if (line.startsWith('event:')) event = line.slice(6).trim()
              else if (line.startsWith('data:')) data.push(line.slice(5).trimStart())
            }
            if (data.length > 0) {
              events.push({ event, data: data.join('\n'), at: performance.now() })
              for (const wake of [...waiters]) wake()
            }
          }
        }
      } catch {}
      finished = true
      for (const wake of [...waiters]) wake()
    })()
  }
  return {
    status: res.status,
    headers: res.headers,
    text,
    events,
    comments,
    closed,
    next(name, timeoutMs = 5000) {
      let seen = 0
      return new Promise((resolve, reject) => {
        const look = () => {
          const found = events.slice(seen).find((e) => e.event === name)
          if (found !== undefined) {
            waiters.delete(look)
            clearTimeout(timer)
            resolve(found)
          } else if (finished) {
            waiters.delete(look)
            clearTimeout(timer)
            reject(new Error(`the stream ended without a ${name} event; got ${JSON.stringify(events)}`))
          }
        }
        const timer = setTimeout(() => {
          waiters.delete(look)
          reject(new Error(`no ${name} event within ${timeoutMs} ms; got ${JSON.stringify(events)}`))
        }, timeoutMs)
        waiters.add(look)
        seen = 0
        look()
      })
    },
    close: () => abort.abort(),
  }
}
