import type { Config, FrontendConfig } from '../config/types.ts'

/**
 * The deployment's configuration as one frontend's endpoints read it (docs/frontends.md):
 * the frontend's public URL, client, cookie, login options, routes, static files and CSP in
 * place of the top-level ones; everything else (listeners, Redis, lifetimes, limits) shared.
 * The first frontend's view is the configuration itself (its top-level fields are that
 * frontend's), so a single-frontend deployment runs on exactly what it always did. Pure.
 */
export function configForFrontend(config: Config, frontend: FrontendConfig): Config {
  if (frontend === config.frontends[0]) return config
  const { staticDir: _shared, ...rest } = config
  return {
    ...rest,
    publicUrl: frontend.publicUrl,
    oidc: frontend.oidc,
    session: { ...config.session, cookieName: frontend.cookie.name, refreshTokenKind: frontend.refreshTokenKind },
    login: frontend.login,
    routes: frontend.routes,
    ...(frontend.staticDir !== undefined && { staticDir: frontend.staticDir }),
    contentSecurityPolicy: frontend.contentSecurityPolicy,
  }
}
