/**
 * Models: download one from the Hugging Face hub (with a live progress bar, fed by server-sent
 * events from /ui/models/events, see page.js), the jobs, and the models in the cache.
 */
import { html, type Html } from './html'
import { layout, type PageContext } from './layout'
import type { CachedModel } from '../src/models/cache'
import type { JobView } from '../src/models/jobs'

export interface ModelsView {
  jobs: JobView[]
  models: CachedModel[]
  cacheDir: string
  csrf: string
  error?: string | null
  flash?: string | null
}

export function size(n: number): string {
  if (n < 1024) return `${n} B`
  const units = ['KiB', 'MiB', 'GiB', 'TiB']
  let v = n / 1024
  let i = 0
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024
    i++
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`
}

function duration(s: number | null): string {
  if (s === null) return '—'
  if (s < 60) return `${s} s`
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`
}

/** The text under a job's bar; page.js writes the same from each event. */
export function jobLine(j: JobView): string {
  const p = j.progress
  if (j.status === 'failed') return j.error ?? 'failed'
  if (j.status === 'cancelled') return 'cancelled'
  if (j.status === 'completed') return `done: ${size(p.total_bytes)} in ${p.files_total} file${p.files_total === 1 ? '' : 's'}`
  if (j.status === 'queued' || p.total_bytes === 0) return 'looking the repo up…'
  return `${size(p.bytes_downloaded)} of ${size(p.total_bytes)} · ${p.current_file || '…'} · ${size(p.speed_bytes_per_second)}/s · ${duration(p.remaining_seconds)} left`
}

function job(j: JobView, csrf: string): Html {
  const running = j.status === 'queued' || j.status === 'downloading'
  const value = j.progress.total_bytes ? Math.floor((j.progress.bytes_downloaded / j.progress.total_bytes) * 1000) : 0
  return html`<li class="job" data-job="${j.id}" data-status="${j.status}">
  <div class="job-head"><strong>${j.repo}${j.tag && j.tag !== 'main' ? `:${j.tag}` : ''}</strong> <span class="muted small">${j.format}</span>
    <span class="badge s-${j.status}" data-job-status>${j.status}</span>
    ${running
      ? html`<form class="inline" method="post" action="/ui/models/jobs/${j.id}/cancel" hx-post="/ui/models/jobs/${j.id}/cancel" hx-target="#jobs" hx-swap="outerHTML">
      <input type="hidden" name="_csrf" value="${csrf}"><button type="submit" class="link">Cancel</button></form>`
      : ''}
  </div>
  <progress max="1000" value="${value}" aria-label="${j.repo} download progress" data-job-bar></progress>
  <p class="small${j.status === 'failed' ? ' error' : ' muted'}" data-job-text>${jobLine(j)}</p>
</li>`
}

export function jobList(v: Pick<ModelsView, 'jobs' | 'csrf' | 'error'>): Html {
  return html`<section id="jobs" aria-live="polite" hx-get="/ui/models/jobs" hx-trigger="jobs-changed from:body" hx-swap="outerHTML">
  <h2>Downloads</h2>
  ${v.error ? html`<p class="error" role="alert" id="download-error">${v.error}</p>` : ''}
  ${v.jobs.length ? html`<ul class="jobs">${[...v.jobs].reverse().map((j) => job(j, v.csrf))}</ul>` : html`<p class="muted">No downloads yet.</p>`}
</section>`
}

export function modelList(v: Pick<ModelsView, 'models' | 'csrf' | 'cacheDir' | 'flash'>): Html {
  return html`<section id="models" hx-get="/ui/models/list" hx-trigger="models-changed from:body" hx-swap="outerHTML">
  <h2>In the cache</h2>
  <p class="muted small">${v.cacheDir} <span>(llama.cpp instances get it as LLAMA_CACHE, so <code>-hf org/name:TAG</code> finds these)</span></p>
  ${v.flash ? html`<p class="flash" role="status">${v.flash}</p>` : ''}
  ${v.models.length
    ? html`<table class="list"><thead><tr><th scope="col">Model</th><th scope="col">Tag</th><th scope="col">Files</th><th scope="col">Size</th><th scope="col">Actions</th></tr></thead><tbody>
    ${v.models.map(
      (m) => html`<tr data-model="${m.repo}:${m.tag}"><th scope="row">${m.repo}</th><td>${m.tag}</td>
      <td>${m.files.map((f) => html`<div class="small"><code>${f.name}</code> <span class="muted">${f.type}</span></div>`)}</td>
      <td>${size(m.size_bytes)}</td>
      <td><form method="post" action="/ui/models/delete" hx-post="/ui/models/delete" hx-target="#models" hx-swap="outerHTML" hx-confirm="Delete ${m.repo}:${m.tag} from the cache?">
        <input type="hidden" name="_csrf" value="${v.csrf}"><input type="hidden" name="repo" value="${m.repo}"><input type="hidden" name="tag" value="${m.tag}">
        <button type="submit" class="danger">Delete</button></form></td></tr>`,
    )}
  </tbody></table>`
    : html`<p class="muted">Nothing downloaded yet.</p>`}
</section>`
}

/** `library`: the model library's section (views/library.ts), after the cache. */
export function modelsPage(ctx: PageContext, v: ModelsView, library: Html | null = null): Html {
  return layout(ctx, {
    title: 'Models',
    section: 'models',
    body: html`<h1>Models</h1>
<form id="download-form" class="card" method="post" action="/ui/models/download" hx-post="/ui/models/download" hx-target="#jobs" hx-swap="outerHTML">
  <h2>Download from Hugging Face</h2>
  <input type="hidden" name="_csrf" value="${v.csrf}">
  <div class="field">
    <label for="m-repo">Repository</label>
    <input id="m-repo" name="repo" required maxlength="300" autocomplete="off" spellcheck="false" placeholder="bartowski/Llama-3.2-3B-Instruct-GGUF:Q4_K_M">
    <p class="muted small">org/name, with :tag for a GGUF quantization (Q4_K_M when none) or a safetensors revision</p>
  </div>
  <div class="field">
    <label for="m-format">Format</label>
    <select id="m-format" name="format"><option value="gguf">GGUF (llama.cpp)</option><option value="safetensors">Safetensors (vLLM, MLX)</option></select>
  </div>
  <button type="submit" class="primary">Download</button>
</form>
<div id="model-events" data-model-events="/ui/models/events"></div>
${jobList(v)}
${modelList(v)}
${library ?? ''}`,
  })
}
