/**
 * Re-renders a results file as bench/results/latest.{json,md,svg}, and the README's table when
 * it is a complete run's: node bench/render.ts bench/results/<label>.json
 */
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { renderMarkdown, writeResults, type BenchResults } from './report.ts'

const source = process.argv[2]!
const results = JSON.parse(readFileSync(source, 'utf8')) as BenchResults
writeResults(results, dirname(source), join(dirname(source), '..', '..', 'README.md'))
process.stdout.write(renderMarkdown(results))
