// llamactl's page: the few behaviours htmx has no attribute for, each declared on its element
// with a data- attribute. Everything else is htmx (hx-* attributes) and server-rendered HTML.
//
//   data-log-stream="URL"  on a <pre>: append the lines of a server-sent event stream, follow the end
//   data-copy="ID"         on a button: copy the value of the element with that id
//   data-remove-row        on a button: remove its .kv-row (a form row)
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
})
