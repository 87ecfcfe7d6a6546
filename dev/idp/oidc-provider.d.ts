/**
 * Minimal type declarations for the parts of oidc-provider 9 that the development IdP uses.
 *
 * oidc-provider ships no types of its own. `@types/oidc-provider` would be the complete
 * alternative; until the project depends on it, this file describes only what dev/idp touches,
 * so the type checker still catches misuse of those parts.
 */
declare module 'oidc-provider' {
  import type { IncomingMessage, ServerResponse } from 'node:http'

  /** The subset of a Koa context that the IdP's middleware reads or writes. */
  export interface KoaContextWithOIDC {
    method: string
    path: string
    querystring: string
    status: number
    body: unknown
    req: IncomingMessage
    res: ServerResponse
    query: Record<string, string | string[] | undefined>
    redirect(url: string): void
    set(field: string, value: string | string[]): void
    oidc?: OIDCContext
  }

  export type Middleware = (ctx: KoaContextWithOIDC, next: () => Promise<void>) => Promise<void> | void

  export interface OIDCContext {
    route?: string
    params?: Record<string, unknown>
    body?: Record<string, unknown>
    client?: Client
    session?: Session
    entities: {
      RefreshToken?: RefreshToken
      AccessToken?: unknown
      Client?: Client
      [key: string]: unknown
    }
    provider: Provider
  }

  export interface Client {
    clientId: string
    clientAuthMethod: string
    backchannelLogoutUri?: string
    redirectUris: string[]
    grantTypeAllowed(type: string): boolean
    backchannelLogout(sub: string, sid: string | undefined): Promise<void>
  }

  interface ClientStatic {
    find(id: string): Promise<Client | undefined>
    prototype: Client & { includeSid(): boolean }
  }

  export interface BaseTokenLike {
    jti: string
    kind: string
    iat?: number
    exp?: number
    clientId?: string
    accountId?: string
    grantId?: string
    scope?: string
    readonly scopes: Set<string>
    sessionUid?: string
    sid?: string
    expiresWithSession?: boolean
    authTime?: number
    resource?: string | string[]
    destroy(): Promise<void>
  }

  export interface RefreshToken extends BaseTokenLike {
    iiat?: number
    jkt?: string
    consumed?: number
    generateTokenId(): string
  }

  interface RefreshTokenStatic {
    find(
      value: string,
      options?: { ignoreExpiration?: boolean; ignoreSessionBinding?: boolean },
    ): Promise<RefreshToken | undefined>
    prototype: RefreshToken
  }

  export interface Session {
    jti: string
    uid: string
    accountId?: string
    loginTs?: number
    exp?: number
    authorizations?: Record<string, { sid?: string; grantId?: string; persistsLogout?: boolean }>
    state?: { secret?: string; [key: string]: unknown }
    sidFor(clientId: string): string | undefined
    grantIdFor(clientId: string): string | undefined
    save(ttl: number): Promise<string>
    destroy(): Promise<void>
  }

  interface SessionStatic {
    find(id: string): Promise<Session | undefined>
    findByUid(uid: string): Promise<Session | undefined>
  }

  export interface Grant {
    jti: string
    accountId: string
    clientId: string
    addOIDCScope(scope: string): void
    addOIDCClaims(claims: string[]): void
    addResourceScope(resource: string, scope: string): void
    save(ttl?: number): Promise<string>
  }

  interface GrantStatic {
    new (properties: { accountId: string; clientId: string }): Grant
    find(id: string): Promise<Grant | undefined>
  }

  export interface Interaction {
    uid: string
    returnTo: string
    grantId?: string
    prompt: {
      name: string
      reasons: string[]
      details: {
        missingOIDCScope?: string[]
        missingOIDCClaims?: string[]
        missingResourceScopes?: Record<string, string[]>
        [key: string]: unknown
      }
    }
    params: Record<string, unknown> & { client_id: string; scope?: string; login_hint?: string }
    session?: { accountId: string; uid: string }
  }

  export interface Account {
    accountId: string
    claims(
      use: string,
      scope: string,
      claims: unknown,
      rejected: string[],
    ): Promise<Record<string, unknown>> | Record<string, unknown>
  }

  export interface ResourceServerInfo {
    scope: string
    audience?: string
    accessTokenTTL?: number
    accessTokenFormat?: 'opaque' | 'jwt'
    jwt?: { sign?: { alg?: string } }
  }

  export interface InteractionResults {
    login?: { accountId: string; acr?: string; amr?: string[]; remember?: boolean; ts?: number }
    consent?: { grantId?: string }
    error?: string
    error_description?: string
  }

  /**
   * The configuration object; left open because the IdP passes many documented options
   * whose exact shapes this file does not repeat.
   */
  export type Configuration = Record<string, unknown>

  export class Provider {
    constructor(issuer: string, configuration?: Configuration)
    readonly issuer: string
    proxy: boolean
    callback(): (req: IncomingMessage, res: ServerResponse) => void
    use(middleware: Middleware): this
    on(event: string, listener: (...args: never[]) => void): this
    interactionDetails(req: IncomingMessage, res: ServerResponse): Promise<Interaction>
    interactionFinished(
      req: IncomingMessage,
      res: ServerResponse,
      result: InteractionResults,
      options?: { mergeWithLastSubmission?: boolean },
    ): Promise<void>
    readonly Session: SessionStatic
    readonly RefreshToken: RefreshTokenStatic
    readonly Grant: GrantStatic
    readonly Client: ClientStatic
  }

  export class OIDCProviderError extends Error {
    error: string
    error_description?: string
    status: number
    statusCode: number
  }

  export const errors: {
    OIDCProviderError: typeof OIDCProviderError
    InvalidRequest: new (description?: string) => OIDCProviderError
    InvalidTarget: new (description?: string) => OIDCProviderError
    SessionNotFound: new (description?: string) => OIDCProviderError
  }

  export default Provider
}
