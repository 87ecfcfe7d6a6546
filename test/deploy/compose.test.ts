/**
 * docker-compose.yml and docker-compose.replicas.yml: validated by docker-compose itself (it
 * parses and normalises compose files without a Docker engine), then their bffgate services'
 * environment is fed to bffgate's own configuration loader, and the services are checked to
 * agree with each other (issuer, client, redirect URIs, ports, images).
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { before, test } from 'node:test'
import { parse as parseYaml } from 'yaml'
import { loadConfig } from '../../src/config/load.ts'
import { settings } from '../../src/config/schema.ts'
import { readDockerfile, parseCopy } from '../../scripts/deploy/dockerfile.ts'
import { findDockerCompose, repoRoot, runAsync } from '../../scripts/deploy/tools.ts'

interface Service {
  image?: string
  build?: { context: string; target?: string }
  command?: string[]
  environment?: Record<string, string | null>
  ports?: string[]
  volumes?: string[]
  depends_on?: Record<string, { condition: string }>
  healthcheck?: { test: string[] }
  networks?: Record<string, { aliases?: string[] } | null>
  read_only?: boolean
  cap_drop?: string[]
  security_opt?: string[]
}
interface ComposeFile {
  services: Record<string, Service>
  volumes?: Record<string, unknown>
}

const files = ['docker-compose.yml', 'docker-compose.replicas.yml']
const normalised = new Map<string, ComposeFile>()
const settingNames = new Set<string>(settings.map((s) => s.name))
const secretNames = new Set<string>(settings.filter((s) => 'secret' in s && s.secret).map((s) => s.name))

function compose(file: string): ComposeFile {
  const parsed = normalised.get(file)
  assert.ok(parsed, `${file} was not parsed`)
  return parsed
}

function env(service: Service): Record<string, string> {
  return Object.fromEntries(Object.entries(service.environment ?? {}).map(([k, v]) => [k, v ?? '']))
}

/** The bffgate processes of a compose file: services whose environment has BFF_ settings. */
function bffgateServices(file: string): Array<[string, Service]> {
  return Object.entries(compose(file).services).filter(([, s]) =>
    Object.keys(s.environment ?? {}).some((k) => k.startsWith('BFF_')),
  )
}

function list(value: string | undefined): string[] {
  return (value ?? '').split(/[\s,]+/).filter(Boolean)
}

function publishedPorts(service: Service): Array<{ host: string; published: number; target: number }> {
  return (service.ports ?? []).map((p) => {
    const m = /^(?:([\d.]+):)?(\d+):(\d+)(?:\/tcp)?$/.exec(p)
    assert.ok(m, `cannot read port mapping ${p}`)
    return { host: m[1] ?? '0.0.0.0', published: Number(m[2]), target: Number(m[3]) }
  })
}

before(async () => {
  const command = findDockerCompose()
  await Promise.all(
    files.map(async (file) => {
      const result = await runAsync(command[0]!, [...command.slice(1), '-f', file, 'config'])
      assert.equal(result.status, 0, `${command.join(' ')} -f ${file} config failed:\n${result.stderr}`)
      normalised.set(file, parseYaml(result.stdout) as ComposeFile)
    }),
  )
})

test('docker-compose validates both compose files', () => {
  for (const file of files) {
    assert.ok(Object.keys(compose(file).services).length >= 4, `${file} has too few services`)
  }
})

test('every BFF_ variable of the compose services is a setting of the configuration schema', () => {
  for (const file of files) {
    for (const [name, service] of Object.entries(compose(file).services)) {
      for (const key of Object.keys(service.environment ?? {}).filter((k) => k.startsWith('BFF_'))) {
        const known = settingNames.has(key) || (key.endsWith('_FILE') && secretNames.has(key.slice(0, -5)))
        assert.ok(known, `${file}: service ${name} sets ${key}, which src/config/schema.ts does not declare`)
      }
    }
  }
})

test("the bffgate services' environment passes bffgate's configuration loader", () => {
  for (const file of files) {
    const services = bffgateServices(file)
    assert.ok(services.length > 0, `${file} runs no bffgate`)
    for (const [name, service] of services) {
      const config = loadConfig(env(service), {
        readFile: (path) => {
          throw new Error(`no file ${path} in a compose test`)
        },
      })
      assert.equal(config.session.store, 'redis', `${file}: ${name} must keep sessions in Redis`)
      assert.equal(new URL(config.redis.url).hostname, 'redis', `${file}: ${name} must use the redis service`)
    }
  }
})

test('the IdP, the API and bffgate agree on issuer, client, client authentication, audience, redirect URIs and upstream', () => {
  for (const file of files) {
    const { services } = compose(file)
    const idp = env(services.idp!)
    const api = env(services.api!)
    for (const [name, service] of bffgateServices(file)) {
      const config = loadConfig(env(service))
      const where = `${file}: ${name}`
      assert.equal(config.oidc.issuer, idp.IDP_ISSUER, `${where}: issuer`)
      assert.equal(api.API_ISSUER, idp.IDP_ISSUER, `${file}: the API's issuer`)
      assert.equal(config.oidc.clientId, idp.IDP_CLIENT_ID, `${where}: client id`)
      assert.equal(config.oidc.clientSecret, idp.IDP_CLIENT_SECRET, `${where}: client secret`)
      assert.equal(
        config.oidc.tokenEndpointAuthMethod,
        idp.IDP_CLIENT_AUTH_METHOD ?? 'client_secret_basic',
        `${where}: client authentication`,
      )
      assert.equal(config.oidc.audience, idp.IDP_API_AUDIENCE, `${where}: audience`)
      assert.equal(api.API_AUDIENCE, idp.IDP_API_AUDIENCE, `${file}: the API's audience`)
      assert.ok(
        list(idp.IDP_REDIRECT_URIS).includes(config.oidc.redirectUri),
        `${where}: ${config.oidc.redirectUri} is not registered at the IdP`,
      )
      assert.ok(
        list(idp.IDP_POST_LOGOUT_REDIRECT_URIS).includes(config.oidc.postLogoutRedirectUri),
        `${where}: ${config.oidc.postLogoutRedirectUri} is not registered at the IdP`,
      )
      const backchannel = new URL(idp.IDP_BACKCHANNEL_LOGOUT_URI!)
      assert.equal(backchannel.pathname, '/bff/backchannel-logout')
      assert.ok(backchannel.hostname in services, `${file}: the back-channel URI names no service`)
      assert.equal(config.backchannelLogout, true)
      const [route] = config.routes
      assert.ok(route, `${where}: no route`)
      assert.equal(new URL(route.upstream).hostname, 'api')
      assert.equal(new URL(route.upstream).port, api.API_PORT, `${where}: the route's port is not the API's`)
    }
  }
})

test('the browser and the containers reach the IdP at the same issuer URL', () => {
  for (const file of files) {
    const { services } = compose(file)
    const issuer = new URL(env(services.idp!).IDP_ISSUER!)
    assert.match(issuer.hostname, /\.localtest\.me$/, 'the issuer host must resolve to 127.0.0.1 for the browser')
    assert.ok(
      services.idp!.networks?.default?.aliases?.includes(issuer.hostname),
      `${file}: containers cannot resolve ${issuer.hostname} to the idp service`,
    )
    const published = publishedPorts(services.idp!)
    assert.deepEqual(
      published.map((p) => [p.published, p.target]),
      [[Number(issuer.port), Number(env(services.idp!).IDP_PORT)]],
    )
    assert.equal(env(services.idp!).IDP_HOST, '0.0.0.0')
    assert.equal(env(services.api!).API_HOST, '0.0.0.0')
  }
})

test('the public URL is what the browser reaches: a loopback port published by the service in front', () => {
  for (const file of files) {
    const { services } = compose(file)
    for (const [name, service] of bffgateServices(file)) {
      const publicUrl = new URL(env(service).BFF_PUBLIC_URL!)
      assert.equal(publicUrl.hostname, 'localhost', `${file}: ${name}`)
      const front = Object.entries(services).find(([, s]) =>
        publishedPorts(s).some((p) => p.published === Number(publicUrl.port)),
      )
      assert.ok(front, `${file}: nothing publishes port ${publicUrl.port}`)
      assert.equal(
        front[0],
        'bffgate',
        `${file}: the service in front must be called bffgate (the IdP's back-channel URI names it)`,
      )
    }
    for (const [name, service] of Object.entries(services)) {
      for (const port of publishedPorts(service))
        assert.equal(port.host, '127.0.0.1', `${file}: ${name} publishes port ${port.published} beyond this machine`)
    }
    for (const name of ['redis', 'api'])
      assert.equal(services[name]!.ports, undefined, `${file}: ${name} must not be published`)
  }
})

test('bffgate waits for a healthy Redis that persists to a volume, and runs read-only without capabilities', () => {
  for (const file of files) {
    const { services, volumes } = compose(file)
    const redis = services.redis!
    assert.ok(redis.healthcheck?.test.join(' ').includes('ping'), `${file}: redis has no health check`)
    assert.ok(redis.command?.join(' ').includes('--appendonly yes'), `${file}: redis persistence is off`)
    const dataVolume = redis.volumes?.find((v) => /:\/data(:rw)?$/.test(v))
    assert.ok(
      dataVolume !== undefined && Object.hasOwn(volumes ?? {}, dataVolume.split(':')[0]!),
      `${file}: redis keeps /data in no named volume`,
    )
    for (const [name, service] of bffgateServices(file)) {
      assert.equal(service.depends_on?.redis?.condition, 'service_healthy', `${file}: ${name}`)
      assert.equal(
        service.depends_on?.idp?.condition,
        'service_healthy',
        `${file}: ${name} starts before the IdP it discovers`,
      )
      assert.equal(service.read_only, true, `${file}: ${name}`)
      assert.deepEqual(service.cap_drop, ['ALL'], `${file}: ${name}`)
      assert.ok(service.security_opt?.includes('no-new-privileges:true'), `${file}: ${name}`)
      assert.match(service.healthcheck?.test.join(' ') ?? '', /\/readyz/, `${file}: ${name}`)
    }
  }
})

test("bffgate runs the runtime image and serves the demo page; the IdP and API run the dev image's scripts", () => {
  const dockerfile = readDockerfile(repoRoot)
  const devCopies = dockerfile.stages
    .find((s) => s.name === 'dev')!
    .instructions.filter((i) => i.keyword === 'COPY')
    .flatMap((i) => parseCopy(i).sources)
  for (const file of files) {
    const { services } = compose(file)
    for (const [name, service] of bffgateServices(file)) {
      assert.equal(service.build?.target, 'runtime', `${file}: ${name}`)
      const staticDir = env(service).BFF_STATIC_DIR
      const mount = service.volumes?.find((v) => v.split(':')[1] === staticDir)
      assert.ok(mount, `${file}: ${name} mounts nothing at BFF_STATIC_DIR`)
      assert.equal(mount.split(':')[0], join(repoRoot, 'dev/demo/public').replace(/\/$/, ''))
      assert.ok(mount.endsWith(':ro'))
    }
    for (const name of ['idp', 'api', 'welcome']) {
      const service = services[name]!
      assert.equal(service.build?.target, 'dev', `${file}: ${name}`)
      const [command, script] = service.command ?? []
      assert.equal(command, 'node', `${file}: ${name}`)
      if (script !== '-e') {
        assert.ok(
          devCopies.some((source) => script!.startsWith(`${source}/`)),
          `${file}: ${name} runs ${script}, which the dev stage does not copy`,
        )
        assert.doesNotThrow(() => readFileSync(join(repoRoot, script!)), `${file}: ${script} does not exist`)
      }
    }
    for (const [name, service] of Object.entries(services)) {
      if (service.build?.target !== undefined)
        assert.ok(
          dockerfile.stages.some((s) => s.name === service.build!.target),
          `${file}: ${name} builds target ${service.build.target}, which the Dockerfile lacks`,
        )
    }
  }
})

test('the welcome service prints the public URL and the test user once bffgate is healthy', () => {
  for (const file of files) {
    const { services } = compose(file)
    const welcome = services.welcome!
    assert.equal(welcome.depends_on?.bffgate?.condition, 'service_healthy')
    const publicUrl = env(bffgateServices(file)[0]![1]).BFF_PUBLIC_URL!
    const message = welcome.command?.join(' ') ?? ''
    assert.ok(message.includes(publicUrl), `${file}: the welcome message does not name ${publicUrl}`)
    assert.match(message, /alice \/ alice-password/)
  }
})

test('the replica file runs two identically configured bffgate replicas behind a load balancer that reaches both', () => {
  const { services } = compose('docker-compose.replicas.yml')
  const replicas = bffgateServices('docker-compose.replicas.yml')
  assert.deepEqual(replicas.map(([name]) => name).sort(), ['bffgate-1', 'bffgate-2'])
  assert.deepEqual(replicas[0]![1], replicas[1]![1], 'the replicas differ: sessions would not work across them')
  const lb = services.bffgate!
  const mount = lb.volumes?.find((v) => v.includes('nginx.conf'))
  assert.ok(mount, 'the load balancer has no configuration mounted')
  const conf = readFileSync(mount.split(':')[0]!, 'utf8')
  const upstream = /upstream\s+\w+\s*\{([^}]*)\}/.exec(conf)?.[1] ?? ''
  const servers = [...upstream.matchAll(/server\s+([\w.-]+):(\d+)/g)].map((m) => `${m[1]}:${m[2]}`).sort()
  assert.deepEqual(servers, replicas.map(([name, s]) => `${name}:${env(s).BFF_PORT ?? '8080'}`).sort())
  assert.doesNotMatch(upstream, /\b(ip_hash|hash|sticky)\b/, 'sticky sessions would hide replica bugs')
  const listen = /listen\s+(\d+)/.exec(conf)?.[1]
  assert.deepEqual(
    publishedPorts(lb).map((p) => p.target),
    [Number(listen)],
  )
  for (const [name] of replicas) assert.equal(lb.depends_on?.[name]?.condition, 'service_healthy')
})

test('redis, idp and api are the same in both compose files', () => {
  const single = compose('docker-compose.yml').services
  const replicas = compose('docker-compose.replicas.yml').services
  for (const name of ['redis', 'idp', 'api'])
    assert.deepEqual(replicas[name], single[name], `${name} differs between the compose files`)
})

test('issue 19: docker-compose.frontends.yml runs two frontends whose clients, secrets and URLs the IdP registers', async () => {
  const command = findDockerCompose()
  const result = await runAsync(command[0]!, [
    ...command.slice(1),
    '-f',
    'docker-compose.yml',
    '-f',
    'docker-compose.frontends.yml',
    'config',
  ])
  assert.equal(result.status, 0, result.stderr)
  const { services } = parseYaml(result.stdout) as ComposeFile
  const bffgate = env(services.bffgate!)
  const idp = env(services.idp!)
  // The mounted folders, read from the repository as the container would see them.
  const mounts = (services.bffgate!.volumes ?? []).map((v) => v.split(':') as [string, string, string?])
  const readFile = (path: string) => {
    const mount = mounts.find(([, target]) => path.startsWith(`${target}/`))
    if (mount === undefined) throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' })
    return readFileSync(join(mount[0], path.slice(mount[1].length)), 'utf8')
  }
  const config = loadConfig(bffgate, { readFile })
  const clients = [
    {
      id: idp.IDP_CLIENT_ID,
      secret: idp.IDP_CLIENT_SECRET,
      method: idp.IDP_CLIENT_AUTH_METHOD,
      redirects: list(idp.IDP_REDIRECT_URIS),
      logouts: list(idp.IDP_POST_LOGOUT_REDIRECT_URIS),
    },
    {
      id: idp.IDP_ADMIN_CLIENT_ID,
      secret: idp.IDP_ADMIN_CLIENT_SECRET,
      method: idp.IDP_ADMIN_CLIENT_AUTH_METHOD,
      redirects: list(idp.IDP_ADMIN_REDIRECT_URIS),
      logouts: list(idp.IDP_ADMIN_POST_LOGOUT_REDIRECT_URIS),
    },
  ]
  assert.deepEqual(
    config.frontends.map((f) => f.name),
    ['demo', 'admin'],
  )
  config.frontends.forEach((frontend, i) => {
    const client = clients[i]!
    assert.equal(frontend.oidc.clientId, client.id, frontend.name)
    assert.equal(frontend.oidc.clientSecret, client.secret, `${frontend.name}: the secret file and the IdP agree`)
    assert.equal(frontend.oidc.tokenEndpointAuthMethod, client.method, frontend.name)
    assert.ok(
      client.redirects.includes(frontend.oidc.redirectUri),
      `${frontend.name}: ${frontend.oidc.redirectUri} is not registered at the IdP`,
    )
    assert.ok(
      client.logouts.includes(frontend.oidc.postLogoutRedirectUri),
      `${frontend.name}: ${frontend.oidc.postLogoutRedirectUri} is not registered at the IdP`,
    )
    assert.equal(frontend.oidc.issuer, idp.IDP_ISSUER)
    assert.equal(new URL(frontend.routes[0]!.upstream).hostname, 'api')
    assert.ok(
      mounts.some(([, target]) => target === frontend.staticDir),
      `${frontend.name}: ${frontend.staticDir} is not mounted`,
    )
  })
  assert.equal(new URL(idp.IDP_ADMIN_BACKCHANNEL_LOGOUT_URI!).hostname, 'bffgate')
  assert.deepEqual(
    loadConfig(bffgate, { readFile }).frontends.map((f) => f.name),
    ['demo', 'admin'],
    'accepted: the request path selects frontends (issue 19)',
  )
})
