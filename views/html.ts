/**
 * The one way the page makes HTML: a tagged template that escapes every interpolated value.
 * Only values already made by `html` (or marked with `raw`) pass through as markup, so a name,
 * a log line or an error message can never become markup or script. Attribute values must be
 * quoted in the template ("…"); escaping covers both quote kinds.
 */

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]!)
}

/** Markup that is already safe: made by `html`, or marked with `raw` by code that knows it is. */
export class Html {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value
  }
}

/** Marks a string of trusted markup (never pass it anything a user or a backend wrote). */
export function raw(markup: string): Html {
  return new Html(markup)
}

/** Values: Html as is; lists item by item; null, undefined and false as nothing; the rest escaped as text. */
function render(value: unknown): string {
  if (value instanceof Html) return value.value
  if (value === null || value === undefined || value === false) return ''
  if (Array.isArray(value)) return value.map(render).join('')
  return escapeHtml(String(value))
}

export function html(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let out = strings[0]!
  for (let i = 0; i < values.length; i++) out += render(values[i]) + strings[i + 1]!
  return new Html(out)
}

/** A path segment for a URL inside an attribute (escaped again by `html`). */
export function seg(value: string | number): string {
  return encodeURIComponent(String(value))
}
