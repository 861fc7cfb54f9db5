/**
 * Forwarding one request to a backend with Bun's fetch: hop-by-hop headers removed, the body
 * and the response streamed through untouched (no decompression, no buffering), the upstream
 * request aborted the moment the client goes away, and no timeout on slow first tokens.
 */
import { BadGateway } from '../errors'
import type { ReplyRewrite } from './model-rewrite'
import { noteProgress } from '../supervisor/liveness'

/** Responses up to this size with a Content-Length are read whole before being sent on. */
const SMALL_RESPONSE = 256 * 1024

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
  'content-length',
])

/** Request headers for the backend: hop-by-hop and llamactl's own credentials removed. */
export function upstreamHeaders(incoming: Headers, backendKey: string | null): Headers {
  // Copying all and deleting the few is cheaper than appending each one we keep.
  const out = new Headers(incoming)
  for (const k of connectionTokens(incoming)) out.delete(k)
  for (const k of HOP_BY_HOP) out.delete(k)
  out.delete('authorization')
  out.delete('cookie')
  if (backendKey) out.set('authorization', `Bearer ${backendKey}`)
  return out
}

function connectionTokens(h: Headers): string[] {
  const c = h.get('connection')
  return c ? c.split(',').map((t) => t.trim().toLowerCase()) : []
}

/**
 * Every forwarded answer is a sandboxed document: a page a backend serves (llama-server's web
 * UI, or anything a backend chooses to send) is shown at llamactl's own address, so without this
 * its script would act with the admin page's session (read /ui and its CSRF token, stop or
 * create instances). `sandbox` without `allow-same-origin` gives it an opaque origin: scripts,
 * forms and popups still work, but it is no longer llamactl's origin, so it reads nothing of
 * llamactl's, sends no SameSite cookie and has no storage or service worker there.
 */
export const PROXY_CSP = 'sandbox allow-scripts allow-forms allow-popups allow-modals allow-downloads'

/** Answer headers a backend may not set on llamactl's origin (they would reach the admin page). */
const ORIGIN_WIDE = ['set-cookie', 'set-cookie2', 'clear-site-data']

export function responseHeaders(upstream: Headers, extra: Record<string, string>): Headers {
  const out = new Headers(upstream)
  for (const k of connectionTokens(upstream)) if (k !== 'content-length') out.delete(k)
  // content-length is kept: the body passes through unchanged, so it stays true.
  for (const k of HOP_BY_HOP) if (k !== 'content-length') out.delete(k)
  for (const k of ORIGIN_WIDE) out.delete(k)
  // Tell nginx (and friends) in front of llamactl not to buffer streams either.
  out.set('x-accel-buffering', 'no')
  for (const k in extra) out.set(k, extra[k]!)
  // Appended last, so neither the backend's own policy nor response_headers can replace it
  // (a browser enforces every Content-Security-Policy header it gets).
  out.append('content-security-policy', PROXY_CSP)
  return out
}

export interface ForwardOptions {
  /** The backend's base, e.g. http://127.0.0.1:8001; the target must stay on it. */
  base: string
  /** Path and query to request on the backend, starting with '/'. */
  pathAndQuery: string
  method: string
  headers: Headers
  body: BodyInit | Uint8Array | null
  signal: AbortSignal
  extraResponseHeaders: Record<string, string>
  /** Called once when the response has been fully sent, failed, or the client went away. */
  onDone: () => void
  /** Sees the response as it passes (metrics): never delays or changes it. */
  observe?: Observer
  /** Changes the response body on its way (the /v1 model name), given the backend's headers; null or absent: untouched. */
  rewrite?: (headers: Headers) => ReplyRewrite | null
  /** For an https:// upstream (a remote node): the CA bundle it is checked against. */
  tls?: { ca: string }
}

export interface Observer {
  headers(status: number, contentType: string | null): void
  /** A chunk of a streamed response, after it was handed on. */
  chunk(chunk: Uint8Array): void
  /** A small response read whole. */
  body(bytes: Uint8Array): void
  /** The stream broke: the backend went away (502) or the client did (499). */
  broken(status: 499 | 502): void
}

/**
 * Builds the backend URL; refuses anything that would leave the backend's host and port.
 * `base` is an origin (scheme, host, port; no path), as Instance.upstream gives it.
 */
export function targetUrl(base: string, pathAndQuery: string): URL {
  if (!pathAndQuery.startsWith('/')) pathAndQuery = `/${pathAndQuery}`
  const url = new URL(base + pathAndQuery)
  if (url.origin !== base) throw new BadGateway('the proxied path would leave the instance')
  return url
}

/** Forwards the request; calls onDone exactly once, whatever happens. */
export async function forward(o: ForwardOptions): Promise<Response> {
  let done = false
  const finish = () => {
    if (!done) {
      done = true
      o.onDone()
    }
  }
  let upstream: Response
  const send = () =>
    fetch(targetUrl(o.base, o.pathAndQuery), {
      method: o.method,
      headers: o.headers,
      body: o.body as BodyInit | null,
      signal: o.signal,
      redirect: 'manual',
      decompress: false,
      ...(o.tls && { tls: o.tls }),
    } as RequestInit)
  try {
    try {
      upstream = await send()
    } catch (e) {
      // A pooled connection the backend closed as it was reused (llama-server does so now and
      // then): Bun retries no POST, so a body that can be sent again gets one more try.
      const replayable = o.body === null || o.body instanceof Uint8Array || typeof o.body === 'string'
      if (o.signal.aborted || !replayable || !String((e as Error)?.message).startsWith('ECONNRESET')) throw e
      upstream = await send()
    }
  } catch (e) {
    finish()
    if (e instanceof BadGateway) throw e
    if (o.signal.aborted) return new Response(null, { status: 499 })
    throw new BadGateway(`the instance could not be reached: ${(e as Error).message}`)
  }
  o.observe?.headers(upstream.status, upstream.headers.get('content-type'))
  const headers = responseHeaders(upstream.headers, o.extraResponseHeaders)
  const rewrite = o.rewrite?.(upstream.headers) ?? null
  if (!upstream.body) {
    finish()
    return new Response(null, { status: upstream.status, statusText: upstream.statusText, headers })
  }
  // A small response of known length (a chat completion, /health) is read whole: the backend's
  // part is then over, and handing Bun the bytes is cheaper than a stream. Streams and large
  // bodies pass chunk by chunk.
  const length = Number(upstream.headers.get('content-length') ?? Number.NaN)
  if (length <= SMALL_RESPONSE) {
    try {
      let bytes: Uint8Array = await upstream.bytes()
      noteProgress(o.base)
      if (rewrite) {
        bytes = rewrite.whole(bytes)
        headers.set('content-length', String(bytes.length))
      }
      o.observe?.body(bytes)
      // The request's end (its lease released, its usage read, the scheduler told) is noted
      // once the answer is on its way, not before it: off the answer's path.
      setImmediate(finish)
      return new Response(bytes as Uint8Array<ArrayBuffer>, { status: upstream.status, statusText: upstream.statusText, headers })
    } catch (e) {
      o.observe?.broken(o.signal.aborted ? 499 : 502)
      finish()
      if (o.signal.aborted) return new Response(null, { status: 499 })
      throw new BadGateway(`the instance closed the connection mid-response: ${(e as Error).message}`)
    }
  }
  // A rewritten stream's length is no longer the backend's.
  if (rewrite) headers.delete('content-length')
  // Watch the body only to know when it ends; chunks pass as they arrive.
  const reader = upstream.body.getReader()
  const body = new ReadableStream<Uint8Array>({
    async pull(ctrl) {
      try {
        // Bounded by the stream: a rewrite may hold a chunk that ends mid-line, then read on.
        for (;;) {
          const { done: end, value } = await reader.read()
          // Bytes flowing: the backend is alive, however slowly it answers its health checks.
          noteProgress(o.base)
          if (end) {
            const rest = rewrite?.end()
            if (rest?.length) ctrl.enqueue(rest)
            ctrl.close()
            // As above: the request's end is noted after its last bytes are on their way.
            setImmediate(finish)
            return
          }
          const out = rewrite ? rewrite.chunk(value) : value
          if (out.length) {
            ctrl.enqueue(out)
            o.observe?.chunk(out)
            return
          }
        }
      } catch (e) {
        o.observe?.broken(o.signal.aborted ? 499 : 502)
        finish()
        ctrl.error(e)
      }
    },
    cancel(reason) {
      o.observe?.broken(499)
      finish()
      return reader.cancel(reason)
    },
  })
  o.signal.addEventListener(
    'abort',
    () => {
      if (!done) o.observe?.broken(499)
      finish()
    },
    { once: true },
  )
  return new Response(body, { status: upstream.status, statusText: upstream.statusText, headers })
}
