import type { IncomingMessage, ServerResponse } from 'node:http'

/** Small request bodies only (forms, JSON commands): anything larger is refused. */
const BODY_LIMIT_BYTES = 64 * 1024

/** Reads a small request body as text; rejects when it exceeds the limit. */
export async function readSmallBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    const buffer = chunk as Buffer
    size += buffer.length
    if (size > BODY_LIMIT_BYTES) throw new Error('request body too large')
    chunks.push(buffer)
  }
  return Buffer.concat(chunks).toString('utf8')
}

/** Parses a form (application/x-www-form-urlencoded) or JSON object body into string fields. */
export async function readFields(req: IncomingMessage): Promise<Record<string, string>> {
  const text = await readSmallBody(req)
  const fields: Record<string, string> = {}
  if ((req.headers['content-type'] ?? '').includes('application/json')) {
    const parsed: unknown = text === '' ? {} : JSON.parse(text)
    if (parsed && typeof parsed === 'object') {
      for (const [key, value] of Object.entries(parsed)) {
        if (typeof value === 'string') fields[key] = value
      }
    }
    return fields
  }
  for (const [key, value] of new URLSearchParams(text)) fields[key] = value
  return fields
}

export function sendHtml(res: ServerResponse, status: number, html: string): void {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(html),
  })
  res.end(html)
}

export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value)
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(body),
  })
  res.end(body)
}
