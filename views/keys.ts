/** Inference keys: make one (its secret shown once, with a copy button), list, revoke. */
import { utc } from './format'
import { html, type Html } from './html'
import { layout, type PageContext } from './layout'

export interface KeyItem {
  id: number
  name: string
  created_at: number
  expires_at: number | null
  instances: string[] | null
}

export interface KeysView {
  keys: KeyItem[]
  /** Instances a new key may be limited to. */
  instanceNames: string[]
  /** The key just made: its secret, shown this once. */
  created?: { name: string; secret: string } | null
  error?: string | null
  csrf: string
  now: number
}

export function keyForm(v: Pick<KeysView, 'instanceNames' | 'csrf'>, oob = false): Html {
  return html`<form id="key-form" class="card" method="post" action="/ui/keys" hx-post="/ui/keys" hx-target="#keys" hx-swap="outerHTML"${oob ? html` hx-swap-oob="true"` : ''}>
  <h2>New key</h2>
  <input type="hidden" name="_csrf" value="${v.csrf}">
  <div class="field">
    <label for="k-name">Name</label>
    <input id="k-name" name="name" required maxlength="100" autocomplete="off" placeholder="my app">
  </div>
  <div class="field">
    <label for="k-days">Expires after (days)</label>
    <input id="k-days" name="expires_days" inputmode="numeric" autocomplete="off" placeholder="empty: never">
  </div>
  ${v.instanceNames.length
    ? html`<fieldset class="checks">
    <legend>Only for these instances <span class="muted small">(none ticked: all)</span></legend>
    ${v.instanceNames.map((n, i) => html`<label><input type="checkbox" name="instances" value="${n}" id="k-inst-${i}"> ${n}</label>`)}
  </fieldset>`
    : ''}
  <button type="submit" class="primary">Create key</button>
</form>`
}

function expiry(k: KeyItem, now: number): Html | string {
  if (k.expires_at === null) return 'never'
  const text = utc(k.expires_at)
  return k.expires_at * 1000 <= now ? html`<span class="error">expired ${text}</span>` : text
}

/** The list, with the message or the new secret above it: what create and revoke answer. */
export function keyList(v: KeysView): Html {
  return html`<section id="keys" aria-label="Keys">
${v.error ? html`<p class="error" role="alert">${v.error}</p>` : ''}
${v.created
    ? html`<div class="secret card" role="status">
  <p><strong>Key “${v.created.name}” created.</strong> Copy it now: it is not shown again.</p>
  <div class="copy-row">
    <input id="new-key" readonly value="${v.created.secret}" aria-label="The new key" spellcheck="false">
    <button type="button" class="primary" data-copy="new-key">Copy</button>
  </div>
</div>`
    : ''}
${v.keys.length === 0
    ? html`<p class="empty">No inference keys yet. Applications can also use a management key.</p>`
    : html`<table class="list">
  <thead><tr><th scope="col">Name</th><th scope="col">Created</th><th scope="col">Expires</th><th scope="col">Instances</th><th scope="col"><span class="vh">Actions</span></th></tr></thead>
  <tbody>
  ${v.keys.map(
    (k) => html`<tr id="key-${k.id}">
    <th scope="row" data-label="Name">${k.name}</th>
    <td data-label="Created">${utc(k.created_at)}</td>
    <td data-label="Expires">${expiry(k, v.now)}</td>
    <td data-label="Instances">${k.instances ? k.instances.join(', ') : 'all'}</td>
    <td class="cell-actions"><div class="actions"><button type="button" class="danger" id="revoke-${k.id}" hx-post="/ui/keys/${k.id}/revoke" hx-target="#keys" hx-swap="outerHTML"
      hx-confirm="Revoke the key ${k.name}? Applications using it stop working at once.">Revoke<span class="vh"> ${k.name}</span></button></div></td>
  </tr>`,
  )}
  </tbody>
</table>`}
</section>`
}

export function keysPage(ctx: PageContext, v: KeysView): Html {
  const body = html`<div class="page-head"><h1>Inference keys</h1></div>
<p class="muted">Applications send a key as <code>Authorization: Bearer …</code> to <code>/v1</code>. Keys are stored as hashes: a lost key cannot be shown again, only revoked and replaced.</p>
<div class="two-col">
${keyForm(v)}
${keyList(v)}
</div>`
  return layout(ctx, { title: 'Inference keys', section: 'keys', body })
}
