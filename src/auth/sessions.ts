/**
 * Browser sessions for the admin page: signing in with a management key gives an HttpOnly,
 * SameSite=Strict cookie; state-changing requests must also carry the session's CSRF token.
 * Sessions live in memory: a restart of llamactl signs everyone out.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto'
import { hashKey } from './keys'

export const SESSION_COOKIE = 'llamactl_session'
const TTL_MS = 12 * 60 * 60 * 1000

export interface Session {
  csrf: string
  expires: number
}

export class Sessions {
  private byHash = new Map<string, Session>()

  /** A new session: the cookie value and its CSRF token. */
  create(): { id: string; session: Session } {
    this.sweep()
    const id = randomBytes(32).toString('base64url')
    const session = { csrf: randomBytes(24).toString('base64url'), expires: Date.now() + TTL_MS }
    this.byHash.set(hashKey(id), session)
    return { id, session }
  }

  get(id: string | undefined): Session | null {
    if (!id) return null
    const s = this.byHash.get(hashKey(id))
    if (!s) return null
    if (s.expires <= Date.now()) {
      this.byHash.delete(hashKey(id))
      return null
    }
    return s
  }

  end(id: string | undefined) {
    if (id) this.byHash.delete(hashKey(id))
  }

  private sweep() {
    const now = Date.now()
    for (const [k, s] of this.byHash) if (s.expires <= now) this.byHash.delete(k)
  }
}

export function csrfMatches(session: Session, token: string | null): boolean {
  if (!token) return false
  const a = Buffer.from(session.csrf)
  const b = Buffer.from(token)
  return a.length === b.length && timingSafeEqual(a, b)
}

export function readCookie(header: string | null, name: string): string | undefined {
  if (!header) return undefined
  for (const part of header.split(';')) {
    const eq = part.indexOf('=')
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim()
  }
  return undefined
}
