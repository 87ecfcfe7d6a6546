// The demo SPA: plain JavaScript on @bffgate/client, no framework, no build step.
import { BffUnauthenticatedError, createBffClient } from './bffgate-client.js'

const $ = (id) => document.getElementById(id)
const time = (epochSeconds) => new Date(epochSeconds * 1000).toLocaleTimeString()
/** "in 2 h 5 min", "in 40 s". */
function fromNow(epochSeconds) {
  const s = Math.max(0, epochSeconds - Math.floor(Date.now() / 1000))
  if (s < 120) return `in ${s} s`
  if (s < 7200) return `in ${Math.round(s / 60)} min`
  if (s < 172_800) return `in ${Math.round(s / 3600)} h`
  return `in ${Math.round(s / 86_400)} days`
}
const when = (epochSeconds) => `${fromNow(epochSeconds)} (${new Date(epochSeconds * 1000).toLocaleString()})`

const bff = createBffClient({
  // Another tab logged out (or found the session over): this tab is logged out too, since the
  // cookie is shared. Show it in place; never start a login from here (docs/spa.md, "Several tabs").
  onOtherTabLogout({ reason }) {
    stopAuto()
    stopLive()
    show(null)
    $('notice').textContent =
      reason === 'logout' ? 'You logged out in another tab.' : 'Your session ended in another tab.'
  },
  // onUnauthenticated is left out: a 401 session_ended/login_required on a call sends this
  // page to the login, which brings the user back here.
})

/** What the page says when bffgate pushes the session's end (GET /bff/session-events). */
const ENDED = {
  backchannel_logout: 'You were signed out by the identity provider.',
  revoked: 'Your sign-in was revoked at the identity provider.',
  idle_timeout: 'Your session ended after a period of inactivity.',
  absolute_timeout: 'Your session reached its maximum lifetime.',
}
// Pushed within a second of the end, whatever ended it and on whichever replica. The page keeps
// what is on screen (unsaved work stays) and offers the login; the next call would go there too.
// Subscribed once signed in (below): the stream needs a session.
const onSessionEnded = ({ reason }) => {
  stopAuto()
  if (reason === 'logout') {
    // Only another tab's logout reaches this tab: bff.logout() closes its own stream first.
    show(null)
    $('notice').textContent = 'You logged out in another tab.'
    return
  }
  $('notice').textContent = '' // a session-expiring warning is moot now
  $('session-ended-text').textContent =
    `${ENDED[reason] ?? 'Your session has ended.'} Save your work, then log in again. `
  $('session-ended').hidden = false
  $('session-ended').dataset.reason = reason
}
const onSessionExpiring = ({ absoluteExpiresAt }) => {
  $('notice').textContent = `Your session ends ${fromNow(absoluteExpiresAt)} whatever you do: save your work.`
}

/** Every access token the API has seen, by jti, in order. */
const tokens = new Map()
let currentJti
let autoTimer

function show(user) {
  $('loading').hidden = true
  $('anonymous').hidden = user !== null
  $('signed-in').hidden = user === null
  if (user === null) return
  $('user-name').textContent = user.claims.name ?? user.claims.sub
  $('user-email').textContent = user.claims.email ?? ''
  $('user-sub').textContent = user.claims.sub
  $('session-expires').textContent = when(user.session.expiresAt)
  $('session-absolute').textContent = when(user.session.absoluteExpiresAt)
}

function logCall(text, { status, jti } = {}) {
  const item = document.createElement('li')
  item.textContent = `${new Date().toLocaleTimeString()}  ${text}`
  if (status !== undefined) item.dataset.status = String(status)
  if (jti !== undefined) item.dataset.jti = jti
  if (status !== 200) item.className = 'failed'
  $('calls').prepend(item)
}

function renderTokens() {
  const rows = [...tokens.values()].map((token, index) => {
    const row = document.createElement('tr')
    row.dataset.jti = token.jti
    if (token.jti === currentJti) row.className = 'current'
    for (const text of [
      String(index + 1),
      token.jti.slice(0, 12) + '…',
      time(token.iat),
      time(token.exp),
      String(token.calls),
    ]) {
      const cell = document.createElement('td')
      cell.textContent = text
      row.append(cell)
    }
    return row
  })
  $('tokens').replaceChildren(...rows.toReversed())
  const current = tokens.get(currentJti)
  if (current === undefined) return
  const left = Math.max(0, current.exp - Math.floor(Date.now() / 1000))
  const refreshes = tokens.size - 1
  $('token-summary').textContent =
    `${tokens.size} access token${tokens.size === 1 ? '' : 's'} seen, ` +
    `${refreshes} refresh${refreshes === 1 ? '' : 'es'} done by bffgate; the current one expires in ${left} s.`
  $('token-summary').dataset.tokens = String(tokens.size)
}

async function callApi() {
  let response
  try {
    response = await bff.fetch('/api/hello')
  } catch (err) {
    if (err instanceof BffUnauthenticatedError) {
      // The client is already taking the page to the login.
      stopAuto()
      logCall(`GET /api/hello → 401 ${err.code}: logging in again`, { status: 401 })
      return
    }
    logCall(`GET /api/hello failed: ${err.message}`, { status: 0 })
    return
  }
  const body = await response.json().catch(() => ({}))
  if (!response.ok) {
    logCall(`GET /api/hello → ${response.status} ${body.error ?? ''}`, { status: response.status })
    $('answer').textContent = JSON.stringify(body, null, 2)
    return
  }
  const { jti, iat, exp } = body.claims
  const refreshed = currentJti !== undefined && jti !== currentJti
  currentJti = jti
  const seen = tokens.get(jti) ?? { jti, iat, exp, calls: 0 }
  seen.calls += 1
  tokens.set(jti, seen)
  logCall(
    `GET /api/hello → 200 with token #${[...tokens.keys()].indexOf(jti) + 1}${refreshed ? ' (refreshed by bffgate)' : ''}`,
    { status: 200, jti },
  )
  renderTokens()
  $('answer').textContent = JSON.stringify(
    {
      status: response.status,
      path: body.path,
      claims: body.claims,
      upstreamSaw: {
        authorization: `${(body.headers.authorization ?? '').slice(0, 16)}…`,
        cookie: body.headers.cookie ?? '(none)',
      },
    },
    null,
    2,
  )
  // API calls extend the session: show its new idle deadline.
  const user = await bff.getUser()
  if (user !== null) show(user)
}

/**
 * Server-sent events from the API through bffgate: an EventSource sends no custom header, so
 * the route is `"csrf": "same-origin"`. bffgate cuts the stream when the session ends; the
 * browser's reconnect then gets a 401, which closes the EventSource for good.
 */
let live
function startLive() {
  if (live !== undefined) return
  live = new EventSource('/live/events')
  live.addEventListener('tick', (event) => {
    const { n } = JSON.parse(event.data)
    $('live').textContent = `tick ${n}`
    $('live').dataset.ticks = String(n)
  })
  live.addEventListener('error', () => {
    if (live?.readyState === EventSource.CLOSED) $('live').textContent = 'closed (the session ended)'
    else $('live').textContent = 'reconnecting…'
  })
  $('avatar').src = '/live/avatar.svg'
}
function stopLive() {
  live?.close()
  live = undefined
}

function stopAuto() {
  clearInterval(autoTimer)
  autoTimer = undefined
  $('auto').checked = false
}

$('login').addEventListener('click', () => bff.login())
$('login-again').addEventListener('click', () => bff.login())
$('call').addEventListener('click', () => callApi())
$('auto').addEventListener('change', () => {
  if (!$('auto').checked) return stopAuto()
  callApi()
  autoTimer = setInterval(callApi, 1000)
})
$('logout').addEventListener('click', async () => {
  stopAuto()
  stopLive()
  await bff.logout()
})
// The countdown of the current token.
setInterval(renderTokens, 1000)

try {
  const user = await bff.getUser()
  show(user)
  if (user !== null) {
    bff.onSessionEnded(onSessionEnded)
    bff.onSessionExpiring(onSessionExpiring)
    startLive()
  }
} catch (err) {
  $('loading').textContent = `bffgate answered an error: ${err.code ?? err.message}`
}
