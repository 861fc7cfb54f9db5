/**
 * The one reading of a request's target. Everything after it (authorization, the router, the
 * request log, metrics) sees the path this returns and nothing else: the app hands the router a
 * URL built from it, so what is authorised is what is dispatched, by construction.
 *
 * Refused here, before anything else runs:
 * - a missing Host (HTTP/1.0), a repeated one, or one that is not a valid host[:port] (400);
 * - a host llamactl is not served under (403: DNS rebinding), see `HostPolicy`;
 * - a target Bun could not make an absolute URL of (`*`, authority-form, a bare path with no
 *   Host), a fragment, duplicate slashes, and percent-encoded separators, dots or NUL (400).
 * Dot segments and backslashes are resolved by Bun before this sees the URL, so `/a/../api/v1`
 * is authorised as the `/api/v1` it reaches.
 */
import { hostname as machineHostname } from 'node:os'
import { isIP } from 'node:net'
import { errorResponse } from './errors'

export interface Target {
  /** The path as sent (still percent-encoded), beginning with '/'. */
  path: string
  /** '' or '?…'. */
  query: string
  /** 'http:' or 'https:'. */
  scheme: string
  /** The Host the client named, lower-cased, as host[:port]. */
  host: string
}

/** What the router is given as the URL's host: fixed, so no Host can shift where it reads the path. */
export const ROUTER_HOST = 'llamactl.internal'

const LABEL = '[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?'
const REG_NAME = new RegExp(`^${LABEL}(?:\\.${LABEL})*\\.?$`)
const IPV6 = /^\[[0-9a-f:.]+\]$/

/** host[:port] split, or null when it is not a valid Host header value. */
export function splitHost(value: string): { name: string; port: string } | null {
  if (value.length === 0 || value.length > 261) return null
  const v = value.toLowerCase()
  let name = v
  let port = ''
  const close = v.lastIndexOf(']')
  const colon = v.lastIndexOf(':')
  if (colon > close) {
    name = v.slice(0, colon)
    port = v.slice(colon + 1)
    if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) return null
  }
  if (name.startsWith('[')) {
    if (!IPV6.test(name) || isIP(name.slice(1, -1)) !== 6) return null
    return { name, port }
  }
  if (!REG_NAME.test(name)) return null
  return { name: name.endsWith('.') ? name.slice(0, -1) : name, port }
}

/**
 * Which Host names llamactl answers to: always the loopback names, any IP literal (a browser
 * whose page came from an IP address cannot be rebound), the machine's host name and the
 * address it listens on; plus `server.allowed_hosts` (exact names, `.example.com` for a domain
 * and its subdomains, `*` for any).
 */
export class HostPolicy {
  private readonly exact = new Set<string>()
  private readonly suffixes: string[] = []
  private readonly any: boolean

  constructor(allowed: string[], listenHost: string) {
    this.any = allowed.includes('*')
    const machine = machineHostname().toLowerCase()
    for (const n of ['localhost', machine, machine.split('.')[0]!, listenHost.toLowerCase()]) if (n) this.exact.add(n)
    for (const raw of allowed) {
      const a = raw.trim().toLowerCase()
      if (!a || a === '*') continue
      if (a.startsWith('.')) this.suffixes.push(a)
      else this.exact.add(a.endsWith('.') ? a.slice(0, -1) : a)
    }
  }

  allows(name: string): boolean {
    if (this.any || this.exact.has(name) || name.endsWith('.localhost')) return true
    if (name.startsWith('[') || isIP(name) === 4) return true
    for (const s of this.suffixes) if (name === s.slice(1) || name.endsWith(s)) return true
    return false
  }
}

/** Percent-encoded '/', '\', '.' and NUL: a router or a backend could read them as separators. */
const ENCODED_SEPARATOR = /%(?:2f|5c|2e|00)/i

/** The request's target, or the refusal to send. */
export function readTarget(request: Request, hosts: HostPolicy): Target | Response {
  const url = request.url
  // Bun makes "http://host/path" of an origin-form target with a valid Host; anything else
  // (no Host, an invalid one, '*', authority-form) stays relative and is refused.
  const scheme = url.startsWith('http://') ? 'http:' : url.startsWith('https://') ? 'https:' : ''
  if (!scheme) return errorResponse(400, 'bad request target: send an origin-form path ("GET /path HTTP/1.1") with a valid Host header')
  const authorityStart = scheme.length + 2
  const pathStart = url.indexOf('/', authorityStart)
  const header = request.headers.get('host')
  // Requests made in-process (tests, the page calling the API) carry their host in the URL only.
  const hostValue = header ?? url.slice(authorityStart, pathStart === -1 ? url.length : pathStart)
  const host = splitHost(hostValue)
  if (!host) return errorResponse(400, `bad Host header ${JSON.stringify(hostValue.slice(0, 100))}: it must be host or host:port`)
  if (!hosts.allows(host.name)) {
    return errorResponse(403, `llamactl is not served under the host name ${JSON.stringify(host.name)}; add it to server.allowed_hosts (LLAMACTL_ALLOWED_HOSTS) to allow it`)
  }
  if (pathStart === -1) return errorResponse(400, 'bad request target: the path is missing')
  if (url.includes('#', pathStart)) return errorResponse(400, 'bad request target: a fragment (#) is not part of a request')
  const q = url.indexOf('?', pathStart)
  const path = q === -1 ? url.slice(pathStart) : url.slice(pathStart, q)
  const query = q === -1 ? '' : url.slice(q)
  if (path.includes('//')) return errorResponse(400, `bad request path ${JSON.stringify(path.slice(0, 120))}: duplicate slashes`)
  if (path.includes('%')) {
    if (ENCODED_SEPARATOR.test(path)) {
      return errorResponse(400, `bad request path ${JSON.stringify(path.slice(0, 120))}: percent-encoded '/', '\\', '.' or NUL are not allowed`)
    }
    try {
      decodeURIComponent(path)
    } catch {
      return errorResponse(400, `the path has a malformed percent-encoding: ${JSON.stringify(path.slice(0, 120))}`)
    }
  }
  return { path, query, scheme, host: host.port ? `${host.name}:${host.port}` : host.name }
}

/**
 * Points the request at the router's fixed origin with exactly the path and query read above;
 * the router (which finds the path by its own arithmetic on `request.url`) then reads the same.
 */
export function pinUrl(request: Request, target: Target) {
  Object.defineProperty(request, 'url', { value: `${target.scheme}//${ROUTER_HOST}${target.path}${target.query}`, configurable: true })
}
