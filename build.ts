/**
 * Builds the single binary: `npm run build` writes dist/llamactl for this machine.
 * Version (package.json), commit and build time are stamped in; `--version` and
 * GET /api/v1/version show them.
 */
import pkg from './package.json' with { type: 'json' }

const commit = (() => {
  const r = Bun.spawnSync(['git', 'rev-parse', '--short', 'HEAD'], { stdout: 'pipe', stderr: 'ignore' })
  return r.exitCode === 0 ? r.stdout.toString().trim() : 'unknown'
})()
const build = { version: pkg.version, commit, buildTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z') }

const outfile = process.argv.includes('--outfile') ? process.argv[process.argv.indexOf('--outfile') + 1]! : 'dist/llamactl'
const argv = [
  process.execPath,
  'build',
  '--compile',
  '--minify',
  '--sourcemap=none',
  `--define`,
  `LLAMACTL_BUILD=${JSON.stringify(build)}`,
  'src/main.ts',
  '--outfile',
  outfile,
]
const r = Bun.spawnSync(argv, { stdout: 'inherit', stderr: 'inherit' })
if (r.exitCode !== 0) process.exit(r.exitCode ?? 1)
console.log(`built ${outfile} (${build.version}, commit ${build.commit})`)
