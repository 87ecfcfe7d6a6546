/**
 * The IdP's own interaction pages (oidc-provider's `interactions.url` points here):
 * a plain login form a human or the test browser fills in, and automatic consent, because
 * the registered clients are first-party applications (Auth0 skips consent for those).
 * Both go through oidc-provider's real interaction cookies and resume redirects.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { errors } from 'oidc-provider'
import type { Interaction, Provider } from 'oidc-provider'
import type { UserDirectory } from './accounts.ts'
import { escapeHtml, renderPage } from './html.ts'
import { readFields, sendHtml } from './http.ts'

/** Path prefix of the interaction pages. */
export const INTERACTION_PREFIX = '/interaction/'

interface LoginFormOptions {
  uid: string
  clientId: string
  username?: string
  error?: string
}

/** The login page; element ids/names are a contract with test/helpers/browser.ts and people. */
export function renderLoginForm({ uid, clientId, username = '', error }: LoginFormOptions): string {
  const action = `${INTERACTION_PREFIX}${encodeURIComponent(uid)}`
  const message = error === undefined ? '' : `<p id="error" role="alert">${escapeHtml(error)}</p>\n`
  return renderPage(
    'Sign in',
    `<p>to continue to <strong>${escapeHtml(clientId)}</strong></p>
${message}<form id="login-form" method="post" action="${escapeHtml(action)}">
<p><label for="username">Username</label><br><input id="username" name="username" type="text" autocomplete="username" value="${escapeHtml(username)}" required autofocus></p>
<p><label for="password">Password</label><br><input id="password" name="password" type="password" autocomplete="current-password" required></p>
<p><button id="login" type="submit">Sign in</button></p>
</form>
<p><a id="cancel" href="${escapeHtml(action)}/abort">Cancel</a></p>`,
  )
}

/** Grants everything the authorization request asked for and resumes it. */
async function autoConsent(
  provider: Provider,
  req: IncomingMessage,
  res: ServerResponse,
  interaction: Interaction,
): Promise<void> {
  const {
    prompt: { details },
    params,
    session,
  } = interaction
  if (!session) throw new errors.SessionNotFound('consent without a login session')
  const existing = interaction.grantId === undefined ? undefined : await provider.Grant.find(interaction.grantId)
  const grant = existing ?? new provider.Grant({ accountId: session.accountId, clientId: params.client_id })
  if (details.missingOIDCScope) grant.addOIDCScope(details.missingOIDCScope.join(' '))
  if (details.missingOIDCClaims) grant.addOIDCClaims(details.missingOIDCClaims)
  for (const [resource, scopes] of Object.entries(details.missingResourceScopes ?? {})) {
    grant.addResourceScope(resource, scopes.join(' '))
  }
  const grantId = await grant.save()
  // An existing grant was modified in place; a new one must be handed to oidc-provider.
  await provider.interactionFinished(
    req,
    res,
    { consent: existing ? {} : { grantId } },
    { mergeWithLastSubmission: true },
  )
}

async function submitLogin(
  provider: Provider,
  users: UserDirectory,
  req: IncomingMessage,
  res: ServerResponse,
  interaction: Interaction,
): Promise<void> {
  const fields = await readFields(req)
  const username = fields.username ?? ''
  const user = users.authenticate(username, fields.password ?? '')
  if (!user) {
    sendHtml(
      res,
      401,
      renderLoginForm({
        uid: interaction.uid,
        clientId: interaction.params.client_id,
        username,
        error: 'Wrong username or password.',
      }),
    )
    return
  }
  await provider.interactionFinished(
    req,
    res,
    { login: { accountId: user.sub, amr: ['pwd'], remember: true } },
    { mergeWithLastSubmission: false },
  )
}

/**
 * Handles GET/POST `/interaction/:uid` and GET `/interaction/:uid/abort`.
 * Returns false when the path is not an interaction path.
 */
export function createInteractionHandler(provider: Provider, users: UserDirectory) {
  return async function handleInteraction(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> {
    if (!url.pathname.startsWith(INTERACTION_PREFIX)) return false
    const [uid = '', action] = url.pathname.slice(INTERACTION_PREFIX.length).split('/')
    res.setHeader('cache-control', 'no-store')
    try {
      const interaction = await provider.interactionDetails(req, res)
      if (interaction.uid !== decodeURIComponent(uid))
        throw new errors.SessionNotFound('interaction does not match this browser')

      if (action === 'abort' && req.method === 'GET') {
        await provider.interactionFinished(
          req,
          res,
          { error: 'access_denied', error_description: 'End-User aborted interaction' },
          { mergeWithLastSubmission: false },
        )
      } else if (action !== undefined) {
        sendHtml(res, 404, renderPage('Not found', '<p>No such page.</p>'))
      } else if (interaction.prompt.name === 'login') {
        if (req.method === 'POST') {
          await submitLogin(provider, users, req, res, interaction)
        } else {
          const hint = interaction.params.login_hint
          sendHtml(
            res,
            200,
            renderLoginForm({
              uid: interaction.uid,
              clientId: interaction.params.client_id,
              ...(typeof hint === 'string' ? { username: hint } : {}),
            }),
          )
        }
      } else if (interaction.prompt.name === 'consent') {
        await autoConsent(provider, req, res, interaction)
      } else {
        sendHtml(
          res,
          400,
          renderPage('Unsupported', `<p>Unsupported prompt ${escapeHtml(interaction.prompt.name)}.</p>`),
        )
      }
    } catch (error) {
      if (res.headersSent) throw error
      const expired = error instanceof errors.OIDCProviderError
      const message = expired
        ? 'This sign-in attempt expired or belongs to another browser. Start again from the application.'
        : 'Sign-in failed.'
      sendHtml(res, expired ? 400 : 500, renderPage('Sign-in problem', `<p>${escapeHtml(message)}</p>`))
      if (!expired) throw error
    }
    return true
  }
}
