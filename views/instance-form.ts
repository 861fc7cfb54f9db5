/**
 * Create and edit an instance. The form holds exactly what was typed (strings), so a refused
 * submit comes back with every value as it was and the server's message next to its field.
 */
import { html, type Html, seg } from './html'
import { layout, type PageContext } from './layout'
import type { FormField } from '../src/backends/types'

/** A plain field of the form: which ones a backend has is part of its definition. */
export type CommonField = FormField

export type TriState = '' | 'true' | 'false'

export interface FormState {
  name: string
  backend_type: string
  /** Values of the backend's common fields, by option name. */
  common: Record<string, string>
  /** Other backend options, as typed: [name, value] rows. */
  advanced: [string, string][]
  environment: [string, string][]
  auto_restart: TriState
  max_restarts: string
  restart_delay: string
  on_demand_start: TriState
  idle_timeout: string
  /** The instance group; empty: none. */
  group: string
  /** Other model names for it, as typed (separated by commas or spaces). */
  aliases: string
  /** The node it is created on; empty: this llamactl. */
  node: string
  /** The "import from command line" text. */
  command: string
}

export function emptyForm(): FormState {
  return {
    name: '',
    backend_type: 'llama_cpp',
    common: {},
    advanced: [],
    environment: [],
    auto_restart: '',
    max_restarts: '',
    restart_delay: '',
    on_demand_start: '',
    idle_timeout: '',
    group: '',
    aliases: '',
    node: '',
    command: '',
  }
}

/**
 * Messages by field: 'name', 'backend_type', a common field's option name, 'advanced',
 * 'environment', a supervision field, 'command', or 'form' for the rest.
 */
export type FormErrors = Record<string, string>

/** Configured defaults, shown where a field is left empty. */
export interface FormDefaults {
  auto_restart: boolean
  max_restarts: number
  restart_delay: number
  on_demand_start: boolean
  idle_timeout: number
}

export interface FormView {
  mode: 'create' | 'edit'
  state: FormState
  errors: FormErrors
  defaults: FormDefaults
  /** Option names the backend knows, offered as suggestions in the advanced section. */
  knownOptions: string[]
  /** Group names other instances have, offered as suggestions. */
  groups?: string[]
  /** The nodes a new instance may be placed on, this llamactl first; one: no choice shown. */
  nodes?: string[]
  /** The backends to choose from: backend_type and its name in the menu. */
  backends: { type: string; title: string }[]
  /** The chosen backend's plain fields. */
  fields: CommonField[]
  csrf: string
}

/** aria attributes and the message for a field that the server refused. */
function invalid(errors: FormErrors, field: string, first: string | undefined): { attrs: Html | string; message: Html | string } {
  const msg = errors[field]
  if (msg === undefined) return { attrs: '', message: '' }
  return {
    attrs: html` aria-invalid="true" aria-describedby="err-${field}"${field === first ? html` autofocus` : ''}`,
    message: html`<p class="field-error" id="err-${field}">${msg}</p>`,
  }
}

function kvRow(kind: 'env' | 'opt', key: string, value: string, list?: string): Html {
  const what = kind === 'env' ? 'variable' : 'option'
  return html`<div class="kv-row">
  <input name="${kind}_key" value="${key}" aria-label="${kind === 'env' ? 'Variable name' : 'Option name'}" placeholder="${kind === 'env' ? 'NAME' : 'option_name'}"
    autocomplete="off" spellcheck="false"${list ? html` list="${list}"` : ''}>
  <input name="${kind}_value" value="${value}" aria-label="Value" placeholder="value" autocomplete="off" spellcheck="false">
  <button type="button" class="icon" data-remove-row aria-label="Remove this ${what}" title="Remove">×</button>
</div>`
}

/** One empty row, added by the "Add" buttons. */
export function blankRow(kind: 'env' | 'opt', backend: string): Html {
  return kvRow(kind, '', '', kind === 'opt' ? `opt-names-${backend}` : undefined)
}

function triSelect(name: string, value: TriState, dflt: boolean, err: ReturnType<typeof invalid>): Html {
  const opt = (v: TriState, label: string) => html`<option value="${v}"${v === value ? html` selected` : ''}>${label}</option>`
  return html`<select id="f-${name}" name="${name}"${err.attrs}>
    ${opt('', `Default (${dflt ? 'yes' : 'no'})`)}${opt('true', 'Yes')}${opt('false', 'No')}
  </select>`
}

export function instanceForm(v: FormView): Html {
  const { state: s, errors, defaults: d } = v
  const first = Object.keys(errors)[0]
  const err = (f: string) => invalid(errors, f, first)
  const action = v.mode === 'create' ? '/ui/instances' : `/ui/instances/${seg(s.name)}/edit`
  const fields = v.fields
  const listId = `opt-names-${s.backend_type}`
  const advancedOpen = s.advanced.length > 0 || errors.advanced !== undefined
  const importOpen = s.command !== '' || errors.command !== undefined
  const name = err('name')
  const backend = err('backend_type')
  const group = err('group')
  const aliases = err('aliases')
  const node = err('node')
  const command = err('command')
  const advanced = err('advanced')
  const env = err('environment')
  const numberField = (field: keyof FormState & string, label: string, hint: string) => {
    const e = err(field)
    return html`<div class="field">
      <label for="f-${field}">${label}</label>
      <input id="f-${field}" name="${field}" value="${s[field] as string}" inputmode="decimal" autocomplete="off" placeholder="${hint}"${e.attrs}>
      ${e.message}
    </div>`
  }
  return html`<form id="instance-form" class="instance-form" method="post" action="${action}"
  hx-post="${action}" hx-target="this" hx-swap="outerHTML">
<input type="hidden" name="_csrf" value="${v.csrf}">
<input type="hidden" name="_mode" value="${v.mode}">
${errors.form ? html`<p class="error" role="alert" id="err-form">${errors.form}</p>` : ''}
<fieldset>
  <legend>Instance</legend>
  <div class="field">
    <label for="f-name">Name</label>
    ${v.mode === 'create'
      ? html`<input id="f-name" name="name" value="${s.name}" required maxlength="64" autocomplete="off" spellcheck="false"
      placeholder="my-model"${name.attrs}>
    <p class="hint">Letters, digits, '.', '_' and '-'; clients use it as the model name.</p>`
      : html`<input id="f-name" name="name" value="${s.name}" readonly>`}
    ${name.message}
  </div>
  <div class="field">
    <label for="f-backend_type">Backend</label>
    <select id="f-backend_type" name="backend_type" hx-post="/ui/form/refresh" hx-trigger="change"
      hx-target="#instance-form" hx-swap="outerHTML"${backend.attrs}>
      ${v.backends.map(({ type, title }) => html`<option value="${type}"${type === s.backend_type ? html` selected` : ''}>${title}</option>`)}
    </select>
    ${backend.message}
  </div>
  ${v.mode === 'create' && (v.nodes?.length ?? 0) > 1
    ? html`<div class="field">
    <label for="f-node">Node</label>
    <select id="f-node" name="node"${node.attrs}>
      ${v.nodes!.map((n, i) => html`<option value="${i === 0 ? '' : n}"${(i === 0 ? '' : n) === s.node ? html` selected` : ''}>${i === 0 ? `${n} (this llamactl)` : n}</option>`)}
    </select>
    <p class="hint">Where it runs: that node's llamactl runs it, and requests reach it through this one.</p>
    ${node.message}
  </div>`
    : ''}
  <div class="field">
    <label for="f-group">Group</label>
    <input id="f-group" name="group" value="${s.group}" list="group-names" maxlength="64" autocomplete="off" spellcheck="false"
      placeholder="none"${group.attrs}>
    <datalist id="group-names">${(v.groups ?? []).map((g) => html`<option value="${g}"></option>`)}</datalist>
    <p class="hint">At most <code>instances.group_limits</code> of a group run at once; a group with no limit there has none.</p>
    ${group.message}
  </div>
  <div class="field">
    <label for="f-aliases">Aliases</label>
    <input id="f-aliases" name="aliases" value="${s.aliases}" autocomplete="off" spellcheck="false" placeholder="none"${aliases.attrs}>
    <p class="hint">Other names clients may use as the model, separated by commas; each unique across all instances.</p>
    ${aliases.message}
  </div>
</fieldset>
<details class="import"${importOpen ? html` open` : ''}>
  <summary>Import from command line</summary>
  <div class="field">
    <label for="f-command">Command line</label>
    <textarea id="f-command" name="command" rows="3" spellcheck="false"
      placeholder="llama-server -m /models/model.gguf -c 4096 -ngl 99"${command.attrs}>${s.command}</textarea>
    ${command.message}
    <p class="hint">Fills the backend's options from a command line, with the backend chosen above.</p>
  </div>
  <button type="button" hx-post="/ui/form/import" hx-target="#instance-form" hx-swap="outerHTML">Fill the form</button>
</details>
<fieldset class="grid">
  <legend>Model</legend>
  ${fields.map((f) => {
    const e = err(f.name)
    return html`<div class="field${f.numeric ? '' : ' wide'}">
    <label for="f-${f.name}">${f.label}</label>
    <input id="f-${f.name}" name="${f.name}" value="${s.common[f.name] ?? ''}" autocomplete="off" spellcheck="false"
      placeholder="${f.hint}"${f.numeric ? html` inputmode="numeric"` : ''}${e.attrs}>
    ${e.message}
  </div>`
  })}
</fieldset>
<details class="advanced"${advancedOpen ? html` open` : ''}>
  <summary>Advanced backend options</summary>
  <p class="hint">Any other flag, by its long name in snake_case (<code>flash_attn</code> for <code>--flash-attn</code>).
  An empty value is a bare flag; a name given twice becomes a list.</p>
  ${advanced.message}
  <div id="opt-rows" class="kv-rows"${advanced.attrs ? html` aria-describedby="err-advanced"` : ''}>
    ${(s.advanced.length ? s.advanced : [['', ''] as [string, string]]).map(([k, val]) => kvRow('opt', k, val, listId))}
  </div>
  <button type="button" hx-get="/ui/form/row?kind=opt&amp;backend=${seg(s.backend_type)}" hx-target="#opt-rows" hx-swap="beforeend">Add option</button>
  <datalist id="${listId}">${v.knownOptions.map((o) => html`<option value="${o}"></option>`)}</datalist>
</details>
<fieldset>
  <legend>Environment</legend>
  ${env.message}
  <div id="env-rows" class="kv-rows"${env.attrs ? html` aria-describedby="err-environment"` : ''}>
    ${(s.environment.length ? s.environment : [['', ''] as [string, string]]).map(([k, val]) => kvRow('env', k, val))}
  </div>
  <button type="button" hx-get="/ui/form/row?kind=env" hx-target="#env-rows" hx-swap="beforeend">Add variable</button>
</fieldset>
<fieldset class="grid">
  <legend>Supervision</legend>
  <div class="field">
    <label for="f-auto_restart">Auto-restart</label>
    ${triSelect('auto_restart', s.auto_restart, d.auto_restart, err('auto_restart'))}
    ${err('auto_restart').message}
  </div>
  ${numberField('max_restarts', 'Max restarts', `default ${d.max_restarts}; -1: no limit`)}
  ${numberField('restart_delay', 'Restart delay (s)', `default ${d.restart_delay}`)}
  <div class="field">
    <label for="f-on_demand_start">On-demand start</label>
    ${triSelect('on_demand_start', s.on_demand_start, d.on_demand_start, err('on_demand_start'))}
    ${err('on_demand_start').message}
  </div>
  ${numberField('idle_timeout', 'Idle timeout (min)', `default ${d.idle_timeout}; 0: never`)}
</fieldset>
<div class="form-actions">
  <button type="submit" class="primary">${v.mode === 'create' ? 'Create and start' : 'Save'}</button>
  <a class="button" href="/ui">Cancel</a>
  ${v.mode === 'edit' ? html`<span class="muted small">A running instance restarts with the new options.</span>` : ''}
</div>
</form>`
}

export function instanceFormPage(ctx: PageContext, v: FormView): Html {
  const title = v.mode === 'create' ? 'New instance' : `Edit ${v.state.name}`
  const body = html`<div class="page-head"><h1>${title}</h1></div>
${instanceForm(v)}`
  return layout(ctx, { title, section: 'instances', body })
}
