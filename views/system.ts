/** llamactl's version, and llama-server's version and devices (asked when the page loads). */
import { duration } from './format'
import { html, type Html } from './html'
import { layout, type PageContext } from './layout'

/** Either the server's answer or why there is none. */
export type Answer = { ok: true; text: string } | { ok: false; error: string }

function answer(a: Answer): Html {
  return a.ok ? html`<pre class="out">${a.text}</pre>` : html`<p class="error">${a.error}</p>`
}

export function llamaServerInfo(version: Answer, devices: Answer): Html {
  return html`<section id="llama-server" class="card" aria-labelledby="ls-title">
  <h2 id="ls-title">llama-server</h2>
  <h3>Version</h3>
  ${answer(version)}
  <h3>Devices</h3>
  ${answer(devices)}
</section>`
}

export interface BackendFound {
  label: string
  command: string
  path: string | null
  docker: string | null
  hint: string
}

export interface SystemFacts {
  uptimeMs: number
  rssBytes: number
  /** Setting and value, as the page shows them. */
  settings: [string, string][]
}

export function systemPage(ctx: PageContext, v: { version: string; backends: BackendFound[]; facts: SystemFacts }): Html {
  const body = html`<div class="page-head"><h1>System</h1></div>
<section class="card" aria-labelledby="lc-title">
  <h2 id="lc-title">llamactl</h2>
  <pre class="out">${v.version}</pre>
  <p>Up ${duration(v.facts.uptimeMs)}, using ${(v.facts.rssBytes / 1024 / 1024).toFixed(0)} MB of memory.</p>
  <table class="list">
    <thead><tr><th scope="col">Setting</th><th scope="col">In effect</th></tr></thead>
    <tbody>${v.facts.settings.map(([k, val]) => html`<tr><td><code>${k}</code></td><td>${val}</td></tr>`)}</tbody>
  </table>
  <p class="muted small">Every setting and where its value came from: <code>llamactl --print-config</code>, or <code>GET /api/v1/config</code>.</p>
</section>
<section class="card" aria-labelledby="be-title">
  <h2 id="be-title">Backends</h2>
  <table class="list">
    <thead><tr><th scope="col">Backend</th><th scope="col">Command</th><th scope="col">Found</th></tr></thead>
    <tbody>${v.backends.map(
      (b) => html`<tr><td>${b.label}</td><td><code>${b.command}</code></td><td>${
        b.docker ? html`in Docker, image <code>${b.docker}</code>` : b.path ? html`<code>${b.path}</code>` : html`<strong>not found</strong> on the PATH: ${b.hint}`
      }</td></tr>`,
    )}</tbody>
  </table>
</section>
<section id="llama-server" class="card" aria-labelledby="ls-title" aria-busy="true"
  hx-get="/ui/system/llama-server" hx-trigger="load" hx-swap="outerHTML">
  <h2 id="ls-title">llama-server</h2>
  <p class="muted">Asking llama-server…</p>
</section>`
  return layout(ctx, { title: 'System', section: 'system', body })
}
