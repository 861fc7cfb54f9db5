/**
 * Writes docs/configuration.md from the settings table (src/config/settings.ts).
 * `bun scripts/config-doc.ts --check` fails when the file is out of date (a test runs it).
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { ALIASES, SETTINGS, SETTINGS_BY_KEY } from '../src/config/settings'

export function renderConfigDoc(): string {
  const show = (v: unknown) => (typeof v === 'string' ? (v === '' ? '—' : `\`${v}\``) : `\`${JSON.stringify(v)}\``)
  const status = (use: string | undefined) => (use === 'later' ? '**not used yet:** ' : use === 'inert' ? '**no effect here:** ' : '')
  const rows = SETTINGS.map(
    (s) =>
      `| \`${s.key}\` | ${s.env ? `\`${s.env}\`` : ''}${s.flag ? ` / \`${s.flag}\`` : ''} | ${s.kind.replace('_', ' ')}${s.values ? ` (${s.values.join(', ')})` : ''} | ${show(s.default)} | ${status(s.use)}${s.doc} |`,
  )
  const aliases = ALIASES.map((a) => {
    const name = [a.key && `\`${a.key}\``, a.env && `\`${a.env}\``].filter(Boolean).join(' / ')
    const target = SETTINGS_BY_KEY.get(a.for)!
    return `| ${name} | \`${a.for}\`${target.env ? ` / \`${target.env}\`` : ''} | ${a.deprecated ? 'old spelling: works, and start-up asks you to rename it' : 'also read; the llamactl name wins'} |`
  })
  return `# Configuration reference

<!-- Generated from src/config/settings.ts by \`bun scripts/config-doc.ts\`; do not edit by hand. -->

Order: built-in defaults, then the YAML file, then environment variables, then flags
(\`llamactl --help\` lists them). \`llamactl --print-config\` shows the result, secrets masked, with
where each value came from; \`GET /api/v1/config\` answers the same, masked, for the web UI. Masked:
the keys, \`metrics.key\`, node \`api_key\`s, and inside \`environment\` maps and \`args\` the values of
secret-named variables (\`HF_TOKEN\`) and flags (\`--api-key\`).

The file is the first found of \`--config PATH\`, \`LLAMACTL_CONFIG_PATH\`, \`./llamactl.yaml\`,
\`./config.yaml\`, then \`~/.config/llamactl/config.yaml\` and \`/etc/llamactl/config.yaml\` (macOS:
\`~/Library/Application Support/llamactl/config.yaml\`, \`/Library/Application Support/llamactl/config.yaml\`;
Windows: \`%APPDATA%\\llamactl\\config.yaml\`, \`%PROGRAMDATA%\\llamactl\\config.yaml\`). A file named
explicitly must exist. In YAML, a key \`a.b.c\` is written nested (\`a:\` / \`  b:\` / \`    c: value\`).

**\`.env\`**: before the file is read, the first \`.env\` found beside an explicitly named config
file, in the working directory or in those config folders sets the variables the environment does
not already have (\`NAME=value\` lines; \`#\` comments, \`export \` and one pair of quotes allowed).
Those variables also reach the backends, as llamactl's own environment does.

**\`\${VAR}\` and \`\${VAR:-default}\`** in the file are replaced by the variable (the default when it is
unset or empty) before the YAML is read; \`$VAR\` without braces is text. An unset \`\${VAR}\` without
a default stays as written, and start-up says so — except in a key (\`auth.*_keys\`, \`metrics.key\`,
\`nodes.*.api_key\`), where it stops start-up: the placeholder is never a working key. An empty
entry in a list of keys is no key.

**Paths**: a leading \`~\` is your home folder. \`data_dir\` is taken from the working directory;
the other folders and files from \`data_dir\` unless absolute (\`data_dir/logs\`, as the original's
documentation writes it, is the same as \`logs\`).

A value of the wrong type, a reversed port range or an unknown key stops start-up with one line
naming the key and the file (or the variable); llamactl never falls back to a default silently.
A key marked *not used yet* is checked and kept, and start-up says it has no effect yet when it
is set; one marked *no effect here* is accepted so the original's configs load.

Types in variables: *list* is comma-separated (\`a,b\`), *args* is space-separated, *map* is
\`NAME=value,NAME=value\` (\`;\` between pairs for \`response_headers\`), *int map* is \`name=1,name=2\`,
*port range* is \`8000-9000\` (or \`8000,9000\`; in YAML also \`[8000, 9000]\`), *bool* is
true/false/1/0/yes/no, *duration* is \`90s\`, \`5m\`, \`1h30m\` or a number of seconds.

| key | variable / flag | type | default | meaning |
|---|---|---|---|---|
${rows.join('\n')}

## Remote nodes

One llamactl (the *main node*) can place instances on other llamactl servers (*nodes*), as the
original llamactl does. Each node is an ordinary llamactl; the main node lists them:

\`\`\`yaml
local_node: main                  # this llamactl's name (default main)
nodes:
  main:                           # this llamactl: no address
    address: ""
  worker1:
    address: "http://192.168.1.10:8080"
    api_key: "\${WORKER1_KEY}"      # a management key of worker1
  worker2:
    address: "https://gpu2.example.com"
    api_key: "\${WORKER2_KEY}"
    ca_file: /etc/llamactl/worker2-ca.pem   # else nodes_ca_file, else the system's CAs
\`\`\`

- \`api_key\` must be a **management** key of the node: the main node uses it for the node's
  \`/api/v1\` routes and, as the original does, for its \`/v1\` routes too (a management key is
  an inference key as well). It goes only in the \`Authorization\` header; it is never logged,
  answered (\`GET /api/v1/nodes\` shows the address only; \`/api/v1/config\` masks it) or put in a URL.
  A node that refuses it makes every call a 502 naming the node and \`nodes.<name>.api_key\`.
- A node's own \`local_node\` need not match what the main node calls it: the main node sends its
  creates without \`nodes\`, so the node runs them as its own.
- \`https://\` addresses are checked against \`ca_file\` (per node), else \`nodes_ca_file\`, else the
  system's certificate authorities. llamactl serves plain HTTP itself: put a TLS-terminating proxy
  in front of a node that is reached over an untrusted network.
- Each node is asked for its instances every \`node_health_check_interval\` (its health check,
  bounded by the interval, at least 2 s, and by \`node_request_timeout\`). See
  [api.md](api.md#remote-nodes) for what happens when a node is down.

## Other names

Spellings of the original llamactl's older releases and of other tools, read as the key they name.
When both are set in one file they must agree.

| name | is | |
|---|---|---|
${aliases.join('\n')}
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
