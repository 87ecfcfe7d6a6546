/**
 * The container path, run for real against an engine (Docker, or podman behind its Docker API:
 * scripts/containers/engine.sh): the Dockerfile builds unchanged, `docker-compose up` of each
 * compose file reaches healthy, a person logs in through the stack in Chromium, the runtime
 * image behaves as docs/deploy.md says, and `down -v` leaves nothing behind.
 *
 * Skipped without an engine, except in CI (`CI=true`), where that is a failure. The stacks
 * publish the fixed ports the compose files name (127.0.0.1:8080 and :4000), so the two
 * stacks run one after the other.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import type { Browser, Page } from 'playwright-core'
import { findDockerCompose, repoRoot } from '../../scripts/deploy/tools.ts'
import { launchChromium } from '../browser/chromium.ts'
import {
  compose,
  driveHealthchecks,
  execIn,
  health,
  projectContainers,
  requireEngine,
  runHealthcheck,
  skipWithoutEngine,
  type Engine,
} from '../helpers/containers.ts'

const skip = await skipWithoutEngine()
const APP = 'http://localhost:8080'
const IDP = 'http://idp.localtest.me:4000'
const USER = { username: 'alice', password: 'alice-password', sub: 'user-alice' }
const WAIT_MS = 30_000
const STOP_GRACE_SECONDS = 10 // docker-compose's default stop timeout
/** The container started from the runtime image with its own HEALTHCHECK. */
const IMAGE_CHECK = 'bffgatect-image-healthcheck'
const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as {
  dependencies: Record<string, string>
  devDependencies: Record<string, string>
}

function seconds(since: number): string {
  return `${((Date.now() - since) / 1000).toFixed(1)} s`
}

async function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer()
    server.once('error', () => resolve(false))
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
  })
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  while (Date.now() < deadline) {
    try {
      const value = await probe()
      if (value !== undefined) return value
    } catch (err) {
      last = err
    }
    await new Promise((resolve) => setTimeout(resolve, 1000))
  }
  throw new Error(
    `${what}: not within ${timeoutMs / 1000} s${last === undefined ? '' : ` (${(last as Error).message})`}`,
  )
}

/** One compose stack: build, up until healthy, the journeys, down -v, nothing left. */
function stack(
  file: string,
  project: string,
  journeys: (ctx: {
    engine: () => Engine
    page: () => Promise<Page>
    exec: (service: string, argv: string[]) => ReturnType<typeof execIn>
  }) => void,
): void {
  describe(`${file}, run for real`, { skip, timeout: 900_000 }, () => {
    let engine: Engine
    let stopHealthchecks = () => {}
    let browser: Browser | undefined
    const command = findDockerCompose()
    const run = (args: string[]) => compose(engine, command, project, file, args)
    const log = (message: string) => process.stderr.write(`# ${file}: ${message}\n`)

    before(async () => {
      engine = await requireEngine()
      await run(['down', '-v', '--remove-orphans']) // a stack left over by an interrupted run
      await engine.delete(`/containers/${IMAGE_CHECK}?force=true`)
      for (const port of [8080, 4000])
        assert.ok(await portFree(port), `127.0.0.1:${port} is taken: the compose files publish it`)
      stopHealthchecks = driveHealthchecks(engine, project)
    })

    after(async () => {
      stopHealthchecks()
      await browser?.close()
      await run(['down', '-v', '--remove-orphans'])
    })

    test('the Dockerfile builds unchanged (runtime and dev targets)', { timeout: 900_000 }, async () => {
      const started = Date.now()
      const build = await run(['build'])
      assert.equal(
        build.status,
        0,
        `docker-compose build failed:\n${build.stdout.slice(-4000)}\n${build.stderr.slice(-4000)}`,
      )
      log(`built in ${seconds(started)} on ${engine.name}`)
    })

    test(
      'up reaches healthy: every health check passes, and the welcome service prints the URL and the test user',
      { timeout: 300_000 },
      async () => {
        const started = Date.now()
        const up = await run(['up', '-d'])
        assert.equal(up.status, 0, `docker-compose up failed:\n${up.stdout}\n${up.stderr}`)
        const containers = await until(
          'every container healthy and welcome done',
          async () => {
            const list = await projectContainers(engine, project)
            const states = await Promise.all(
              list.map(async (c) => ({
                service: c.Labels['com.docker.compose.service']!,
                state: c.State,
                health: await health(engine, c.Id),
              })),
            )
            const welcome = states.find((c) => c.service === 'welcome')
            const waiting = states.filter(
              (c) => c !== welcome && (c.state !== 'running' || (c.health !== undefined && c.health !== 'healthy')),
            )
            return waiting.length === 0 && welcome?.state === 'exited' ? { list, states } : undefined
          },
          240_000,
        )
        log(
          `up and healthy in ${seconds(started)}: ${containers.states.map((c) => `${c.service} ${c.state}${c.health === undefined ? '' : ` (${c.health})`}`).join(', ')}`,
        )
        const checked = containers.states
          .filter((c) => c.health === 'healthy')
          .map((c) => c.service)
          .sort()
        const expected =
          file === 'docker-compose.yml'
            ? ['bffgate', 'idp', 'redis']
            : ['bffgate', 'bffgate-1', 'bffgate-2', 'idp', 'redis']
        assert.deepEqual(checked, expected)
        const welcome = await run(['logs', '--no-color', 'welcome'])
        assert.match(
          welcome.stdout,
          /bffgate is ready: open http:\/\/localhost:8080 and log in as alice \/ alice-password/,
        )
        const exit = await engine.get<{ State: { ExitCode: number } }>(
          `/containers/${containers.list.find((c) => c.Labels['com.docker.compose.service'] === 'welcome')!.Id}/json`,
        )
        assert.equal(exit.State.ExitCode, 0)
      },
    )

    journeys({
      engine: () => engine,
      async page() {
        // *.localtest.me is public DNS for 127.0.0.1; machines without outside DNS get the answer here.
        browser ??= await launchChromium(['--host-resolver-rules=MAP idp.localtest.me 127.0.0.1'])
        const context = await browser.newContext()
        context.setDefaultTimeout(WAIT_MS)
        return context.newPage()
      },
      exec: (service, argv) => execIn(engine, command, project, file, service, argv),
    })

    test('down -v removes every container, volume and network of the project', { timeout: 180_000 }, async () => {
      const down = await run(['down', '-v', '--remove-orphans'])
      assert.equal(down.status, 0, down.stderr)
      const filters = encodeURIComponent(JSON.stringify({ label: [`com.docker.compose.project=${project}`] }))
      assert.deepEqual(await projectContainers(engine, project), [])
      const volumes = await engine.get<{ Volumes: Array<{ Name: string }> | null }>('/volumes')
      assert.deepEqual(
        (volumes.Volumes ?? []).map((v) => v.Name).filter((n) => n.startsWith(`${project}_`)),
        [],
      )
      assert.deepEqual(
        (await engine.get<{ Volumes: unknown[] | null }>(`/volumes?filters=${filters}`)).Volumes ?? [],
        [],
      )
      const networks = await engine.get<Array<{ Name: string }>>('/networks')
      assert.deepEqual(
        networks.map((n) => n.Name).filter((n) => n.startsWith(`${project}_`)),
        [],
      )
    })
  })
}

/** Logs in from the demo page's button through the IdP's login page, back on the demo page. */
async function logIn(page: Page): Promise<void> {
  await page.goto(`${APP}/`)
  await page.locator('#anonymous #login').click()
  await page.waitForURL((url) => url.origin === IDP)
  await page.locator('#username').fill(USER.username)
  await page.locator('#password').fill(USER.password)
  await Promise.all([
    page.waitForURL((url) => url.origin === APP && !url.pathname.startsWith('/bff/')),
    page.locator('#login').click(),
  ])
  await page.locator('#signed-in').waitFor()
  assert.equal(await page.locator('#user-sub').textContent(), USER.sub)
}

/** `/bff/user` from inside the page `times` times: statuses and the replica that answered each. */
async function userCalls(page: Page, times: number): Promise<Array<{ status: number; replica: string | null }>> {
  return page.evaluate(async (n) => {
    const out: Array<{ status: number; replica: string | null }> = []
    for (let i = 0; i < n; i++) {
      const res = await fetch('/bff/user', { headers: { 'x-csrf': '1' } })
      out.push({ status: res.status, replica: res.headers.get('x-bffgate-replica') })
    }
    return out
  }, times)
}

stack('docker-compose.yml', 'bffgatect', ({ engine, page, exec }) => {
  test(
    'a login in Chromium through the stack: the demo page, the IdP, an API call, logout',
    { timeout: 180_000 },
    async () => {
      const tab = await page()
      await logIn(tab)
      await tab.locator('#call').click()
      await tab.locator('#calls li[data-status="200"]').waitFor()
      assert.match((await tab.locator('#answer').textContent()) ?? '', /user-alice/)
      await Promise.all([tab.waitForURL(`${APP}/`), tab.locator('#logout').click()])
      await tab.locator('#anonymous').waitFor()
      assert.deepEqual(
        (await userCalls(tab, 1)).map((c) => c.status),
        [401],
      )
    },
  )

  test(
    'the runtime image runs as uid 1000 on a read-only root filesystem, answers its HEALTHCHECK, and carries no dev dependency',
    { timeout: 120_000 },
    async () => {
      const [bffgate] = (await projectContainers(engine(), 'bffgatect')).filter(
        (c) => c.Labels['com.docker.compose.service'] === 'bffgate',
      )
      assert.ok(bffgate)
      const inspect = await engine().get<{
        Image: string
        Config: { User: string; Env: string[] }
        HostConfig: { ReadonlyRootfs: boolean }
      }>(`/containers/${bffgate.Id}/json`)
      assert.equal(inspect.Config.User, '1000:1000')
      assert.equal(inspect.HostConfig.ReadonlyRootfs, true)
      const ids = await exec('bffgate', [
        'node',
        '-e',
        'process.stdout.write(JSON.stringify([process.getuid(), process.getgid()]))',
      ])
      assert.equal(ids.stdout, '[1000,1000]', ids.stderr)
      const write = await exec('bffgate', [
        'node',
        '-e',
        `
      const fs = require('node:fs')
      const tryWrite = (p) => { try { fs.writeFileSync(p, 'x'); return 'written' } catch (e) { return e.code } }
      process.stdout.write(JSON.stringify({ app: tryWrite('/app/x'), root: tryWrite('/x'), tmp: tryWrite('/tmp/x') }))`,
      ])
      assert.deepEqual(JSON.parse(write.stdout), { app: 'EROFS', root: 'EROFS', tmp: 'written' }, write.stderr)

      // The image's own HEALTHCHECK (compose replaces it with its own): a second container from
      // the image, on the stack's network with bffgate's settings, read-only, without capabilities.
      const own = await engine().post<{ Id: string }>(`/containers/create?name=${IMAGE_CHECK}`, {
        Image: inspect.Image,
        Env: inspect.Config.Env,
        HostConfig: { ReadonlyRootfs: true, Tmpfs: { '/tmp': '' }, CapDrop: ['ALL'], NetworkMode: 'bffgatect_default' },
      })
      assert.equal(own.status, 201, JSON.stringify(own.body))
      try {
        assert.equal((await engine().post(`/containers/${own.body.Id}/start`)).status, 204)
        const config = await engine().get<{ Config: { Healthcheck?: { Test: string[] } } }>(
          `/containers/${own.body.Id}/json`,
        )
        const healthcheck = config.Config.Healthcheck?.Test ?? []
        assert.equal(
          healthcheck[0],
          'CMD',
          `the image has no HEALTHCHECK of its own (built in OCI format?): ${JSON.stringify(config.Config.Healthcheck)}`,
        )
        assert.match(healthcheck.join(' '), /\/healthz/)
        const started = Date.now()
        await until(
          "the image's HEALTHCHECK passes",
          async () => ((await runHealthcheck(engine(), own.body.Id)) === 'healthy' ? true : undefined),
          90_000,
        )
        process.stderr.write(
          `# docker-compose.yml: a container of the image, read-only, healthy by its own HEALTHCHECK after ${seconds(started)}\n`,
        )
      } finally {
        await engine().delete(`/containers/${own.body.Id}?force=true`)
      }

      // Every installed package, nested ones included, against the lock file: none of them may be
      // one that only the dev dependencies need (`"dev": true`), and every dependency is there.
      const modules = await exec('bffgate', [
        'node',
        '-e',
        `
      const fs = require('node:fs')
      const walk = (dir) => fs.readdirSync(dir).filter((n) => !n.startsWith('.')).flatMap((n) => n.startsWith('@')
        ? fs.readdirSync(dir + '/' + n).map((m) => dir + '/' + n + '/' + m) : [dir + '/' + n])
        .flatMap((p) => [p, ...(fs.existsSync(p + '/node_modules') ? walk(p + '/node_modules') : [])])
      process.stdout.write(JSON.stringify(walk('node_modules')))`,
      ])
      const installed = JSON.parse(modules.stdout) as string[]
      const lock = JSON.parse(readFileSync(join(repoRoot, 'package-lock.json'), 'utf8')) as {
        packages: Record<string, { dev?: boolean }>
      }
      const devOnly = installed.filter((path) => lock.packages[path]?.dev === true)
      assert.deepEqual(devOnly, [], 'packages only the dev dependencies need are in the runtime image')
      assert.deepEqual(
        installed.filter((path) => lock.packages[path] === undefined),
        [],
        'packages the lock file does not name',
      )
      for (const name of Object.keys(pkg.devDependencies).filter(
        (n) => lock.packages[`node_modules/${n}`]?.dev === true,
      )) {
        assert.ok(!installed.includes(`node_modules/${name}`), `dev dependency ${name} is in the runtime image`)
      }
      for (const name of Object.keys(pkg.dependencies))
        assert.ok(installed.includes(`node_modules/${name}`), `dependency ${name} is missing from the runtime image`)
    },
  )

  test('on SIGTERM bffgate exits 0 within its grace period', { timeout: 120_000 }, async () => {
    const [bffgate] = (await projectContainers(engine(), 'bffgatect')).filter(
      (c) => c.Labels['com.docker.compose.service'] === 'bffgate',
    )
    assert.ok(bffgate)
    const image = await engine().get<{ Config: { StopSignal?: string } }>(
      `/images/${(await engine().get<{ Image: string }>(`/containers/${bffgate.Id}/json`)).Image}/json`,
    )
    assert.equal(image.Config.StopSignal ?? 'SIGTERM', 'SIGTERM')
    const started = Date.now()
    // stop: the image's stop signal, then SIGKILL after the grace period (exit 137 if it came to that).
    const stop = await engine().post(`/containers/${bffgate.Id}/stop?t=${STOP_GRACE_SECONDS}`)
    const took = Date.now() - started
    assert.ok(stop.status === 204 || stop.status === 304, `stop answered ${stop.status}`)
    const state = await engine().get<{ State: { ExitCode: number; Status: string } }>(`/containers/${bffgate.Id}/json`)
    assert.equal(state.State.ExitCode, 0, `exit code ${state.State.ExitCode} after ${took} ms`)
    assert.ok(took < STOP_GRACE_SECONDS * 1000, `took ${took} ms, the grace period is ${STOP_GRACE_SECONDS} s`)
    process.stderr.write(`# docker-compose.yml: bffgate stopped on SIGTERM in ${took} ms, exit 0\n`)
  })
})

stack('docker-compose.replicas.yml', 'bffgatectr', ({ page }) => {
  test(
    'a login through the load balancer; requests reach both replicas; a back-channel logout ends the session on both',
    { timeout: 180_000 },
    async () => {
      const tab = await page()
      await logIn(tab)
      await tab.locator('#call').click()
      await tab.locator('#calls li[data-status="200"]').waitFor()
      const served = await userCalls(tab, 6)
      assert.deepEqual(
        served.map((c) => c.status),
        [200, 200, 200, 200, 200, 200],
      )
      const replicas = new Set(served.map((c) => c.replica))
      assert.equal(replicas.size, 2, `the session was served by ${[...replicas].join(', ')}`)

      // The IdP ends alice's sessions (Auth0's "revoke session") and posts a logout token to bffgate.
      const revoked = await fetch('http://127.0.0.1:4000/__dev/revoke-sessions', {
        method: 'POST',
        body: new URLSearchParams({ sub: USER.sub }),
      })
      assert.equal(revoked.status, 200)
      assert.ok(((await revoked.json()) as { revoked: number }).revoked >= 1)
      const ended = await until(
        'the session ended on both replicas',
        async () => {
          const calls = await userCalls(tab, 6)
          return calls.every((c) => c.status === 401) ? calls : undefined
        },
        30_000,
      )
      assert.equal(new Set(ended.map((c) => c.replica)).size, 2, 'both replicas answered 401')
    },
  )
})
