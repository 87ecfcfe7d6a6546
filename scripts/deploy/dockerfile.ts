/**
 * Reads the Dockerfile and .dockerignore the way Docker does, so that tests can check the
 * images without a Docker engine: which files reach the build context, what each stage
 * copies, and a rehearsal of a stage's file system in a temporary folder.
 */
import { execFileSync } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync } from 'node:fs'
import { dirname, join, posix } from 'node:path'

export interface Instruction {
  /** Upper-cased, e.g. `COPY`. */
  readonly keyword: string
  /** Everything after the keyword, continuation lines joined. */
  readonly args: string
  readonly line: number
}

export interface Stage {
  readonly name: string | undefined
  /** The image or stage it starts from, with `${ARG}`s substituted. */
  readonly base: string
  readonly instructions: Instruction[]
}

export interface Dockerfile {
  /** Parser directives (`# syntax=...`) by lower-cased name. */
  readonly directives: Readonly<Record<string, string>>
  /** ARGs declared before the first FROM, with their defaults. */
  readonly globalArgs: Readonly<Record<string, string>>
  readonly stages: Stage[]
}

/** Parses a Dockerfile (shell-form and JSON-form instructions, `\` continuations, comments). */
export function parseDockerfile(text: string): Dockerfile {
  const directives: Record<string, string> = {}
  const globalArgs: Record<string, string> = {}
  const stages: Stage[] = []
  const lines = text.split('\n')
  let inHeader = true
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!
    const directive = /^#\s*([a-zA-Z]+)\s*=\s*(.+)$/.exec(raw)
    if (inHeader && directive) {
      directives[directive[1]!.toLowerCase()] = directive[2]!.trim()
      continue
    }
    inHeader = false
    if (/^\s*(#|$)/.test(raw)) continue
    const start = i
    let logical = raw
    while (/\\\s*$/.test(logical) && i + 1 < lines.length) {
      logical = logical.replace(/\\\s*$/, ' ')
      i++
      if (/^\s*#/.test(lines[i]!)) continue // comment lines inside a continuation are dropped
      logical += lines[i]!
    }
    const match = /^\s*([A-Za-z]+)\s+([\s\S]*)$/.exec(logical)
    if (!match) throw new Error(`Dockerfile line ${start + 1}: cannot parse "${raw}"`)
    const keyword = match[1]!.toUpperCase()
    const args = match[2]!.replace(/\s+/g, ' ').trim()
    if (keyword === 'FROM') {
      const from = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args)
      if (!from) throw new Error(`Dockerfile line ${start + 1}: cannot parse FROM ${args}`)
      const base = from[1]!.replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a?: string, b?: string) => globalArgs[(a ?? b)!] ?? '')
      stages.push({ name: from[2]?.toLowerCase(), base, instructions: [] })
    } else if (stages.length === 0) {
      if (keyword !== 'ARG') throw new Error(`Dockerfile line ${start + 1}: only ARG may come before the first FROM`)
      const [name, value = ''] = args.split('=', 2)
      globalArgs[name!] = value
    } else {
      stages.at(-1)!.instructions.push({ keyword, args, line: start + 1 })
    }
  }
  return { directives, globalArgs, stages }
}

/** The stage of that name; throws when there is none. */
export function stage(dockerfile: Dockerfile, name: string): Stage {
  const found = dockerfile.stages.find((s) => s.name === name)
  if (!found) throw new Error(`the Dockerfile has no stage "${name}"`)
  return found
}

/** A stage and the stages it starts from, the first stage first. */
export function stageChain(dockerfile: Dockerfile, name: string): Stage[] {
  const chain: Stage[] = []
  for (
    let current: Stage | undefined = stage(dockerfile, name);
    current;
    current = dockerfile.stages.find((s) => s.name === current!.base)
  ) {
    chain.unshift(current)
  }
  return chain
}

/** Splits a JSON-form (`["a", "b"]`) or shell-form argument list. */
export function words(args: string): string[] {
  if (args.startsWith('[')) return JSON.parse(args) as string[]
  return args.split(' ').filter(Boolean)
}

export interface Copy {
  readonly from: string | undefined
  readonly sources: string[]
  readonly dest: string
}

/** Reads a COPY instruction's `--from`, sources and destination (other flags are ignored). */
export function parseCopy(instruction: Instruction): Copy {
  const parts = words(instruction.args)
  const from = parts.find((p) => p.startsWith('--from='))?.slice('--from='.length)
  const paths = parts.filter((p) => !p.startsWith('--'))
  if (paths.length < 2) throw new Error(`COPY at line ${instruction.line} needs a source and a destination`)
  return { from, sources: paths.slice(0, -1), dest: paths.at(-1)! }
}

/** The command of a RUN instruction without its `--mount`/`--network` flags. */
export function runCommand(instruction: Instruction): string {
  return instruction.args.replace(/^(--\S+\s+)+/, '')
}

/** The value of the last `WORKDIR` along a chain of stages. */
export function workdir(chain: Stage[]): string {
  let dir = '/'
  for (const s of chain) for (const i of s.instructions) if (i.keyword === 'WORKDIR') dir = posix.resolve(dir, i.args)
  return dir
}

// ---------------------------------------------------------------- .dockerignore

interface IgnorePattern {
  readonly regex: RegExp
  readonly exclusion: boolean
  readonly text: string
}

/** Compiles one pattern the way moby's patternmatcher does (`**`, `*`, `?`, classes). */
function compilePattern(pattern: string): RegExp {
  let re = '^'
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]!
    if (ch === '*') {
      if (pattern[i + 1] === '*') {
        i++
        if (pattern[i + 1] === '/') i++
        re += i + 1 >= pattern.length ? '.*' : '(.*/)?'
      } else {
        re += '[^/]*'
      }
    } else if (ch === '?') {
      re += '[^/]'
    } else if (ch === '\\' && i + 1 < pattern.length) {
      re += `\\${pattern[++i]}`
    } else if (ch === '[' || ch === ']') {
      re += ch
    } else {
      re += ch.replace(/[.+^${}()|\\]/g, '\\$&')
    }
  }
  return new RegExp(`${re}$`)
}

/** Parses .dockerignore: comments, `!` exceptions, patterns cleaned like `filepath.Clean`. */
export function parseDockerignore(text: string): IgnorePattern[] {
  const patterns: IgnorePattern[] = []
  for (const rawLine of text.split('\n')) {
    let line = rawLine.trim()
    if (line === '' || line.startsWith('#')) continue
    const exclusion = line.startsWith('!')
    if (exclusion) line = line.slice(1).trim()
    const cleaned = posix.normalize(line).replace(/^\/+/, '').replace(/\/+$/, '')
    if (cleaned === '' || cleaned === '.') continue
    patterns.push({ regex: compilePattern(cleaned), exclusion, text: cleaned })
  }
  return patterns
}

/** Whether Docker leaves this context-relative path (`a/b/c`) out of the build context. */
export function isIgnored(patterns: readonly IgnorePattern[], path: string): boolean {
  const parents = path.split('/').slice(0, -1)
  let matched = false
  for (const pattern of patterns) {
    if (pattern.exclusion !== matched) continue
    let match = pattern.regex.test(path)
    for (let i = 0; !match && i < parents.length; i++) match = pattern.regex.test(parents.slice(0, i + 1).join('/'))
    if (match) matched = !pattern.exclusion
  }
  return matched
}

/** Every file of the build context, as context-relative paths with `/`. */
export function buildContextFiles(contextDir: string, patterns: readonly IgnorePattern[]): string[] {
  const files: string[] = []
  const exceptions = patterns.filter((p) => p.exclusion).map((p) => p.text)
  const walk = (relative: string) => {
    for (const entry of readdirSync(join(contextDir, relative), { withFileTypes: true })) {
      const path = relative === '' ? entry.name : `${relative}/${entry.name}`
      if (entry.isDirectory()) {
        // Like Docker: an ignored folder is skipped unless an exception may re-include something in it.
        if (isIgnored(patterns, path) && !exceptions.some((e) => e.startsWith(`${path}/`))) continue
        walk(path)
      } else if (!isIgnored(patterns, path)) {
        files.push(path)
      }
    }
  }
  walk('')
  return files.sort()
}

// ---------------------------------------------------------------- rehearsal

export interface RehearsalOptions {
  readonly contextDir: string
  readonly contextFiles: readonly string[]
  /** Stands in for the stage's `npm install`: symlinked as `node_modules`. */
  readonly nodeModules: string
  /** Folders of stages rehearsed before, for `COPY --from`. */
  readonly stageDirs: ReadonlyMap<string, string>
}

/**
 * Rebuilds a stage's WORKDIR in `into`: applies the COPY instructions of the stage and of the
 * stages it starts from, links `node_modules` where a stage runs `npm install`/`npm ci`, and
 * runs every other RUN command with `sh -c` there. Only paths under WORKDIR are modelled.
 */
export function rehearseStage(dockerfile: Dockerfile, name: string, into: string, options: RehearsalOptions): void {
  const chain = stageChain(dockerfile, name)
  const appDir = workdir(chain)
  const local = (absolute: string) => {
    const relative = posix.relative(appDir, posix.resolve(appDir, absolute))
    if (relative.startsWith('..')) throw new Error(`rehearsal models only paths under ${appDir}, not ${absolute}`)
    return join(into, relative)
  }
  mkdirSync(into, { recursive: true })
  for (const s of chain) {
    for (const instruction of s.instructions) {
      if (instruction.keyword === 'COPY') {
        const copy = parseCopy(instruction)
        for (const source of copy.sources) {
          const target =
            copy.sources.length > 1 || copy.dest.endsWith('/')
              ? join(local(copy.dest), posix.basename(source))
              : local(copy.dest)
          if (copy.from === undefined) {
            const inContext = options.contextFiles.filter((f) => f === source || f.startsWith(`${source}/`))
            if (inContext.length === 0)
              throw new Error(`COPY ${source} (line ${instruction.line}): nothing in the build context matches`)
            for (const file of inContext) {
              const destination = file === source ? target : join(target, file.slice(source.length + 1))
              mkdirSync(dirname(destination), { recursive: true })
              cpSync(join(options.contextDir, file), destination)
            }
          } else {
            const fromDir = options.stageDirs.get(copy.from)
            const relative = posix.relative(workdir(stageChain(dockerfile, copy.from)), source)
            if (relative === 'node_modules') {
              mkdirSync(dirname(target), { recursive: true })
              if (!existsSync(target)) symlinkSync(options.nodeModules, target, 'dir')
            } else {
              if (fromDir === undefined) throw new Error(`COPY --from=${copy.from}: rehearse stage ${copy.from} first`)
              const origin = join(fromDir, relative)
              if (!existsSync(origin))
                throw new Error(
                  `COPY --from=${copy.from} ${source} (line ${instruction.line}): stage ${copy.from} has no ${source}`,
                )
              cpSync(origin, target, { recursive: statSync(origin).isDirectory() })
            }
          }
        }
      } else if (instruction.keyword === 'RUN') {
        const command = runCommand(instruction)
        if (/^npm (ci|install)\b/.test(command)) {
          const link = join(into, 'node_modules')
          if (!existsSync(link)) symlinkSync(options.nodeModules, link, 'dir')
        } else {
          execFileSync('sh', ['-c', command], { cwd: into, stdio: 'pipe' })
        }
      }
    }
  }
}

/** Every file under a folder, relative, sorted. */
export function listFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => posix.relative(dir, join(e.parentPath, e.name)).split('\\').join('/'))
    .sort()
}

/** The Dockerfile of the repository. */
export function readDockerfile(repoRoot: string): Dockerfile {
  return parseDockerfile(readFileSync(join(repoRoot, 'Dockerfile'), 'utf8'))
}
