/**
 * Signing the page in and out: POST /ui/login with a management key (form field `key`) sets the
 * session cookie; POST /ui/logout ends it. The page builds on these.
 */
import { Elysia } from 'elysia'
import type { KeyRing } from '../auth/keys'
import { readCookie, SESSION_COOKIE, type Sessions } from '../auth/sessions'
import { readBody } from './body'
import { failed, refuseUnchecked } from './throttle'
import { doc } from './openapi'

/**
 * The cookie goes to the page's own routes only (Path=/ui): browsers never send it to the API,
 * and so never to a backend's pages under /api/v1/instances/{name}/proxy/.
 */
const SESSION_PATH = '/ui'

function cookie(value: string, maxAge: number, secure: boolean, path = SESSION_PATH) {
  return `${SESSION_COOKIE}=${value}; Path=${path}; HttpOnly; SameSite=Strict; Max-Age=${maxAge}${secure ? '; Secure' : ''}`
}

export function sessionRoutes(keys: KeyRing, sessions: Sessions) {
  return new Elysia({ name: 'session' }).guard({ parse: 'none' }, (app) =>
    app
      .post('/ui/login', async ({ request }) => {
        const refused = refuseUnchecked(request, keys.failures)
        if (refused) return refused
        const form = new URLSearchParams(new TextDecoder().decode(await readBody(request, 16 * 1024)))
        const principal = keys.authenticate(form.get('key') ?? '')
        const secure = request.url.startsWith('https:')
        if (!principal || principal.kind !== 'management') {
          // counted per address with wrong Bearer keys; past the limit, a 429 (throttle.ts)
          return failed(request, keys.failures, new Response(null, { status: 303, headers: { location: '/ui/login?error=1' } }))
        }
        const { id } = sessions.create()
        return new Response(null, { status: 303, headers: { location: '/ui', 'set-cookie': cookie(id, 12 * 3600, secure) } })
      }, {
        detail: doc({
          summary: 'Sign the admin page in with a management key (form field `key`)',
          tag: 'Page',
          auth: 'none',
          ok: [303, null],
          description: 'Answers 303 to /ui with an HttpOnly, SameSite=Strict session cookie, or to /ui/login?error=1.',
        }),
      })
      .post('/ui/logout', ({ request }) => {
        sessions.end(readCookie(request.headers.get('cookie'), SESSION_COOKIE))
        const headers = new Headers({ location: '/ui/login' })
        headers.append('set-cookie', cookie('', 0, false))
        // and the cookie of an older version, which had Path=/
        headers.append('set-cookie', cookie('', 0, false, '/'))
        return new Response(null, { status: 303, headers })
      }, { detail: doc({ summary: 'Sign the admin page out', tag: 'Page', auth: 'none', ok: [303, null] }) }),
  )
}
