/**
 * The model library on the Models page: every GGUF file llamactl can see, its header, the
 * memory estimate for the settings at the top, and "New instance" prefilled with the model.
 * It is a section of the Models page (views/models.ts), after the downloads and the cache.
 */
import { html, type Html } from './html'

export interface LibraryRow {
  id: string
  path: string
  file: string
  root: string
  mmproj: boolean
  parts: number | null
  header: {
    architecture: string
    parameters: number
    quantization: string
    context_length: number | null
    layers: number
    chat_template: boolean
    file_size: number
  } | null
  error: string | null
  estimate: { cpu: number; gpu: number; total: number; ctx_size: number } | null
  /** Why it would not fit, else null. */
  over: string | null
}

export interface LibraryView {
  roots: string[]
  rows: LibraryRow[]
  settings: { ctx_size: string; parallel: string; gpu_layers: string }
  /** What is available, in words ("RAM 12.3 GiB free, no GPU"). */
  available: string
}

export function size(bytes: number): string {
  if (bytes >= 1024 ** 3) return `${(bytes / 1024 ** 3).toFixed(1)} GiB`
  if (bytes >= 1024 ** 2) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`
  return `${Math.max(0, Math.round(bytes / 1024))} KiB`
}

function count(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)} B`
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} M`
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} K`
  return String(n)
}

/** The create form's address, filled with the model and the settings its estimate was made for. */
export function newInstanceHref(r: LibraryRow, s: LibraryView['settings']): string {
  const q = new URLSearchParams({ model: r.path })
  const base = r.file.replace(/(-\d{5}-of-\d{5})?\.gguf$/i, '').replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 64)
  if (base) q.set('name', base)
  for (const k of ['ctx_size', 'gpu_layers', 'parallel'] as const) if (s[k]) q.set(k, s[k])
  return `/ui/instances/new?${q}`
}

function row(r: LibraryRow, s: LibraryView['settings']): Html {
  const h = r.header
  return html`<tr id="model-${r.id}" class="model">
  <th scope="row" data-label="Model"><span class="model-file" title="${r.path}">${r.file}</span><br><span class="muted small">${h ? h.architecture : ''}${r.parts ? ` · ${r.parts} files` : ''}${r.mmproj ? ' · projector' : ''}</span></th>
  ${h
    ? html`<td data-label="Parameters">${count(h.parameters)}</td>
  <td data-label="Quantization">${h.quantization}</td>
  <td data-label="Context">${h.context_length ?? '—'}</td>
  <td data-label="Layers">${h.layers}</td>
  <td data-label="Chat template">${h.chat_template ? 'yes' : 'no'}</td>
  <td data-label="Size" class="nowrap">${size(h.file_size)}</td>
  <td data-label="Estimate">${r.estimate
      ? html`<span class="${r.over ? 'error' : ''}">${size(r.estimate.total)}</span> <span class="muted small">${r.estimate.gpu ? `${size(r.estimate.cpu)} RAM + ${size(r.estimate.gpu)} GPU` : 'RAM'}, ${r.estimate.ctx_size} ctx</span>${r.over ? html`<br><span class="error small">does not fit: ${r.over}</span>` : ''}`
      : '—'}</td>`
    : html`<td colspan="7" class="error small">${r.error ?? 'unreadable'}</td>`}
  <td class="cell-actions"><div class="actions">
    ${h && !r.mmproj ? html`<a class="button" id="new-from-${r.id}" href="${newInstanceHref(r, s)}">New instance<span class="vh"> from ${r.file}</span></a>` : ''}
  </div></td>
</tr>`
}

/** `error`: a setting of the address that was not a number, said above the settings. */
export function librarySection(v: LibraryView, error: string | null = null): Html {
  const s = v.settings
  return html`<section id="library" class="library" aria-labelledby="library-title">
<h2 id="library-title">Library</h2>
<p class="muted small">GGUF files under ${v.roots.map((r, i) => html`${i ? ', ' : ''}<code>${r}</code>`)}. ${v.available}</p>
${error ? html`<p class="error" role="alert">${error}</p>` : ''}
<form class="estimate-settings" method="get" action="/ui/models#library">
  <div class="field"><label for="est-ctx">Context size</label><input id="est-ctx" name="ctx_size" inputmode="numeric" value="${s.ctx_size}" placeholder="the model's"></div>
  <div class="field"><label for="est-parallel">Parallel slots</label><input id="est-parallel" name="parallel" inputmode="numeric" value="${s.parallel}" placeholder="auto (4)"></div>
  <div class="field"><label for="est-gpu">GPU layers</label><input id="est-gpu" name="gpu_layers" inputmode="numeric" value="${s.gpu_layers}" placeholder="all with a GPU"></div>
  <button type="submit">Estimate</button>
</form>
${v.rows.length === 0
    ? html`<p class="empty">No GGUF files found. Put models in the cache or add folders to <code>models_dirs</code>.</p>`
    : html`<div class="table-scroll"><table class="list">
  <thead><tr><th scope="col">Model</th><th scope="col">Parameters</th><th scope="col">Quantization</th><th scope="col">Context</th><th scope="col">Layers</th><th scope="col">Chat template</th><th scope="col">Size</th><th scope="col">Memory estimate</th><th scope="col"><span class="vh">Actions</span></th></tr></thead>
  <tbody>
${v.rows.map((r) => row(r, s))}
  </tbody>
</table></div>`}
</section>`
}
