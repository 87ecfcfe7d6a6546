/**
 * Summarises a V8 .cpuprofile (from `node --cpu-prof`): the frames with the most self time,
 * and the most inclusive time, so a hot-path change starts from what actually costs.
 * Usage: node bench/top-frames.ts bench/results/prof/gateway.cpuprofile [count] [from-s] [to-s]
 * Shares are of busy samples (idle left out). With from/to (seconds since the profile started),
 * only samples in that window count: the load runs, without start-up or session creation.
 */
import { readFileSync } from 'node:fs'

interface Node {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  hitCount: number
  children?: number[]
}
const profile = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as {
  nodes: Node[]
  samples: number[]
  timeDeltas: number[]
}
const count = Number(process.argv[3] ?? 30)
const [from, to] = [Number(process.argv[4] ?? 0) * 1e6, Number(process.argv[5] ?? Infinity) * 1e6]
const byId = new Map(profile.nodes.map((n) => [n.id, n]))
// Hit counts recounted from the samples in the window.
for (const n of profile.nodes) n.hitCount = 0
let at = 0
profile.samples.forEach((id, i) => {
  at += profile.timeDeltas[i] ?? 0
  if (at >= from && at <= to) byId.get(id)!.hitCount++
})
const total = profile.nodes.reduce((a, n) => a + (n.callFrame.functionName === '(idle)' ? 0 : n.hitCount), 0)
process.stdout.write(`${total} busy samples\n`)
const name = (n: Node) =>
  `${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*\/main\//, '')}:${n.callFrame.lineNumber + 1}`

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
  for (const [k, v] of [...map].sort((a, b) => b[1] - a[1]).slice(0, count))
    process.stdout.write(`${((v / total) * 100).toFixed(1).padStart(5)}%  ${k}\n`)
}
show('self time', self)
show('inclusive time', inclusive)
