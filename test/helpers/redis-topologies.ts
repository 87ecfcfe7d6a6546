import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
import { Redis } from 'ioredis'
import { freePort, waitForRedis } from './redis.ts'

const run = promisify(execFile)
const binary = () => process.env.REDIS_SERVER_BIN ?? 'redis-server'

/** One `redis-server` process of a topology, stopped by its PID. */
interface Node {
  readonly port: number
  readonly child: ChildProcess
}

async function spawnNode(args: string[], port: number): Promise<Node> {
  const child = spawn(binary(), args, { stdio: ['ignore', 'ignore', 'pipe'] })
  const failed = new Promise<never>((_, reject) => {
    child.once('error', reject)
    child.once('exit', (code) => reject(new Error(`redis-server on port ${port} exited with ${code}`)))
  })
  failed.catch(() => {})
  await Promise.race([failed, waitForRedis(port)])
  return { port, child }
}

async function killNode(node: Node, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (node.child.exitCode !== null || node.child.signalCode !== null) return
  const exited = new Promise((resolve) => node.child.once('exit', resolve))
  node.child.kill(signal)
  await exited
}

/** Polls `check` until it is true, or fails naming `what`. */
async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    try {
      if (await check()) return
    } catch {}
    await sleep(100)
  }
  throw new Error(`timed out waiting for ${what}`)
}

async function command(port: number, ...args: Array<string | number>): Promise<unknown> {
  const client = new Redis(port, '127.0.0.1', { maxRetriesPerRequest: 0, retryStrategy: () => null, lazyConnect: true })
  client.on('error', () => {})
  try {
    await client.connect()
    return await client.call(String(args[0]), ...args.slice(1).map(String))
  } finally {
    client.disconnect()
  }
}

const baseArgs = (port: number, dir: string) => [
  '--port',
  String(port),
  '--bind',
  '127.0.0.1',
  '--dir',
  dir,
  '--save',
  '',
  '--appendonly',
  'no',
]

/** A three-master Redis Cluster (no replicas) on loopback. */
export interface TestRedisCluster {
  /** `host:port` seeds, as `BFF_REDIS_CLUSTER_NODES` takes them. */
  readonly nodes: string
  readonly ports: readonly number[]
  stop(): Promise<void>
}

/** Starts three `redis-server --cluster-enabled yes` and joins them with `redis-cli --cluster create`. */
export async function startRedisCluster(): Promise<TestRedisCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'bff-cluster-'))
  const ports = [await freePort(), await freePort(), await freePort()]
  const nodes: Node[] = []
  const stop = async () => {
    await Promise.all(nodes.map((n) => killNode(n)))
    rmSync(dir, { recursive: true, force: true })
  }
  try {
    for (const port of ports) {
      nodes.push(
        await spawnNode(
          [
            ...baseArgs(port, dir),
            '--cluster-enabled',
            'yes',
            '--cluster-config-file',
            `nodes-${port}.conf`,
            '--cluster-node-timeout',
            '2000',
          ],
          port,
        ),
      )
    }
    await run('redis-cli', [
      '--cluster',
      'create',
      ...ports.map((p) => `127.0.0.1:${p}`),
      '--cluster-replicas',
      '0',
      '--cluster-yes',
    ])
    for (const port of ports) {
      await waitUntil(`cluster_state:ok on ${port}`, async () =>
        String(await command(port, 'CLUSTER', 'INFO')).includes('cluster_state:ok'),
      )
    }
  } catch (err) {
    await stop()
    throw err
  }
  return { nodes: ports.map((p) => `127.0.0.1:${p}`).join(','), ports, stop }
}

/** A master, one replica and three sentinels monitoring them as `mymaster`. */
export interface TestRedisSentinel {
  readonly masterName: string
  /** `host:port` list, as `BFF_REDIS_SENTINELS` takes it. */
  readonly sentinels: string
  /** Port of the current master, as the sentinels see it. */
  masterPort(): Promise<number>
  /** `SENTINEL FAILOVER` and waits until the sentinels name the new master. Returns its port. */
  failover(): Promise<number>
  /** A direct client of the current master (closed by `stop()`). */
  master(): Promise<Redis>
  stop(): Promise<void>
}

export async function startRedisSentinel(): Promise<TestRedisSentinel> {
  const masterName = 'mymaster'
  const dir = mkdtempSync(join(tmpdir(), 'bff-sentinel-'))
  const nodes: Node[] = []
  const clients: Redis[] = []
  const stop = async () => {
    for (const c of clients) c.disconnect()
    await Promise.all(nodes.map((n) => killNode(n)))
    rmSync(dir, { recursive: true, force: true })
  }
  const sentinelPorts: number[] = []
  const masterPort = async () => {
    const addr = (await command(sentinelPorts[0]!, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', masterName)) as
      | [string, string]
      | null
    if (addr === null) throw new Error('no master known')
    return Number(addr[1])
  }
  try {
    const primary = await freePort()
    const replica = await freePort()
    nodes.push(await spawnNode(baseArgs(primary, dir), primary))
    nodes.push(await spawnNode([...baseArgs(replica, dir), '--replicaof', '127.0.0.1', String(primary)], replica))
    await waitUntil('the replica to sync', async () =>
      String(await command(replica, 'INFO', 'replication')).includes('master_link_status:up'),
    )
    for (let i = 0; i < 3; i++) {
      const port = await freePort()
      const file = join(dir, `sentinel-${port}.conf`)
      // Sentinels rewrite their own configuration file, so each gets a writable one.
      writeFileSync(
        file,
        [
          `port ${port}`,
          'bind 127.0.0.1',
          `dir ${dir}`,
          `sentinel monitor ${masterName} 127.0.0.1 ${primary} 2`,
          `sentinel down-after-milliseconds ${masterName} 1000`,
          `sentinel failover-timeout ${masterName} 4000`,
          `sentinel parallel-syncs ${masterName} 1`,
          '',
        ].join('\n'),
      )
      nodes.push(await spawnNode([file, '--sentinel'], port))
      sentinelPorts.push(port)
    }
    for (const port of sentinelPorts) {
      await waitUntil(`sentinel ${port} to see the replica and the other sentinels`, async () => {
        const replicas = (await command(port, 'SENTINEL', 'REPLICAS', masterName)) as string[][]
        const master = (await command(port, 'SENTINEL', 'MASTER', masterName)) as string[]
        const field = (name: string) => master[master.indexOf(name) + 1]
        return replicas.length === 1 && Number(field('num-other-sentinels')) === 2
      })
    }
  } catch (err) {
    await stop()
    throw err
  }

  return {
    masterName,
    sentinels: sentinelPorts.map((p) => `127.0.0.1:${p}`).join(','),
    masterPort,
    async failover() {
      const before = await masterPort()
      await command(sentinelPorts[0]!, 'SENTINEL', 'FAILOVER', masterName)
      await waitUntil('the sentinels to promote the replica', async () => (await masterPort()) !== before)
      const after = await masterPort()
      await waitUntil('the new master to accept writes', async () =>
        String(await command(after, 'INFO', 'replication')).includes('role:master'),
      )
      return after
    },
    async master() {
      const client = new Redis(await masterPort(), '127.0.0.1', { maxRetriesPerRequest: 1 })
      clients.push(client)
      return client
    },
    stop,
  }
}
