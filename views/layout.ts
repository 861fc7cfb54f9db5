/** The frame around every signed-in screen, and the sign-in screen. */
import { assetUrl } from './assets'
import { html, type Html } from './html'

/** What every signed-in screen needs from its request. */
export interface PageContext {
  /** The session's CSRF token: htmx sends it on every request (hx-headers on <body>). */
  csrf: string
  /** False when management auth is off: there is no session to end. */
  canSignOut: boolean
}

export type Section = 'instances' | 'activity' | 'models' | 'nodes' | 'keys' | 'system'

// htmx settings: no inline styles or eval (the Content-Security-Policy forbids both), requests
// only to this server, and no page snapshots in localStorage (they could hold a key's secret).
const HTMX_CONFIG = JSON.stringify({
  includeIndicatorStyles: false,
  allowEval: false,
  allowScriptTags: false,
  selfRequestsOnly: true,
  historyCacheSize: 0,
})

function head(title: string, csrf: string | null): Html {
  return html`<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<meta name="htmx-config" content="${HTMX_CONFIG}">
${csrf ? html`<meta name="csrf-token" content="${csrf}">` : ''}
<title>${title} · llamactl</title>
<link rel="icon" href="${assetUrl('favicon.svg')}" type="image/svg+xml">
<link rel="stylesheet" href="${assetUrl('style.css')}">
<script src="${assetUrl('theme.js')}"></script>
<script src="${assetUrl('htmx.min.js')}" defer></script>
<script src="${assetUrl('page.js')}" defer></script>`
}

const NAV: [Section, string, string][] = [
  ['instances', '/ui', 'Instances'],
  ['activity', '/ui/activity', 'Activity'],
  ['models', '/ui/models', 'Models'],
  ['nodes', '/ui/nodes', 'Nodes'],
  ['keys', '/ui/keys', 'Inference keys'],
  ['system', '/ui/system', 'System'],
]

export function layout(ctx: PageContext, page: { title: string; section: Section | null; body: Html }): Html {
  return html`<!doctype html>
<html lang="en">
<head>
${head(page.title, ctx.csrf)}
</head>
<body hx-headers="${JSON.stringify({ 'X-CSRF-Token': ctx.csrf })}">
<a class="skip" href="#main">Skip to content</a>
<header class="top">
  <a class="brand" href="/ui">llamactl</a>
  <nav aria-label="Main">
    ${NAV.map(([key, href, label]) => html`<a href="${href}"${key === page.section ? html` aria-current="page"` : ''}>${label}</a>`)}
  </nav>
  <button type="button" class="link theme" data-theme-toggle title="light, dark, or as the system is">Theme: auto</button>
  ${ctx.canSignOut
    ? html`<form class="signout" method="post" action="/ui/logout"><button type="submit" class="link">Sign out</button></form>`
    : ''}
</header>
<main id="main" tabindex="-1">
${page.body}
</main>
</body>
</html>
`
}

export function loginPage(opts: { error: boolean }): Html {
  return html`<!doctype html>
<html lang="en">
<head>
${head('Sign in', null)}
</head>
<body class="login">
<main id="main">
  <form class="card login-card" method="post" action="/ui/login">
    <h1>llamactl</h1>
    <p class="muted">Sign in with a management key.</p>
    ${opts.error ? html`<p class="error" role="alert" id="login-error">That is not a management key.</p>` : ''}
    <label for="key">Management key</label>
    <input id="key" name="key" type="password" required autofocus autocomplete="current-password"
      spellcheck="false"${opts.error ? html` aria-invalid="true" aria-describedby="login-error"` : ''}>
    <button type="submit" class="primary">Sign in</button>
    <p class="muted small">The key is in <code>management.key</code> in llamactl's data folder, or in <code>auth.management_keys</code>.</p>
  </form>
</main>
</body>
</html>
`
}

/** A whole page saying what went wrong (an unknown instance, a refused request). */
export function errorPage(ctx: PageContext | null, title: string, message: string): Html {
  const body = html`<h1>${title}</h1><p class="error" role="alert">${message}</p><p><a href="/ui">Back to instances</a></p>`
  if (ctx) return layout(ctx, { title, section: null, body })
  return html`<!doctype html><html lang="en"><head>${head(title, null)}</head><body><main id="main">${body}</main></body></html>`
}
