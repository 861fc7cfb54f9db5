/** The path and query of a request URL as sent (still percent-encoded), without parsing a URL object. */
export function splitUrl(url: string): { path: string; query: string } {
  const start = url.indexOf('/', url.indexOf('//') + 2)
  const q = url.indexOf('?', start)
  return q === -1 ? { path: url.slice(start), query: '' } : { path: url.slice(start, q), query: url.slice(q) }
}
