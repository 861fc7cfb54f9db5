// llamactl's page: the few behaviours htmx has no attribute for, each declared on its element
// with a data- attribute. Everything else is htmx (hx-* attributes) and server-rendered HTML.
//
//   data-log-stream="URL"  on a <pre>: append the lines of a server-sent event stream, follow the end;
//                          with [data-log-search] (show only matching lines) and [data-log-pause]
//   data-copy="ID"         on a button: copy the value of the element with that id
//   data-remove-row        on a button: remove its .kv-row (a form row)
//   data-theme-toggle      on a button: the theme, auto (the OS's) → light → dark (theme.js applies it at load)
//   data-origin-template="URL"  on an element: URL in its text becomes the address the page was loaded from
//   data-model-events="URL" on the Models view: move each download's progress bar from a
//                          server-sent event stream (no polling); a job the page does not show
//                          yet, or one that ended, has htmx reload the list (jobs-changed,
//                          models-changed events)
'use strict'

const MAX_LOG_NODES = 5000

/** As views/logs.ts's lineKind: how a line reads (llama.cpp marks its level with E or W). */
function lineKind(line) {
  if (line.startsWith('[llamactl]')) return /\b(failed|crash|exited unexpectedly|killing|gave up)\b/i.test(line) ? 'err' : 'note'
  if (/^\d+\.\d+\.\d+\.\d+ E /.test(line) || /\b(error|failed|fatal|panic|exception|traceback)\b/i.test(line)) return 'err'
  if (/^\d+\.\d+\.\d+\.\d+ W /.test(line) || /\bwarn(ing)?\b/i.test(line)) return 'warn'
  return ''
}

function followLog(pre) {
  const state = document.querySelector('[data-log-state]')
  const search = document.querySelector('[data-log-search]')
  const pause = document.querySelector('[data-log-pause]')
  const say = (text) => {
    if (state) state.textContent = text
  }
  let paused = false
  let held = []
  const matches = (el) => {
    const q = search ? search.value.trim().toLowerCase() : ''
    return !q || el.textContent.toLowerCase().includes(q)
  }
  const show = (lines) => {
    const atEnd = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 40
    const frag = document.createDocumentFragment()
    for (const l of lines) {
      const el = document.createElement('span')
      el.className = `ln ${lineKind(l)}`.trim()
      // Text only: a log line is never markup.
      el.textContent = `${l}\n`
      el.hidden = !matches(el)
      frag.appendChild(el)
    }
    pre.appendChild(frag)
    while (pre.childNodes.length > MAX_LOG_NODES) pre.removeChild(pre.firstChild)
    if (atEnd) pre.scrollTop = pre.scrollHeight
  }
  // The URL carries the cursor of the lines already shown; on a reconnect the browser sends
  // Last-Event-ID instead, so no line is shown twice or skipped.
  const source = new EventSource(pre.dataset.logStream)
  source.addEventListener('open', () => say(paused ? 'Paused.' : 'Following.'))
  source.addEventListener('error', () => say('Reconnecting…'))
  source.addEventListener('lines', (event) => {
    const lines = JSON.parse(event.data)
    if (paused) {
      // Kept, not shown, until Follow; bounded like the view itself.
      held.push(...lines)
      if (held.length > MAX_LOG_NODES) held = held.slice(-MAX_LOG_NODES)
      say(`Paused; ${held.length} new line${held.length === 1 ? '' : 's'} held.`)
    } else show(lines)
  })
  search?.addEventListener('input', () => {
    for (const el of pre.children) el.hidden = !matches(el)
  })
  pause?.addEventListener('click', () => {
    paused = !paused
    pause.textContent = paused ? 'Follow' : 'Pause'
    pause.setAttribute('aria-pressed', String(paused))
    if (!paused) {
      show(held)
      held = []
      pre.scrollTop = pre.scrollHeight
    }
    say(paused ? 'Paused.' : 'Following.')
  })
  addEventListener('pagehide', () => source.close())
  pre.scrollTop = pre.scrollHeight
}

function followDownloads(el) {
  const source = new EventSource(el.dataset.modelEvents)
  const fire = (name) => document.body.dispatchEvent(new Event(name, { bubbles: true }))
  source.addEventListener('job', (event) => {
    const job = JSON.parse(event.data)
    const item = document.querySelector(`[data-job="${CSS.escape(job.id)}"]`)
    if (!item) return fire('jobs-changed')
    const before = item.dataset.status
    item.dataset.status = job.status
    const bar = item.querySelector('[data-job-bar]')
    if (bar) bar.value = job.value
    const text = item.querySelector('[data-job-text]')
    if (text) text.textContent = job.text
    const badge = item.querySelector('[data-job-status]')
    if (badge) {
      badge.textContent = job.status
      badge.className = `badge s-${job.status}`
    }
    if (before !== job.status && ['completed', 'failed', 'cancelled'].includes(job.status)) {
      fire('jobs-changed')
      if (job.status === 'completed') fire('models-changed')
    }
  })
  addEventListener('pagehide', () => source.close())
}

async function copy(button) {
  const field = document.getElementById(button.dataset.copy)
  if (!field) return
  const text = field.value ?? field.textContent
  let ok = false
  try {
    await navigator.clipboard.writeText(text)
    ok = true
  } catch {
    // Not a secure context (plain http on another address): fall back to the selection.
    field.select?.()
    ok = document.execCommand?.('copy') ?? false
  }
  const label = button.textContent
  button.textContent = ok ? 'Copied' : 'Select and copy it yourself'
  setTimeout(() => {
    button.textContent = label
  }, 2000)
}

document.addEventListener('click', (event) => {
  const target = event.target instanceof Element ? event.target : null
  const copyButton = target?.closest('[data-copy]')
  if (copyButton) copy(copyButton)
  const remove = target?.closest('[data-remove-row]')
  if (remove) {
    const row = remove.closest('.kv-row')
    const next = row?.nextElementSibling?.querySelector('input') ?? row?.previousElementSibling?.querySelector('input')
    row?.remove()
    next?.focus()
  }
})

const THEMES = ['auto', 'light', 'dark']

function showTheme(button) {
  button.textContent = `Theme: ${document.documentElement.dataset.theme ?? 'auto'}`
}

function nextTheme(button) {
  const now = document.documentElement.dataset.theme ?? 'auto'
  const next = THEMES[(THEMES.indexOf(now) + 1) % THEMES.length]
  if (next === 'auto') delete document.documentElement.dataset.theme
  else document.documentElement.dataset.theme = next
  try {
    if (next === 'auto') localStorage.removeItem('llamactl-theme')
    else localStorage.setItem('llamactl-theme', next)
  } catch {
    // storage refused: this page only
  }
  showTheme(button)
}

document.addEventListener('click', (event) => {
  const toggle = event.target instanceof Element ? event.target.closest('[data-theme-toggle]') : null
  if (toggle) nextTheme(toggle)
})

document.addEventListener('DOMContentLoaded', () => {
  for (const b of document.querySelectorAll('[data-theme-toggle]')) showTheme(b)
  for (const el of document.querySelectorAll('[data-origin-template]')) el.textContent = el.textContent.replaceAll(el.dataset.originTemplate, location.origin)
  for (const pre of document.querySelectorAll('pre[data-log-stream]')) followLog(pre)
  for (const el of document.querySelectorAll('[data-model-events]')) followDownloads(el)
})
