/**
 * Summarises a V8 .cpuprofile (from `node --cpu-prof`): the frames with the most self time,
 * and the most inclusive time, so a hot-path change starts from what actually costs.
 * Usage: node bench/top-frames.ts bench/results/prof/gateway.cpuprofile [count]
 */
import { readFileSync } from 'node:fs'

interface Node { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount: number; children?: number[] }
const profile = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as { nodes: Node[] }
const count = Number(process.argv[3] ?? 30)
const byId = new Map(profile.nodes.map((n) => [n.id, n]))
const total = profile.nodes.reduce((a, n) => a + n.hitCount, 0)
const name = (n: Node) => `${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*\/main\//, '')}:${n.callFrame.lineNumber + 1}`

const self = new Map<string, number>()
for (const n of profile.nodes) self.set(name(n), (self.get(name(n)) ?? 0) + n.hitCount)
const inclusive = new Map<string, number>()
const walk = (n: Node, stack: Set<string>): number => {
  let hits = n.hitCount
  for (const c of n.children ?? []) hits += walk(byId.get(c)!, new Set([...stack, name(n)]))
  // Count a frame once per stack even when recursive.
  if (!stack.has(name(n))) inclusive.set(name(n), (inclusive.get(name(n)) ?? 0) + hits)
  return hits
}
walk(profile.nodes[0]!, new Set())
const show = (title: string, map: Map<string, number>) => {
  process.stdout.write(`\n${title}\n`)
  for (const [k, v] of [...map].sort((a, b) => b[1] - a[1]).slice(0, count)) process.stdout.write(`${((v / total) * 100).toFixed(1).padStart(5)}%  ${k}\n`)
}
show('self time', self)
show('inclusive time', inclusive)
