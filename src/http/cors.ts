/**
 * Cross-origin access from server.allowed_origins only. ["*"] opens Bearer-key requests to any
 * origin; cookie sessions are never honoured cross-origin (no Allow-Credentials is ever sent).
 */
import type { Config } from '../config/load'
import { errorResponse } from './errors'

export function originAllowed(config: Config, origin: string): boolean {
  const allowed = config.server.allowed_origins
  return allowed.includes('*') || allowed.includes(origin)
}

/** Same origin as the address the request was sent to (the page calling its own server). */
export function sameOrigin(request: Request, origin: string): boolean {
  const host = request.headers.get('host')
  return !!host && (origin === `http://${host}` || origin === `https://${host}`)
}

/** The answer to a preflight (OPTIONS with Access-Control-Request-Method), or null if it is none. */
export function preflight(request: Request, config: Config): Response | null {
  const origin = request.headers.get('origin')
  if (request.method !== 'OPTIONS' || !origin || !request.headers.get('access-control-request-method')) return null
  if (!originAllowed(config, origin)) return errorResponse(403, `origin ${origin} is not in server.allowed_origins`)
  const headers = ['authorization', 'content-type', ...config.server.allowed_headers.map((h) => h.toLowerCase())]
  return new Response(null, {
    status: 204,
    headers: {
      'access-control-allow-origin': config.server.allowed_origins.includes('*') ? '*' : origin,
      'access-control-allow-methods': 'GET, POST, PUT, DELETE, OPTIONS',
      'access-control-allow-headers': headers.join(', '),
      'access-control-max-age': '600',
      vary: 'Origin',
    },
  })
}

/** Adds CORS headers to an answer for an allowed origin. */
export function decorate(response: Response, request: Request, config: Config) {
  const origin = request.headers.get('origin')
  if (!origin || !originAllowed(config, origin)) return
  response.headers.set('access-control-allow-origin', config.server.allowed_origins.includes('*') ? '*' : origin)
  response.headers.append('vary', 'Origin')
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])

/**
 * Refuses a state-changing request that a browser sent from another site: with auth off (or a
 * page session) any page the user visits could otherwise drive llamactl. A request with an
 * Origin must come from llamactl's own host or from server.allowed_origins; one without an
 * Origin but with Sec-Fetch-Site must be same-origin or user-initiated. Clients that are not
 * browsers send neither and pass.
 */
export function crossSiteRefusal(request: Request, host: string, config: Config): Response | null {
  if (SAFE_METHODS.has(request.method)) return null
  const origin = request.headers.get('origin')
  if (origin !== null) {
    const o = origin.toLowerCase()
    // Any scheme: behind a TLS proxy the page is https while llamactl sees http.
    const own = o.startsWith('http://') ? o.slice(7) : o.startsWith('https://') ? o.slice(8) : null
    if (own === host || (o !== 'null' && originAllowed(config, origin))) return null
    return errorResponse(403, `cross-site ${request.method} from origin ${JSON.stringify(origin.slice(0, 200))} refused; add it to server.allowed_origins if it is yours`)
  }
  const site = request.headers.get('sec-fetch-site')
  if (site !== null && site !== 'same-origin' && site !== 'none') {
    return errorResponse(403, `cross-site ${request.method} refused (Sec-Fetch-Site: ${site.slice(0, 40)})`)
  }
  return null
}
