/**
 * A small scripted "browser" for integration tests: a cookie jar on top of global fetch that
 * follows redirect chains one hop at a time (like Duende's TestBrowserClient), so tests can
 * watch every hop, stop before a URL, and inspect cookies with their raw attributes.
 *
 * Cookie rules follow RFC 6265 and what browsers do:
 * - cookies belong to a host (the port is ignored, as in browsers: two servers on 127.0.0.1
 *   share cookies) or, with a Domain attribute, to a domain and its subdomains;
 * - Path scopes them; Max-Age (preferred) or Expires in the past deletes them;
 * - Secure cookies are stored and sent only in a secure context: https, or a loopback host
 *   (127.0.0.0/8, ::1, localhost), which browsers treat as potentially trustworthy. That lets
 *   tests run a gateway over plain http on 127.0.0.1 while it sets `__Host-`/Secure cookies;
 * - the `__Secure-` and `__Host-` name prefixes are enforced (Secure; and for `__Host-` also
 *   Path=/ and no Domain), so a cookie a real browser would refuse is refused here too.
 * SameSite is recorded but not enforced: the test browser has no notion of the page that
 * started a navigation.
 */

/** A cookie in the jar, with its parsed fields and the attributes exactly as they were set. */
export interface BrowserCookie {
  name: string
  value: string
  /** Host (host-only cookie) or domain the cookie belongs to. */
  domain: string
  /** True when the cookie had no Domain attribute: sent to exactly that host. */
  hostOnly: boolean
  path: string
  /** Epoch milliseconds; undefined for a session cookie. */
  expires: number | undefined
  secure: boolean
  httpOnly: boolean
  /** SameSite value as sent (e.g. 'Strict'), or undefined. */
  sameSite: string | undefined
  /** Attributes as sent, keyed by their lower-case name: `{ path: '/', httponly: true, samesite: 'Strict' }`. */
  attributes: Record<string, string | true>
  /** The Set-Cookie header line the cookie came from. */
  setCookie: string
  /** Creation order, for the send order RFC 6265 prescribes. */
  created: number
}

/** One HTTP response, its body already read. */
export interface BrowserResponse {
  /** The URL requested. */
  url: URL
  method: string
  status: number
  headers: Headers
  /** The Location header resolved against `url`, when present. */
  location: URL | undefined
  /** The Set-Cookie lines of this response. */
  setCookies: string[]
  text: string
  json<T = unknown>(): T
}

/** Result of following a redirect chain. */
export interface FollowResult {
  /** Where the chain ended: the matched URL (not requested) or the last URL requested. */
  url: URL
  /** True when `until` matched `url`; it was then not requested. */
  matched: boolean
  /** The last response received (a redirect pointing at `url` when `matched`). */
  response: BrowserResponse
  /** Every redirect target in order, the matched one included (for loginAtDevIdp: before and after the form). */
  redirects: URL[]
}

export interface FollowOptions {
  /** Stop at the first redirect target for which this returns true, without requesting it. */
  until?: (url: URL) => boolean
  /** Maximum redirects to follow; default 20. */
  maxHops?: number
  /** Extra headers for the first request only (browsers do not repeat them on redirects). */
  headers?: Record<string, string>
}

export type FormBody = URLSearchParams | Record<string, string>
export type RequestBody = string | Uint8Array | FormBody

export interface Browser {
  get(url: string | URL, headers?: Record<string, string>): Promise<BrowserResponse>
  /** POSTs a body; an object or URLSearchParams is sent as an HTML form would send it. */
  post(url: string | URL, body: RequestBody, headers?: Record<string, string>): Promise<BrowserResponse>
  postJson(url: string | URL, value: unknown, headers?: Record<string, string>): Promise<BrowserResponse>
  request(
    method: string,
    url: string | URL,
    init?: { headers?: Record<string, string>; body?: RequestBody },
  ): Promise<BrowserResponse>
  /** Requests `start` (or continues from a response) and follows 30x redirects manually. */
  follow(start: string | URL | BrowserResponse, options?: FollowOptions): Promise<FollowResult>
  /** The cookies that would be sent to `url`, in send order. */
  cookies(url: string | URL): BrowserCookie[]
  /** One cookie that would be sent to `url`, by name. */
  cookie(url: string | URL, name: string): BrowserCookie | undefined
  /** Every unexpired cookie in the jar, whatever its host. */
  allCookies(): BrowserCookie[]
  /** Stores a Set-Cookie line as if `url` had answered with it. */
  setCookie(url: string | URL, setCookieLine: string): void
  clearCookies(): void
}

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308])

function isIpAddress(hostname: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(hostname) || hostname.includes(':')
}

function bareHost(url: URL): string {
  return url.hostname.replace(/^\[|\]$/g, '').toLowerCase()
}

/** https, or a loopback host: where browsers store and send Secure cookies. */
export function isSecureContext(url: URL): boolean {
  if (url.protocol === 'https:') return true
  const host = bareHost(url)
  return host === 'localhost' || host.endsWith('.localhost') || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host)
}

function domainMatches(host: string, domain: string): boolean {
  return host === domain || (!isIpAddress(host) && host.endsWith(`.${domain}`))
}

/** RFC 6265 5.1.4 */
function pathMatches(requestPath: string, cookiePath: string): boolean {
  if (requestPath === cookiePath) return true
  if (!requestPath.startsWith(cookiePath)) return false
  return cookiePath.endsWith('/') || requestPath.charAt(cookiePath.length) === '/'
}

/** RFC 6265 5.1.4 default-path: the request path up to (not including) its last '/'. */
function defaultPath(url: URL): string {
  const path = url.pathname
  if (!path.startsWith('/') || path.lastIndexOf('/') === 0) return '/'
  return path.slice(0, path.lastIndexOf('/'))
}

/** Parses a Set-Cookie line received from `url`; undefined when a browser would ignore it. */
export function parseSetCookie(url: URL, line: string, now = Date.now(), created = now): BrowserCookie | undefined {
  const [pair = '', ...rawAttributes] = line.split(';')
  const eq = pair.indexOf('=')
  if (eq <= 0) return undefined
  const name = pair.slice(0, eq).trim()
  const value = pair.slice(eq + 1).trim()
  if (name === '') return undefined

  const attributes: Record<string, string | true> = {}
  for (const raw of rawAttributes) {
    const at = raw.indexOf('=')
    const key = (at === -1 ? raw : raw.slice(0, at)).trim().toLowerCase()
    if (key === '') continue
    attributes[key] = at === -1 ? true : raw.slice(at + 1).trim()
  }

  const host = bareHost(url)
  let expires: number | undefined
  const maxAge = attributes['max-age']
  const expiresAttr = attributes.expires
  if (typeof maxAge === 'string' && /^-?\d+$/.test(maxAge)) {
    expires = Number(maxAge) <= 0 ? 0 : now + Number(maxAge) * 1000
  } else if (typeof expiresAttr === 'string' && !Number.isNaN(Date.parse(expiresAttr))) {
    expires = Date.parse(expiresAttr)
  }

  let domain = host
  let hostOnly = true
  const domainAttr = attributes.domain
  if (typeof domainAttr === 'string' && domainAttr !== '') {
    const wanted = domainAttr.replace(/^\./, '').toLowerCase()
    if (!domainMatches(host, wanted)) return undefined
    domain = wanted
    hostOnly = false
  }

  const pathAttr = attributes.path
  const path = typeof pathAttr === 'string' && pathAttr.startsWith('/') ? pathAttr : defaultPath(url)
  const secure = 'secure' in attributes
  if (secure && !isSecureContext(url)) return undefined
  if (name.startsWith('__Secure-') && !secure) return undefined
  if (name.startsWith('__Host-') && (!secure || !hostOnly || path !== '/' || 'domain' in attributes)) return undefined

  const sameSite = attributes.samesite
  return {
    name,
    value,
    domain,
    hostOnly,
    path,
    expires,
    secure,
    httpOnly: 'httponly' in attributes,
    sameSite: typeof sameSite === 'string' ? sameSite : undefined,
    attributes,
    setCookie: line,
    created,
  }
}

function encodeBody(body: RequestBody | undefined): {
  body: string | Uint8Array<ArrayBuffer> | undefined
  contentType: string | undefined
} {
  if (body === undefined) return { body: undefined, contentType: undefined }
  if (typeof body === 'string') return { body, contentType: undefined }
  // A copy backed by a plain ArrayBuffer: what fetch's types accept (a Buffer may be pooled).
  if (body instanceof Uint8Array) return { body: new Uint8Array(body), contentType: undefined }
  const form = body instanceof URLSearchParams ? body : new URLSearchParams(body)
  return { body: form.toString(), contentType: 'application/x-www-form-urlencoded' }
}

function isResponse(value: unknown): value is BrowserResponse {
  return typeof value === 'object' && value !== null && 'status' in value && 'headers' in value
}

/** Creates a browser with an empty cookie jar. */
export function createBrowser(): Browser {
  let jar: BrowserCookie[] = []
  let sequence = 0
  /** Bodies of requests, kept for 307/308 redirects which repeat method and body. */
  const requestBodies = new WeakMap<BrowserResponse, RequestBody | undefined>()

  function live(now = Date.now()): BrowserCookie[] {
    jar = jar.filter((cookie) => cookie.expires === undefined || cookie.expires > now)
    return jar
  }

  function store(url: URL, line: string): void {
    const cookie = parseSetCookie(url, line, Date.now(), sequence++)
    if (!cookie) return
    const existing = jar.find((c) => c.name === cookie.name && c.domain === cookie.domain && c.path === cookie.path)
    jar = jar.filter((c) => c !== existing)
    // A replaced cookie keeps its original creation order (RFC 6265 5.3 step 11).
    if (existing) cookie.created = existing.created
    if (cookie.expires === undefined || cookie.expires > Date.now()) jar.push(cookie)
  }

  function cookiesFor(url: URL): BrowserCookie[] {
    const host = bareHost(url)
    const secure = isSecureContext(url)
    return live()
      .filter((c) => (c.hostOnly ? c.domain === host : domainMatches(host, c.domain)))
      .filter((c) => pathMatches(url.pathname, c.path))
      .filter((c) => !c.secure || secure)
      .sort((a, b) => b.path.length - a.path.length || a.created - b.created)
  }

  async function request(
    method: string,
    target: string | URL,
    init: { headers?: Record<string, string>; body?: RequestBody } = {},
  ): Promise<BrowserResponse> {
    const url = new URL(target)
    const encoded = encodeBody(init.body)
    const headers = new Headers(init.headers)
    if (encoded.contentType && !headers.has('content-type')) headers.set('content-type', encoded.contentType)
    const cookieHeader = cookiesFor(url)
      .map((c) => `${c.name}=${c.value}`)
      .join('; ')
    if (cookieHeader !== '' && !headers.has('cookie')) headers.set('cookie', cookieHeader)

    const response = await fetch(url, {
      method,
      headers,
      redirect: 'manual',
      ...(encoded.body === undefined ? {} : { body: encoded.body }),
    })
    const setCookies = response.headers.getSetCookie()
    for (const line of setCookies) store(url, line)
    const text = await response.text()
    const location = response.headers.get('location')
    const result: BrowserResponse = {
      url,
      method,
      status: response.status,
      headers: response.headers,
      location: location === null ? undefined : new URL(location, url),
      setCookies,
      text,
      json<T>() {
        return JSON.parse(text) as T
      },
    }
    requestBodies.set(result, init.body)
    return result
  }

  async function follow(start: string | URL | BrowserResponse, options: FollowOptions = {}): Promise<FollowResult> {
    const { until, maxHops = 20 } = options
    let response = isResponse(start)
      ? start
      : await request('GET', start, options.headers ? { headers: options.headers } : {})
    const redirects: URL[] = []
    while (REDIRECT_STATUSES.has(response.status) && response.location) {
      const next = response.location
      redirects.push(next)
      if (until?.(next)) return { url: next, matched: true, response, redirects }
      if (redirects.length > maxHops) throw new Error(`more than ${maxHops} redirects, last to ${next.href}`)
      // 307/308 repeat the method and body; the others become GET without a body.
      const repeat = response.status === 307 || response.status === 308
      const body = repeat ? requestBodies.get(response) : undefined
      response = await request(repeat ? response.method : 'GET', next, body === undefined ? {} : { body })
    }
    return { url: response.url, matched: false, response, redirects }
  }

  return {
    get: (url, headers) => request('GET', url, headers ? { headers } : {}),
    post: (url, body, headers) => request('POST', url, { body, ...(headers ? { headers } : {}) }),
    postJson: (url, value, headers) =>
      request('POST', url, {
        body: JSON.stringify(value),
        headers: { 'content-type': 'application/json', ...headers },
      }),
    request,
    follow,
    cookies: (url) => cookiesFor(new URL(url)),
    cookie: (url, name) => cookiesFor(new URL(url)).find((c) => c.name === name),
    allCookies: () => [...live()],
    setCookie: (url, line) => store(new URL(url), line),
    clearCookies: () => {
      jar = []
    },
  }
}

/** Decodes the few HTML entities a form's attributes may contain. */
function decodeEntities(text: string): string {
  return text
    .replace(/&#(\d+);/g, (_, code: string) => String.fromCodePoint(Number(code)))
    .replace(/&#x([0-9a-f]+);/gi, (_, code: string) => String.fromCodePoint(Number.parseInt(code, 16)))
    .replaceAll('&quot;', '"')
    .replaceAll('&#39;', "'")
    .replaceAll('&lt;', '<')
    .replaceAll('&gt;', '>')
    .replaceAll('&amp;', '&')
}

function attributesOf(tag: string): Record<string, string> {
  const attributes: Record<string, string> = {}
  for (const match of tag.matchAll(/([a-zA-Z_:][-a-zA-Z0-9_:.]*)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?/g)) {
    const [, name = '', double, single, bare] = match
    attributes[name.toLowerCase()] = decodeEntities(double ?? single ?? bare ?? '')
  }
  return attributes
}

/** A form of an HTML page: where it posts and its hidden fields. */
export interface HtmlForm {
  action: URL
  method: string
  fields: Record<string, string>
}

/** Finds the first form containing an input named `inputName` (e.g. the login form). */
export function findForm(page: BrowserResponse, inputName: string): HtmlForm | undefined {
  for (const match of page.text.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const [, formTag = '', inner = ''] = match
    const inputs = [...inner.matchAll(/<input\b([^>]*)>/gi)].map(([, tag = '']) => attributesOf(tag))
    if (!inputs.some((input) => input.name === inputName)) continue
    const form = attributesOf(formTag)
    const fields: Record<string, string> = {}
    for (const input of inputs) {
      if (input.type === 'hidden' && input.name !== undefined) fields[input.name] = input.value ?? ''
    }
    return { action: new URL(form.action ?? '', page.url), method: (form.method ?? 'get').toUpperCase(), fields }
  }
  return undefined
}

export interface Credentials {
  username: string
  password: string
}

/**
 * Signs in at the development IdP the way a person would: from `startUrl` (the BFF's login
 * route or an authorize URL) it follows redirects through the IdP's authorize endpoint to its
 * login page, submits the login form there, and follows the redirects through consent back to
 * the application. With `until`, it stops at the first matching redirect target (e.g. the
 * client's redirect_uri) without requesting it. If the IdP session already exists (SSO), no
 * form is shown and the chain simply continues. Throws when the login page or the login fails.
 */
export async function loginAtDevIdp(
  browser: Browser,
  startUrl: string | URL,
  credentials: Credentials,
  options: FollowOptions = {},
): Promise<FollowResult> {
  const first = await browser.follow(startUrl, options)
  if (first.matched) return first
  const page = first.response
  const form = findForm(page, 'username')
  if (!form) {
    throw new Error(
      `expected the dev IdP login page at ${page.url.href}, got HTTP ${page.status}: ${page.text.slice(0, 300)}`,
    )
  }
  const submitted = await browser.post(form.action, {
    ...form.fields,
    username: credentials.username,
    password: credentials.password,
  })
  if (!REDIRECT_STATUSES.has(submitted.status)) {
    const message = /<p id="error"[^>]*>([^<]*)<\/p>/.exec(submitted.text)?.[1] ?? submitted.text.slice(0, 300)
    throw new Error(`login as ${credentials.username} failed with HTTP ${submitted.status}: ${decodeEntities(message)}`)
  }
  const { until, maxHops } = options
  const rest = await browser.follow(submitted, {
    ...(until ? { until } : {}),
    ...(maxHops === undefined ? {} : { maxHops }),
  })
  return { ...rest, redirects: [...first.redirects, ...rest.redirects] }
}
