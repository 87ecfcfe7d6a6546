import type { FastifyInstance } from 'fastify'
import type { Config } from '../config/types.ts'
import type { OidcClient } from '../oidc/client.ts'
import type { SessionEnding } from '../session/ending.ts'
import type { SessionStore } from '../session/types.ts'
import { createKeyNames } from '../session/keys.ts'
import { registerGlobalRevocationRoute } from './global-revocation-route.ts'
import {
  authorizationServerMetadataUrls,
  createCriticalMembersSource,
  createIssuerKeys,
  ssfConfigurationUrl,
} from './keys.ts'
import { createSetVerifier } from './security-event.ts'
import { createSetProcessor } from './set-processor.ts'
import { startSsfPoller } from './ssf-poller.ts'
import { registerSsfPushRoute } from './ssf-push-route.ts'

/**
 * Wires the revocation channels the configuration turns on (both off by default): the Shared
 * Signals receiver (push route or poller) and the Global Token Revocation endpoint.
 */
export function registerRevocationChannels(
  app: FastifyInstance,
  deps: {
    readonly config: Config
    readonly store: SessionStore
    readonly ending: SessionEnding
    readonly oidc: Pick<OidcClient, 'issuer'>
    /** The frontends at the issuer `oidc` names: a subject's sessions end on each (docs/logout.md). */
    readonly frontends?: readonly string[]
    readonly now?: () => number
  },
): void {
  const { config, store, ending, oidc } = deps
  const frontends = deps.frontends ?? []
  const now = deps.now ?? Date.now
  const { ssf, globalRevocation } = config.revocation
  const timeoutMs = config.oidc.timeoutSeconds * 1000

  if (ssf !== undefined) {
    const process = createSetProcessor({
      verify: createSetVerifier({
        issuer: ssf.issuer,
        audience: ssf.audience,
        maxAgeSeconds: ssf.maxAgeSeconds,
        now,
        keys: createIssuerKeys({
          issuer: ssf.issuer,
          ...(ssf.jwksUri !== undefined && { jwksUri: ssf.jwksUri }),
          metadataUrls: [ssfConfigurationUrl(ssf.issuer)],
          timeoutMs,
          now,
        }),
      }),
      store,
      oidcIssuer: oidc.issuer,
      frontends,
      subjects: { userIssuers: [oidc.issuer, ssf.issuer] },
      criticalMembers: createCriticalMembersSource({
        issuer: ssf.issuer,
        timeoutMs,
        now,
        onError: (reason) =>
          app.log.warn(
            { event: 'ssf.configuration_unavailable', reason },
            "the SSF transmitter's configuration could not be read; using the critical subject members last known",
          ),
      }),
      ending,
      log: app.log,
    })
    if (ssf.delivery === 'push') registerSsfPushRoute(app, { authorization: ssf.pushAuthorization!, process })
    else {
      let poller: ReturnType<typeof startSsfPoller> | undefined
      app.addHook('onReady', async () => {
        poller = startSsfPoller({
          pollUrl: ssf.pollUrl!,
          authorization: ssf.pollAuthorization!,
          process,
          lease: store,
          leaseKey: createKeyNames(config.redis.keyPrefix).refreshLock('ssf-poll'),
          log: app.log,
        })
      })
      app.addHook('preClose', async () => {
        await poller?.stop()
      })
    }
  }

  if (globalRevocation !== undefined) {
    registerGlobalRevocationRoute(app, {
      issuer: globalRevocation.issuer,
      audience: globalRevocation.audience,
      keys: createIssuerKeys({
        issuer: globalRevocation.issuer,
        ...(globalRevocation.jwksUri !== undefined && { jwksUri: globalRevocation.jwksUri }),
        metadataUrls: authorizationServerMetadataUrls(globalRevocation.issuer),
        timeoutMs,
        now,
      }),
      store,
      oidcIssuer: oidc.issuer,
      frontends,
      ending,
      now,
    })
  }
}
