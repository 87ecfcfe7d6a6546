import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import { freePort } from './redis.ts'

const serverEntry = new URL('../../src/server.ts', import.meta.url).pathname

/** Another bffgate process (`node src/server.ts`), as a second replica behind a load balancer. */
export interface Replica {
  /** `http://127.0.0.1:<port>` of this process. */
  readonly url: string
  /** `http://127.0.0.1:<port>` of its admin listener (`/metrics`, probes). */
  readonly adminUrl: string
  readonly pid: number
  readonly output: () => string
  /** SIGKILL: a crash, nothing finishes. */
  kill(): Promise<void>
  /** SIGTERM and wait for the exit status. */
  stop(): Promise<number | null>
}

/**
 * Starts `src/server.ts` with `env` on a free port and resolves once it listens; on another
 * port if the chosen one was taken meanwhile.
 */
export async function startReplica(env: Record<string, string>): Promise<Replica> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startReplicaOnce(env)
    } catch (err) {
      if (!String((err as Error).message).includes('EADDRINUSE') || attempt === 5) throw err
    }
  }
}

async function startReplicaOnce(env: Record<string, string>): Promise<Replica> {
  const port = await freePort()
  const adminPort = await freePort()
  const child: ChildProcess = spawn(process.execPath, [serverEntry], {
    env: {
      PATH: process.env.PATH ?? '',
      ...env,
      BFF_PORT: String(port),
      BFF_HOST: '127.0.0.1',
      BFF_ADMIN_PORT: String(adminPort),
      BFF_ADMIN_HOST: '127.0.0.1',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  const exited = once(child, 'exit').then(([code]) => code as number | null)
  child.stdout!.on('data', (chunk: Buffer) => {
    output += chunk.toString()
  })
  child.stderr!.on('data', (chunk: Buffer) => {
    output += chunk.toString()
  })
  let exitCode: number | null | undefined
  exited.then(
    (code) => {
      exitCode = code
    },
    () => {},
  )
  // Ready when /healthz answers (whatever the log level prints).
  const deadline = Date.now() + 15_000
  for (;;) {
    if (exitCode !== undefined) throw new Error(`replica exited with ${exitCode} before listening:\n${output}`)
    if (Date.now() > deadline) throw new Error(`replica did not listen within 15 s:\n${output}`)
    try {
      if (
        (await fetch(`http://127.0.0.1:${port}/healthz`)).ok &&
        (await fetch(`http://127.0.0.1:${adminPort}/healthz`)).ok
      )
        break
    } catch {}
    await sleep(50)
  }
  return {
    url: `http://127.0.0.1:${port}`,
    adminUrl: `http://127.0.0.1:${adminPort}`,
    pid: child.pid!,
    output: () => output,
    async kill() {
      if (child.exitCode === null) child.kill('SIGKILL')
      await exited
    },
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM')
      return exited
    },
  }
}
