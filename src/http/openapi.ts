/**
 * The OpenAPI document, built from the routes the app registers and the TypeBox schemas their
 * handlers validate with (attached to each route as `detail`), so it cannot drift from the code.
 * Served with a Swagger UI whose assets come from the swagger-ui-dist npm package, embedded in
 * the binary: the docs page loads nothing from another host.
 */
import { type TSchema, Type as T } from '@sinclair/typebox'
import { Elysia } from 'elysia'
import swaggerCss from 'swagger-ui-dist/swagger-ui.css' with { type: 'text' }
import swaggerJs from 'swagger-ui-dist/swagger-ui-bundle.js' with { type: 'text' }
import { BUILD } from '../version'

export const ErrorSchema = T.Object({ error: T.String({ description: 'what was wrong, and what to do' }) }, { $id: 'Error' })

const STATUS_TEXT: Record<number, string> = {
  200: 'OK',
  201: 'Created',
  204: 'No Content',
  303: 'See Other',
  400: 'Bad request: invalid name, parameters or body',
  401: 'No valid API key',
  403: 'The key may not do this',
  404: 'Not found',
  409: 'Conflict: name taken or an instance limit reached',
  413: 'Body too large',
  500: 'The backend failed to start or run, or the change could not be saved (a read-only database)',
  502: 'The backend could not be reached',
  507: 'The disk holding the database is full: the change was not saved',
  503: 'The instance is not running or could not be started in time',
}

export interface RouteDoc {
  summary: string
  tag: string
  /** JSON request body schema. */
  body?: TSchema
  /** Success: a status and either a JSON schema, 'text', 'html', 'stream' or null (no body). */
  ok: [number, TSchema | 'text' | 'html' | 'stream' | 'any' | null]
  errors?: number[]
  description?: string
  /** Public routes have no security requirement. */
  auth?: 'management' | 'inference' | 'none'
  query?: Record<string, string>
}

/** The `detail` for a route: an OpenAPI operation object (typed loosely; buildOpenApi reads it back as JSON). */
export function doc(d: RouteDoc): any {
  const content = (kind: RouteDoc['ok'][1]) => {
    if (kind === null) return undefined
    if (kind === 'text') return { 'text/plain': { schema: { type: 'string' } } }
    if (kind === 'html') return { 'text/html': { schema: { type: 'string' } } }
    if (kind === 'stream') return { 'text/event-stream': { schema: { type: 'string' } }, 'application/json': { schema: {} } }
    if (kind === 'any') return { '*/*': { schema: {} } }
    return { 'application/json': { schema: strip(kind) } }
  }
  const responses: Record<string, unknown> = {
    [d.ok[0]]: { description: STATUS_TEXT[d.ok[0]] ?? 'OK', content: content(d.ok[1]) },
  }
  const auth = d.auth ?? 'management'
  const errors = [...new Set([...(auth === 'none' ? [] : [401, 403]), ...(d.errors ?? [])])]
  for (const code of errors) {
    responses[code] = { description: STATUS_TEXT[code] ?? 'Error', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } }
  }
  return {
    summary: d.summary,
    description: d.description,
    tags: [d.tag],
    security: auth === 'none' ? [] : [{ [auth === 'management' ? 'managementKey' : 'inferenceKey']: [] }],
    requestBody: d.body ? { required: true, content: { 'application/json': { schema: strip(d.body) } } } : undefined,
    parameters: d.query
      ? Object.entries(d.query).map(([name, description]) => ({ name, in: 'query', required: false, description, schema: { type: 'string' } }))
      : undefined,
    responses,
  }
}

/** A JSON Schema copy without TypeBox's symbol keys. */
function strip(schema: TSchema): unknown {
  return JSON.parse(JSON.stringify(schema))
}

const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS']

/**
 * Every registered route, as OpenAPI. A route's `detail`, else what `fallback` says of it
 * (the page keeps its routes' summaries in a table); anything else is listed as undocumented.
 */
export function buildOpenApi(app: Elysia<any, any, any, any, any, any, any>, fallback: (method: string, path: string) => unknown = () => undefined) {
  const paths: Record<string, Record<string, unknown>> = {}
  for (const route of app.routes) {
    const own = (route.hooks as { detail?: Record<string, unknown> } | undefined)?.detail
    const detail = own?.summary || own?.hide ? own : ((fallback(route.method, route.path) as Record<string, unknown> | undefined) ?? own)
    if (detail?.hide) continue
    const path = route.path
      .split('/')
      .map((s) => (s.startsWith(':') ? `{${s.slice(1)}}` : s === '*' ? '{path}' : s))
      .join('/')
    const params = [...path.matchAll(/\{(\w+)\}/g)].map((m) => ({
      name: m[1],
      in: 'path',
      required: true,
      schema: { type: 'string' },
      description: m[1] === 'path' ? 'the rest of the path, forwarded as is' : undefined,
    }))
    const methods = route.method === 'ALL' ? ['GET', 'POST', 'PUT', 'DELETE'] : [route.method]
    for (const m of methods) {
      if (!METHODS.includes(m)) continue
      const op = { ...(detail?.summary ? detail : { summary: 'undocumented', tags: ['undocumented'] }) } as Record<string, unknown>
      op.parameters = [...params, ...((op.parameters as unknown[]) ?? [])]
      paths[path] ??= {}
      paths[path]![m.toLowerCase()] = op
    }
  }
  return {
    openapi: '3.0.3',
    info: {
      title: 'llamactl',
      version: BUILD.version,
      description: 'Start, watch and stop local LLM servers; one OpenAI-compatible address for all of them.',
    },
    components: {
      securitySchemes: {
        managementKey: { type: 'http', scheme: 'bearer', description: 'a management key' },
        inferenceKey: { type: 'http', scheme: 'bearer', description: 'an inference or management key' },
      },
      schemas: { Error: strip(ErrorSchema) },
    },
    paths,
  }
}

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>llamactl API</title>
<link rel="stylesheet" href="/swagger/assets/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/swagger/assets/swagger-ui-bundle.js"></script>
<script src="/swagger/assets/init.js"></script>
</body>
</html>`

// validatorUrl: null keeps Swagger UI from asking an online validator about the document.
const INIT = `window.ui = SwaggerUIBundle({ url: '/swagger/json', dom_id: '#swagger-ui', validatorUrl: null, deepLinking: true, persistAuthorization: false })`

/** /swagger (the page), /swagger/json (the document) and the embedded assets. */
export function swaggerRoutes(documented: () => ReturnType<typeof buildOpenApi>) {
  const cache = { 'cache-control': 'public, max-age=86400' }
  const hide = { detail: { hide: true } }
  let spec: string | null = null
  return new Elysia({ name: 'swagger' })
    .get('/swagger', () => new Response(PAGE, { headers: { 'content-type': 'text/html; charset=utf-8' } }), hide)
    .get('/swagger/json', () => {
      spec ??= JSON.stringify(documented())
      return new Response(spec, { headers: { 'content-type': 'application/json' } })
    }, hide)
    .get('/swagger/assets/swagger-ui.css', () => new Response(swaggerCss, { headers: { 'content-type': 'text/css', ...cache } }), hide)
    .get('/swagger/assets/swagger-ui-bundle.js', () => new Response(swaggerJs, { headers: { 'content-type': 'text/javascript', ...cache } }), hide)
    .get('/swagger/assets/init.js', () => new Response(INIT, { headers: { 'content-type': 'text/javascript', ...cache } }), hide)
}
