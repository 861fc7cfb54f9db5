/**
 * The one way a request reaches a backend: through the lease the manager granted (/v1 and the
 * instance proxy alike). The lease is released exactly once, when the answer has been sent,
 * has failed or the client went away, with what the metrics need.
 */
import type { Lease } from '../instances/lease'
import { forward, upstreamHeaders, type ForwardOptions } from './forward'
import { watchResponse } from './watch'

export function forwardLeased(
  lease: Lease,
  request: Request,
  pathAndQuery: string,
  method: string,
  body: BodyInit | Uint8Array | null,
  rewrite?: ForwardOptions['rewrite'],
): Promise<Response> {
  const watch = watchResponse()
  return forward({
    base: lease.upstream,
    pathAndQuery,
    method,
    headers: upstreamHeaders(request.headers, lease.backendKey),
    body,
    signal: request.signal,
    extraResponseHeaders: lease.headers,
    observe: watch,
    rewrite,
    onDone: () => lease.release(watch.status || (request.signal.aborted ? 499 : 502), watch.headersAt, watch.usage(), watch.firstTokenAt),
  })
}
