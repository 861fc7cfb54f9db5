/**
 * Version, commit and build time: stamped into the binary by build.ts; from package.json and
 * "dev" when run from source.
 */
import pkg from '../package.json' with { type: 'json' }

declare const LLAMACTL_BUILD: { version: string; commit: string; buildTime: string } | undefined

export const BUILD =
  typeof LLAMACTL_BUILD !== 'undefined' ? LLAMACTL_BUILD : { version: pkg.version, commit: 'dev', buildTime: 'unknown' }

export function versionText(): string {
  return `Version: ${BUILD.version}\nCommit: ${BUILD.commit}\nBuild Time: ${BUILD.buildTime}\n`
}
