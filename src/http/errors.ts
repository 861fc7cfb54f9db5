/**
 * The one place that turns errors into HTTP responses: every error, the framework's own
 * included, leaves as {"error": "..."} with the right status.
 */
import { AppError } from '../errors'

export function errorResponse(status: number, message: string, headers?: Record<string, string>): Response {
  return new Response(JSON.stringify({ error: message }), {
    status,
    headers: { 'content-type': 'application/json', ...headers },
  })
}

/** Maps anything thrown in a handler (or by Elysia) to a response. */
export function mapError(code: string | number, error: unknown, request: Request): Response {
  if (error instanceof AppError) return errorResponse(error.status, error.message, error.headers)
  switch (code) {
    case 'NOT_FOUND':
      return errorResponse(404, `no route for ${request.method} ${new URL(request.url).pathname}`)
    case 'PARSE':
      return errorResponse(400, 'the request body is not valid JSON')
    case 'VALIDATION':
      return errorResponse(400, (error as Error).message)
  }
  console.error('llamactl: internal error:', error)
  return errorResponse(500, 'internal error; see the llamactl log')
}
