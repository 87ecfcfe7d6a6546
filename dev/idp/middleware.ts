/**
 * Koa middleware that runs around oidc-provider's own router and makes it behave like Auth0
 * where oidc-provider has no option for it. Each function is installed with `provider.use()`,
 * so it sees the request before oidc-provider and, after `await next()`, the response and
 * `ctx.oidc` (route name, parsed parameters, entities) that oidc-provider produced.
 */
import { request as httpRequest } from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';
import { isIPv6 } from 'node:net';
import type { KoaContextWithOIDC, Middleware, Provider, RefreshToken } from 'oidc-provider';
import { sessionTtlSeconds } from './lifetimes.ts';
import type { SessionLifetimes } from './lifetimes.ts';

/** oidc-provider's default route paths, which the provider configuration keeps. */
export const ROUTES = {
  authorization: '/auth',
  token: '/token',
  endSession: '/session/end',
  endSessionConfirm: '/session/end/confirm',
  /** Our own GET step that confirms RP-initiated logout without a human clicking "Yes". */
  endSessionAutoConfirm: '/session/end/auto-confirm',
} as const;

/** True for a refresh token minted for `online_access`: bound to the session, never rotated. */
export function isOnlineRefreshToken(token: RefreshToken | undefined): token is RefreshToken {
  return token !== undefined && token.scopes.has('online_access') && token.expiresWithSession === true;
}

/** Counts of token endpoint requests by grant type. */
export class TokenStats {
  #counts: Record<string, number> = {};

  count(grantType: string): void {
    this.#counts[grantType] = (this.#counts[grantType] ?? 0) + 1;
  }

  snapshot(): { tokenRequests: Record<string, number> } {
    return { tokenRequests: { ...this.#counts } };
  }

  reset(): void {
    this.#counts = {};
  }
}

/** Counts every POST to the token endpoint by `grant_type`, failures included. */
export function countTokenRequests(stats: TokenStats): Middleware {
  return async (ctx, next) => {
    if (ctx.method !== 'POST' || ctx.path !== ROUTES.token) return next();
    try {
      await next();
    } finally {
      // params exist once oidc-provider parsed the body; the raw body covers requests it
      // rejected before assembling them (e.g. unsupported grant types).
      const grantType = ctx.oidc?.params?.grant_type ?? ctx.oidc?.body?.grant_type;
      stats.count(typeof grantType === 'string' ? grantType : 'unknown');
    }
  };
}

/**
 * oidc-provider drops `offline_access` unless `prompt=consent` is sent (an OIDC Core rule);
 * Auth0 does not require it. Adding `consent` to the prompt of such an authorization request
 * keeps the scope; the extra consent step is granted automatically by our interactions.
 * `prompt=none` cannot be combined with `consent`, so those requests stay as they are.
 * Only GET authorization requests are rewritten (what openid-client and the BFF send).
 */
export function offlineAccessWithoutConsent(): Middleware {
  return async (ctx, next) => {
    if (ctx.method === 'GET' && ctx.path === ROUTES.authorization) {
      const query = new URLSearchParams(ctx.querystring);
      const scopes = (query.get('scope') ?? '').split(' ');
      const prompts = new Set((query.get('prompt') ?? '').split(' ').filter(Boolean));
      if (scopes.includes('offline_access') && !prompts.has('none') && !prompts.has('consent')) {
        prompts.add('consent');
        query.set('prompt', [...prompts].join(' '));
        ctx.querystring = query.toString();
      }
    }
    return next();
  };
}

/**
 * Online refresh tokens, after a successful refresh grant:
 * - the response carries no `refresh_token` (Auth0 omits it; the client keeps its ORT),
 * - the IdP session's idle timeout starts over, capped at its absolute end (oidc-provider has
 *   no built-in sliding session on token use).
 */
export function onlineRefreshTokenExchange(provider: Provider, lifetimes: SessionLifetimes): Middleware {
  return async (ctx, next) => {
    await next();
    if (ctx.oidc?.route !== 'token' || ctx.status !== 200) return;
    if (ctx.oidc.params?.grant_type !== 'refresh_token') return;
    const token = ctx.oidc.entities.RefreshToken;
    if (!isOnlineRefreshToken(token)) return;

    const body = ctx.body;
    if (body && typeof body === 'object' && 'refresh_token' in body) {
      delete (body as Record<string, unknown>).refresh_token;
    }
    if (token.sessionUid === undefined) return;
    const session = await provider.Session.findByUid(token.sessionUid);
    if (session) await session.save(sessionTtlSeconds(lifetimes, session.loginTs));
  };
}

/**
 * Revoking an online refresh token at the revocation endpoint ends the whole IdP session
 * (all of its ORTs and SSO), as at Auth0. oidc-provider itself only revokes the token's grant.
 */
export function revokedOnlineRefreshTokenEndsSession(provider: Provider): Middleware {
  return async (ctx, next) => {
    await next();
    if (ctx.oidc?.route !== 'revocation' || ctx.status !== 200) return;
    const token = ctx.oidc.entities.RefreshToken;
    if (!isOnlineRefreshToken(token) || token.clientId !== ctx.oidc.client?.clientId) return;
    if (token.sessionUid === undefined) return;
    const session = await provider.Session.findByUid(token.sessionUid);
    await session?.destroy();
  };
}

interface ForwardedResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** POSTs a form to this same server (the address the request came in on). */
function postToSelf(ctx: KoaContextWithOIDC, path: string, form: URLSearchParams): Promise<ForwardedResponse> {
  const { localAddress = '127.0.0.1', localPort } = ctx.req.socket;
  const hostHeader = `${isIPv6(localAddress) ? `[${localAddress}]` : localAddress}:${localPort}`;
  const body = form.toString();
  return new Promise((resolve, reject) => {
    const outgoing = httpRequest({
      host: localAddress,
      port: localPort,
      path,
      method: 'POST',
      headers: {
        // The browser's Host keeps absolute URLs the provider builds (e.g. the success page)
        // pointing where the browser expects; its cookie carries the IdP session.
        host: ctx.req.headers.host ?? hostHeader,
        cookie: ctx.req.headers.cookie ?? '',
        'content-type': 'application/x-www-form-urlencoded',
        'content-length': String(Buffer.byteLength(body)),
      },
    }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 500, headers: response.headers, body: Buffer.concat(chunks) }));
      response.on('error', reject);
    });
    outgoing.on('error', reject);
    outgoing.end(body);
  });
}

/**
 * RP-initiated logout that ends the whole IdP session without a human: oidc-provider answers
 * the end-session endpoint with a confirmation form (logout=yes signs out of every client).
 * We answer with a redirect to our GET step instead, which submits that same form to
 * oidc-provider's real confirm endpoint (xsrf check, back-channel logout, grant revocation,
 * session cookie removal) and relays its redirect to post_logout_redirect_uri. A test browser
 * that only follows redirects therefore ends the session, like a user clicking "Yes".
 */
export function autoConfirmLogout(): Middleware {
  return async (ctx, next) => {
    if (ctx.method === 'GET' && ctx.path === ROUTES.endSessionAutoConfirm) {
      const xsrf = new URLSearchParams(ctx.querystring).get('xsrf') ?? '';
      const forwarded = await postToSelf(ctx, ROUTES.endSessionConfirm, new URLSearchParams({ xsrf, logout: 'yes' }));
      ctx.status = forwarded.status;
      for (const name of ['location', 'set-cookie', 'content-type', 'cache-control'] as const) {
        const value = forwarded.headers[name];
        if (value !== undefined) ctx.set(name, value);
      }
      ctx.body = forwarded.body;
      return;
    }

    await next();

    if (ctx.oidc?.route === 'end_session' && ctx.status === 200) {
      const secret = ctx.oidc.session?.state?.secret;
      if (typeof secret === 'string') {
        ctx.status = 303;
        ctx.redirect(`${ROUTES.endSessionAutoConfirm}?${new URLSearchParams({ xsrf: secret })}`);
      }
    }
  };
}
