/**
 * Signing the page in and out: POST /ui/login with a management key (form field `key`) sets the
 * session cookie; POST /ui/logout ends it. The page (issue 6) builds on these.
 */
import { Elysia } from 'elysia'
import type { KeyRing } from '../auth/keys'
import { readCookie, SESSION_COOKIE, type Sessions } from '../auth/sessions'
import { readBody } from './body'
import { doc } from './openapi'

function cookie(value: string, maxAge: number, secure: boolean) {
  return `${SESSION_COOKIE}=${value}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAge}${secure ? '; Secure' : ''}`
}

export function sessionRoutes(keys: KeyRing, sessions: Sessions) {
  return new Elysia({ name: 'session' }).guard({ parse: 'none' }, (app) =>
    app
      .post('/ui/login', async ({ request }) => {
        const form = new URLSearchParams(new TextDecoder().decode(await readBody(request, 16 * 1024)))
        const principal = keys.authenticate(form.get('key') ?? '')
        const secure = request.url.startsWith('https:')
        if (!principal || principal.kind !== 'management') {
          return new Response(null, { status: 303, headers: { location: '/ui/login?error=1' } })
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
        return new Response(null, { status: 303, headers: { location: '/ui/login', 'set-cookie': cookie('', 0, false) } })
      }, { detail: doc({ summary: 'Sign the admin page out', tag: 'Page', auth: 'none', ok: [303, null] }) }),
  )
}
