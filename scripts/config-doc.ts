/**
 * Writes docs/configuration.md from the settings table (src/config/settings.ts).
 * `bun scripts/config-doc.ts --check` fails when the file is out of date (a test runs it).
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { SETTINGS } from '../src/config/settings'

export function renderConfigDoc(): string {
  const show = (v: unknown) => (typeof v === 'string' ? (v === '' ? '—' : `\`${v}\``) : `\`${JSON.stringify(v)}\``)
  const rows = SETTINGS.map(
    (s) => `| \`${s.key}\` | ${s.env ? `\`${s.env}\`` : ''}${s.flag ? ` / \`${s.flag}\`` : ''} | ${s.kind.replace('_', ' ')} | ${show(s.default)} | ${s.doc} |`,
  )
  return `# Configuration reference

<!-- Generated from src/config/settings.ts by \`bun scripts/config-doc.ts\`; do not edit by hand. -->

Order: built-in defaults, then the YAML file, then environment variables, then flags. The file is
the first found of \`--config PATH\`, \`LLAMACTL_CONFIG_PATH\`, \`./llamactl.yaml\`,
\`~/.config/llamactl/config.yaml\`, \`/etc/llamactl/config.yaml\`. In YAML, a key \`a.b.c\` is
written nested (\`a:\` / \`  b:\` / \`    c: value\`).

A value of the wrong type, a reversed port range or an unknown key stops start-up with one line
naming the key and the file (or the variable); llamactl never falls back to a default silently.

Types in variables: *list* is comma-separated (\`a,b\`), *args* is space-separated, *map* is
\`NAME=value,NAME=value\` (\`;\` between pairs for \`response_headers\`), *port range* is
\`8000-9000\` (or \`8000,9000\`; in YAML also \`[8000, 9000]\`), *bool* is true/false/1/0/yes/no.

| key | variable / flag | type | default | meaning |
|---|---|---|---|---|
${rows.join('\n')}
`
}

if (import.meta.main) {
  const path = resolve(import.meta.dir, '../docs/configuration.md')
  const text = renderConfigDoc()
  if (process.argv.includes('--check')) {
    if (readFileSync(path, 'utf8') !== text) {
      console.error('docs/configuration.md is out of date: run `bun scripts/config-doc.ts`')
      process.exit(1)
    }
  } else {
    writeFileSync(path, text)
  }
}
