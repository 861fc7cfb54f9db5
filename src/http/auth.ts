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
import { errorResponse } from './errors'
import { noteFailedKey, refuseUnchecked } from './throttle'

/** Routes anyone may call: the page's sign-in and its static files (the page itself checks its session). */
export const PUBLIC_PREFIXES = ['/ui/login', '/ui/assets/']
export const PUBLIC_EXACT = new Set(['/', '/ui/logout'])

const principals = new WeakMap<Request, Principal>()

/** 403 unless the principal may use the instance. */
export function mayUse(request: Request, instance: string): boolean {
  const p = principals.get(request)
  return !p || p.kind === 'management' || (p.kind === 'inference' && (p.instances === null || p.instances.has(instance)))
}

export type RouteClass = 'management' | 'inference' | 'metrics' | 'public' | 'page' | 'other'

export function classify(path: string): RouteClass {
  if (path.startsWith('/api/v1/') || path === '/api/v1') return 'management'
  if (path.startsWith('/v1/') || path === '/v1') return 'inference'
  if (path === '/metrics') return 'metrics'
  if (PUBLIC_EXACT.has(path) || PUBLIC_PREFIXES.some((p) => path.startsWith(p))) return 'public'
  if (path === '/ui' || path.startsWith('/ui/')) return 'page'
  return 'other'
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
