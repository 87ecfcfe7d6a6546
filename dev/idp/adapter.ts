/**
 * In-memory storage adapter for the development IdP.
 *
 * oidc-provider's bundled memory adapter cannot be queried ("which sessions belong to this
 * user?") and its store is module-global, so two IdPs in one test process would share state.
 * This store belongs to one IdP instance, survives `stop()`/`start()` because it lives in the
 * process, and answers the queries the test hooks need.
 */

/** A stored model payload as oidc-provider hands it to the adapter. */
export interface StoredPayload {
  jti?: string
  uid?: string
  grantId?: string
  userCode?: string
  accountId?: string
  consumed?: number
  exp?: number
  [key: string]: unknown
}

interface Entry {
  payload: StoredPayload
  /** Epoch milliseconds after which the entry is gone; undefined = no expiry. */
  expiresAt: number | undefined
}

/** Models whose records reference a grant, so that revoking a grant removes them. */
const GRANTABLE = new Set([
  'AccessToken',
  'AuthorizationCode',
  'RefreshToken',
  'DeviceCode',
  'BackchannelAuthenticationRequest',
  'PreAuthorizedCode',
])

/** The records of every model of one IdP, plus the secondary indexes oidc-provider asks for. */
export class DevStore {
  readonly #entries = new Map<string, Entry>()
  readonly #sessionByUid = new Map<string, string>()
  readonly #byUserCode = new Map<string, string>()
  readonly #byGrant = new Map<string, Set<string>>()
  readonly #clockToleranceMs: number

  /** @param clockToleranceSeconds kept in storage beyond `expiresIn`, like oidc-provider's own adapter */
  constructor(clockToleranceSeconds = 0) {
    this.#clockToleranceMs = clockToleranceSeconds * 1000
  }

  /** Returns a live entry or undefined, dropping it when it has expired. */
  get(key: string): StoredPayload | undefined {
    const entry = this.#entries.get(key)
    if (!entry) return undefined
    if (entry.expiresAt !== undefined && entry.expiresAt <= Date.now()) {
      this.delete(key)
      return undefined
    }
    return entry.payload
  }

  set(model: string, id: string, payload: StoredPayload, expiresInSeconds: number | undefined): void {
    const key = `${model}:${id}`
    this.delete(key)
    const expiresAt =
      typeof expiresInSeconds === 'number' ? Date.now() + expiresInSeconds * 1000 + this.#clockToleranceMs : undefined
    // A copy, so later mutation of the model instance cannot change what is stored.
    this.#entries.set(key, { payload: structuredClone(payload), expiresAt })
    if (model === 'Session' && typeof payload.uid === 'string') this.#sessionByUid.set(payload.uid, id)
    if (typeof payload.userCode === 'string') this.#byUserCode.set(payload.userCode, id)
    if (GRANTABLE.has(model) && typeof payload.grantId === 'string') {
      let members = this.#byGrant.get(payload.grantId)
      if (!members) {
        members = new Set()
        this.#byGrant.set(payload.grantId, members)
      }
      members.add(key)
    }
  }

  delete(key: string): void {
    const entry = this.#entries.get(key)
    if (!entry) return
    this.#entries.delete(key)
    const id = key.slice(key.indexOf(':') + 1)
    const { uid, userCode, grantId } = entry.payload
    if (typeof uid === 'string' && this.#sessionByUid.get(uid) === id) this.#sessionByUid.delete(uid)
    if (typeof userCode === 'string' && this.#byUserCode.get(userCode) === id) this.#byUserCode.delete(userCode)
    if (typeof grantId === 'string') this.#byGrant.get(grantId)?.delete(key)
  }

  sessionIdForUid(uid: string): string | undefined {
    return this.#sessionByUid.get(uid)
  }

  idForUserCode(userCode: string): string | undefined {
    return this.#byUserCode.get(userCode)
  }

  deleteByGrant(grantId: string): void {
    const members = this.#byGrant.get(grantId)
    if (!members) return
    for (const key of [...members]) this.delete(key)
    this.#byGrant.delete(grantId)
  }

  /** Live sessions of one account (test hook: revoke all sessions of a user). */
  sessionsOf(accountId: string): StoredPayload[] {
    const found: StoredPayload[] = []
    for (const key of [...this.#entries.keys()]) {
      if (!key.startsWith('Session:')) continue
      const payload = this.get(key)
      if (payload?.accountId === accountId) found.push(structuredClone(payload))
    }
    return found
  }
}

/** The adapter interface oidc-provider calls, one instance per model name. */
export class DevAdapter {
  readonly #model: string
  readonly #store: DevStore

  constructor(model: string, store: DevStore) {
    this.#model = model
    this.#store = store
  }

  #key(id: string): string {
    return `${this.#model}:${id}`
  }

  async upsert(id: string, payload: StoredPayload, expiresIn?: number): Promise<void> {
    this.#store.set(this.#model, id, payload, expiresIn)
  }

  async find(id: string): Promise<StoredPayload | undefined> {
    const payload = this.#store.get(this.#key(id))
    return payload ? structuredClone(payload) : undefined
  }

  async findByUid(uid: string): Promise<StoredPayload | undefined> {
    const id = this.#store.sessionIdForUid(uid)
    return id === undefined ? undefined : this.find(id)
  }

  async findByUserCode(userCode: string): Promise<StoredPayload | undefined> {
    const id = this.#store.idForUserCode(userCode)
    return id === undefined ? undefined : this.find(id)
  }

  async consume(id: string): Promise<void> {
    const payload = this.#store.get(this.#key(id))
    if (payload) payload.consumed = Math.floor(Date.now() / 1000)
  }

  async destroy(id: string): Promise<void> {
    this.#store.delete(this.#key(id))
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    this.#store.deleteByGrant(grantId)
  }
}

/**
 * Builds the `adapter` configuration value: oidc-provider calls it once per model name.
 * It is an arrow function on purpose: oidc-provider calls non-constructable adapters as
 * factories rather than with `new`.
 */
export function createAdapterFactory(store: DevStore): (model: string) => DevAdapter {
  return (model: string) => new DevAdapter(model, store)
}
