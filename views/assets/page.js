// llamactl's page: the few behaviours htmx has no attribute for, each declared on its element
// with a data- attribute. Everything else is htmx (hx-* attributes) and server-rendered HTML.
//
//   data-log-stream="URL"  on a <pre>: append the lines of a server-sent event stream, follow the end
//   data-copy="ID"         on a button: copy the value of the element with that id
//   data-remove-row        on a button: remove its .kv-row (a form row)
//   data-model-events="URL" on the Models view: move each download's progress bar from a
//                          server-sent event stream (no polling); a job the page does not show
//                          yet, or one that ended, has htmx reload the list (jobs-changed,
//                          models-changed events)
'use strict'

const MAX_LOG_NODES = 5000

function followLog(pre) {
  const state = document.querySelector('[data-log-state]')
  const say = (text) => {
    if (state) state.textContent = text
  }
  // The URL carries the cursor of the lines already shown; on a reconnect the browser sends
  // Last-Event-ID instead, so no line is shown twice or skipped.
  const source = new EventSource(pre.dataset.logStream)
  source.addEventListener('open', () => say('Following.'))
  source.addEventListener('error', () => say('Reconnecting…'))
  source.addEventListener('lines', (event) => {
    const atEnd = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 40
    const lines = JSON.parse(event.data)
    // Text nodes only: a log line is never markup.
    pre.appendChild(document.createTextNode(lines.map((l) => `${l}\n`).join('')))
    while (pre.childNodes.length > MAX_LOG_NODES) pre.removeChild(pre.firstChild)
    if (atEnd) pre.scrollTop = pre.scrollHeight
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

document.addEventListener('DOMContentLoaded', () => {
  for (const pre of document.querySelectorAll('pre[data-log-stream]')) followLog(pre)
  for (const el of document.querySelectorAll('[data-model-events]')) followDownloads(el)
})
