/**
 * The page's static files, embedded as text so the single binary carries them (no CDN, no
 * build step): htmx from the htmx.org package, and our own stylesheet, script and icon. Each is
 * served under a URL with a hash of its content, so it can be cached for a year.
 */
import htmx from 'htmx.org/dist/htmx.min.js' with { type: 'text' }
import script from './assets/page.js' with { type: 'text' }
import theme from './assets/theme.js' with { type: 'text' }
import style from './assets/style.css' with { type: 'text' }
import icon from './assets/favicon.svg' with { type: 'text' }

export interface Asset {
  body: string
  type: string
  /** Changes whenever the content does. */
  version: string
}

function asset(body: string, type: string): Asset {
  return { body, type, version: Bun.hash(body).toString(36) }
}

export const ASSETS: Record<string, Asset> = {
  'htmx.min.js': asset(htmx, 'text/javascript; charset=utf-8'),
  'page.js': asset(script, 'text/javascript; charset=utf-8'),
  'theme.js': asset(theme, 'text/javascript; charset=utf-8'),
  'style.css': asset(style, 'text/css; charset=utf-8'),
  'favicon.svg': asset(icon, 'image/svg+xml'),
}

export function assetUrl(name: keyof typeof ASSETS & string): string {
  return `/ui/assets/${name}?v=${ASSETS[name]!.version}`
}
