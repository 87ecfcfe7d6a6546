/**
 * Re-renders a results file as bench/results/latest.{json,md,svg} and the README's results:
 * node bench/render.ts bench/results/<label>.json
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { renderChart, renderMarkdown, withResultsInReadme, type BenchResults } from './report.ts'

const source = process.argv[2]!
const results = JSON.parse(readFileSync(source, 'utf8')) as BenchResults
const dir = dirname(source)
writeFileSync(join(dir, 'latest.json'), JSON.stringify(results, null, 2))
writeFileSync(join(dir, 'latest.md'), renderMarkdown(results))
writeFileSync(join(dir, 'latest.svg'), renderChart(results))
const readme = join(dir, '..', '..', 'README.md')
writeFileSync(readme, withResultsInReadme(readFileSync(readme, 'utf8'), results))
process.stdout.write(renderMarkdown(results))
