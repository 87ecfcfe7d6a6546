/**
 * A page on another site, for the CSRF tests: served from 127.0.0.1 but opened as
 * `http://localhost:<port>`, which is another site than bffgate's `http://127.0.0.1:<port>`
 * (sites ignore ports; 127.0.0.1 and localhost are different hosts).
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface AttackerSite {
  /** `http://localhost:<port>` */
  readonly url: string
  close(): Promise<void>
}

/**
 * Serves one page with two auto-submittable forms aimed at `target` (bffgate's origin), and
 * `extra` HTML (more attempts on `target`) after them.
 */
export async function startAttackerSite(target: string, extra = ''): Promise<AttackerSite> {
  const page = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Win a prize</title></head>
<body>
  <h1>Totally harmless page</h1>
  <form id="transfer" method="post" action="${target}/api/transfer">
    <input name="to" value="mallory"><input name="amount" value="1000">
    <button id="submit-transfer">Claim your prize</button>
  </form>
  <form id="logout" method="post" action="${target}/bff/logout">
    <button id="submit-logout">Unsubscribe</button>
  </form>
${extra}
</body></html>`
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' })
    res.end(page)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://localhost:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}
