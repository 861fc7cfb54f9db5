/**
 * Who may call what: management routes (/api/v1/*) need a management key or a signed-in page
 * session (with its CSRF token for anything but GET); inference routes (/v1/*) need an
 * inference or management key. 401 without a valid credential, 403 for the wrong kind or an
 * instance the key may not use. Keys never appear in logs, errors or answers.
 */
import type { KeyRing, Principal } from '../auth/keys'
import { csrfMatches, readCookie, SESSION_COOKIE, type Sessions } from '../auth/sessions'
import type { Config } from '../config/load'
import { sameOrigin } from './cors'
import { BadRequest } from '../errors'
import { errorResponse } from './errors'
import { noteFailedKey, refuseUnchecked } from './throttle'

/** Routes anyone may call: the page's sign-in and its static files (the page itself checks its session). */
export const PUBLIC_PREFIXES = ['/ui/assets/']
export const PUBLIC_EXACT = new Set(['/', '/ui/login', '/ui/logout'])

const principals = new WeakMap<Request, Principal>()

/** 403 unless the principal may use the instance. */
export function mayUse(request: Request, instance: string): boolean {
  const p = principals.get(request)
  return !p || p.kind === 'management' || (p.kind === 'inference' && (p.instances === null || p.instances.has(instance)))
}

/** Who sent the request, for the queue's fairness: its key's id, or one name for every request without a key. */
export function clientOf(request: Request): string {
  return principals.get(request)?.id ?? 'anonymous'
}

export type RouteClass = 'management' | 'inference' | 'metrics' | 'public' | 'page' | 'other'

/**
 * The class of a request path or of a route's pattern (`/api/v1/instances/:name`): the same
 * function for both, and a trailing slash changes nothing (the router matches `/x/` to `/x`).
 */
export function classify(path: string): RouteClass {
  if (path.startsWith('/api/v1/') || path === '/api/v1') return 'management'
  if (path.startsWith('/v1/') || path === '/v1') return 'inference'
  // llama-server's web UI passed through (proxy.ts): authorised as the instance proxy is.
  if (path.startsWith('/llama-cpp/') || path === '/llama-cpp') return 'management'
  const p = path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path
  if (p === '/metrics') return 'metrics'
  if (PUBLIC_EXACT.has(p) || PUBLIC_PREFIXES.some((x) => path.startsWith(x))) return 'public'
  if (p === '/ui' || path.startsWith('/ui/')) return 'page'
  return 'other'
}

/** The class each request was let through as: the route it reaches must be of the same class. */
const granted = new WeakMap<Request, RouteClass>()

/** For requests made in-process by code that has checked the caller itself (the page, with its session). */
export function grantInternal(request: Request, cls: RouteClass) {
  granted.set(request, cls)
}

const routeClasses = new Map<string, RouteClass>()

/**
 * Run by the router on the route it dispatched to, before anything of the route runs: the
 * request must have been authorised for that route's class. The app's front door authorises
 * before the body is read; this makes a disagreement between what it read and what the router
 * matched a refusal rather than a way in.
 */
export function checkRouteGrant(request: Request, route: string): void {
  let cls = routeClasses.get(route)
  if (cls === undefined) routeClasses.set(route, (cls = classify(route)))
  if (granted.get(request) !== cls) throw new BadRequest('the request path does not match the route it reaches; send it in its plain form')
}

/** The Bearer key; '' for an Authorization header of another form; null without one. */
function bearer(request: Request): string | null {
  const h = request.headers.get('authorization')
  if (!h) return null
  if (h.length < 8 || h.slice(0, 7).toLowerCase() !== 'bearer ') return ''
  const key = h.slice(7).trim()
  return key && !/\s/.test(key) ? key : ''
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])

/** Returns a refusal, or null to let the request through (recording its principal). */
export function authorize(request: Request, path: string, config: Config, keys: KeyRing, sessions: Sessions): Response | null {
  const cls = classify(path)
  const refusal = check(request, cls, config, keys, sessions)
  if (!refusal) granted.set(request, cls)
  return refusal
}

function check(request: Request, cls: RouteClass, config: Config, keys: KeyRing, sessions: Sessions): Response | null {
  if (cls === 'public' || cls === 'other' || cls === 'page') return null
  const required =
    cls === 'management' ? config.auth.require_management_auth : cls === 'inference' ? config.auth.require_inference_auth : !config.metrics.public
  const key = bearer(request)
  if (key === null) {
    // The page's session cookie works for management routes only.
    if (cls === 'management' && required) {
      const session = sessions.get(readCookie(request.headers.get('cookie'), SESSION_COOKIE))
      const origin = request.headers.get('origin')
      if (session && origin && !sameOrigin(request, origin)) {
        return errorResponse(403, 'a page session cannot be used from another origin; use a Bearer key')
      }
      if (session) {
        if (!SAFE_METHODS.has(request.method) && !csrfMatches(session, request.headers.get('x-csrf-token'))) {
          return errorResponse(403, 'missing or wrong X-CSRF-Token for this session; reload the page')
        }
        principals.set(request, { kind: 'management', id: 'session' })
        return null
      }
    }
    if (!required) return null
    const needs = cls === 'management' ? 'a management' : cls === 'inference' ? 'an inference' : 'a metrics or management'
    return errorResponse(401, `this route needs ${needs} key: send "Authorization: Bearer <key>"`, {
      'www-authenticate': 'Bearer',
    })
  }
  // An address that is guessing keys may have to wait before its key is even looked at.
  const refused = required ? refuseUnchecked(request, keys.failures) : null
  if (refused) return refused
  const principal = key ? keys.authenticate(key) : null
  if (!principal) {
    if (!required) return null
    noteFailedKey(request) // counted, and the answer slowed down, by the app (throttle.ts)
    return errorResponse(401, 'invalid or expired API key', { 'www-authenticate': 'Bearer error="invalid_token"' })
  }
  if (cls === 'management' && principal.kind !== 'management' && required) {
    return errorResponse(403, `this is ${principal.kind === 'metrics' ? 'a metrics' : 'an inference'} key; management routes need a management key`)
  }
  if (cls === 'inference' && principal.kind === 'metrics' && required) {
    return errorResponse(403, 'this is a metrics key; inference routes need an inference key')
  }
  if (cls === 'metrics' && principal.kind === 'inference' && required) {
    return errorResponse(403, 'this is an inference key; /metrics needs a metrics or management key')
  }
  principals.set(request, principal)
  return null
}
