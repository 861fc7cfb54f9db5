/** llamactl's version, and llama-server's version and devices (asked when the page loads). */
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

export function systemPage(ctx: PageContext, v: { version: string }): Html {
  const body = html`<div class="page-head"><h1>System</h1></div>
<section class="card" aria-labelledby="lc-title">
  <h2 id="lc-title">llamactl</h2>
  <pre class="out">${v.version}</pre>
</section>
<section id="llama-server" class="card" aria-labelledby="ls-title" aria-busy="true"
  hx-get="/ui/system/llama-server" hx-trigger="load" hx-swap="outerHTML">
  <h2 id="ls-title">llama-server</h2>
  <p class="muted">Asking llama-server…</p>
</section>`
  return layout(ctx, { title: 'System', section: 'system', body })
}
