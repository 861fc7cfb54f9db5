/**
 * Slow clients: the server's idle timeout (server.idle_timeout) cuts connections that send
 * nothing, but a request that is legitimately waiting (a model loading, a slow first token, a
 * long stream) must never be cut. Handlers call unlimited() once the request is authenticated
 * and its body read.
 */
import type { Server } from 'bun'

const servers = new WeakMap<Request, Server<unknown>>()

export function bindServer(request: Request, server: Server<unknown>) {
  servers.set(request, server)
}

/** The client's address as the socket gives it (no header is trusted); null without a socket (tests). */
export function clientAddress(request: Request): string | null {
  return servers.get(request)?.requestIP(request)?.address ?? null
}

/** No idle timeout for this request from now on. */
export function unlimited(request: Request) {
  servers.get(request)?.timeout(request, 0)
}
