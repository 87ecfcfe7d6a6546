/**
 * Demo upstream API for development and tests: answers any path and method once the request
 * carries a valid access token from the configured issuer, and echoes what it received
 * (method, path, token claims, headers, and the size and SHA-256 of the body).
 */
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isIPv6 } from 'node:net';
import type { JWTPayload } from 'jose';
import { createTokenVerifier } from './verify.ts';
import type { VerifyFailure } from './verify.ts';

/** What the API received, for tests to assert on (e.g. which headers a proxy forwarded). */
export interface DemoApiRequestLog {
  method: string;
  /** Path and query as received. */
  url: string;
  headers: IncomingHttpHeaders;
  authorized: boolean;
  status: number;
  /** Claims of the access token when it verified. */
  claims?: JWTPayload;
}

export interface DemoApiOptions {
  /** Issuer of the access tokens; its discovery document names the JWKS. */
  issuer: string;
  /** Required `aud` of the access tokens. */
  audience: string;
  /** Default 0 (a free port). */
  port?: number;
  /** Default '127.0.0.1'. */
  host?: string;
}

/** A running demo API. */
export interface DemoApi {
  /** `http://127.0.0.1:<port>` */
  url: string;
  port: number;
  close(): Promise<void>;
  /** Every request received so far, oldest first. */
  requests(): DemoApiRequestLog[];
}

/** The body of a successful answer. */
export interface DemoApiEcho {
  method: string;
  path: string;
  claims: JWTPayload;
  headers: IncomingHttpHeaders;
  body: { bytes: number; sha256: string };
}

function sendJson(res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

/** The 401/503 answer for a refused request (RFC 6750 section 3, RFC 9449 section 7.1). */
function refuse(res: ServerResponse, failure: VerifyFailure): number {
  switch (failure.kind) {
    case 'missing':
      sendJson(res, 401, { error: 'unauthorized' }, { 'www-authenticate': 'Bearer' });
      return 401;
    case 'invalid_token':
      sendJson(res, 401, { error: 'invalid_token' }, { 'www-authenticate': `${failure.scheme} error="invalid_token"` });
      return 401;
    case 'invalid_dpop_proof':
      sendJson(res, 401, { error: 'invalid_dpop_proof' }, { 'www-authenticate': 'DPoP error="invalid_dpop_proof"' });
      return 401;
    case 'unavailable':
      sendJson(res, 503, { error: 'temporarily_unavailable' });
      return 503;
  }
}

/** Hashes the request body as it streams in: any size, nothing buffered. */
async function digestBody(req: IncomingMessage): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of req) {
    const buffer = chunk as Buffer;
    bytes += buffer.length;
    hash.update(buffer);
  }
  return { bytes, sha256: hash.digest('hex') };
}

function headerValues(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

/** Starts the demo API and resolves once it is listening. */
export async function startDemoApi(options: DemoApiOptions): Promise<DemoApi> {
  const host = options.host ?? '127.0.0.1';
  const verify = createTokenVerifier({ issuer: options.issuer, audience: options.audience });
  const log: DemoApiRequestLog[] = [];

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const path = req.url ?? '/';
    const entry: DemoApiRequestLog = { method, url: path, headers: req.headers, authorized: false, status: 0 };
    log.push(entry);

    const result = await verify({
      authorization: req.headers.authorization,
      dpop: headerValues(req.headers.dpop),
      method,
      url: `http://${req.headers.host ?? 'localhost'}${path.split('?')[0]}`,
    });
    if (!result.ok) {
      entry.status = refuse(res, result.failure);
      // Discard the rest of the body instead of leaving the client's upload hanging.
      req.resume();
      return;
    }

    entry.authorized = true;
    entry.claims = result.claims;
    const body = await digestBody(req);
    const echo: DemoApiEcho = { method, path, claims: result.claims, headers: req.headers, body };
    entry.status = 200;
    sendJson(res, 200, echo);
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) sendJson(res, 500, { error: 'server_error' });
      else res.destroy(error as Error);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://${isIPv6(host) ? `[${host}]` : host}:${port}`,
    port,
    requests: () => log.map((entry) => ({ ...entry })),
    close: () => new Promise<void>((resolve, reject) => {
      if (!server.listening) {
        resolve();
        return;
      }
      server.close((error) => (error ? reject(error) : resolve()));
      server.closeAllConnections();
    }),
  };
}
