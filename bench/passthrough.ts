/**
 * The floor of our design: a minimal Bun.serve + fetch pass-through to one backend, nothing
 * else. Benchmarks run it beside llamactl; what llamactl adds beyond it is ours to remove.
 * usage: bun bench/passthrough.ts <backend-base-url>   (prints "listening <port>")
 */
const base = process.argv[2]!
const server = Bun.serve({
  hostname: '127.0.0.1',
  port: 0,
  idleTimeout: 0,
  async fetch(req) {
    const url = new URL(req.url)
    const res = await fetch(base + url.pathname + url.search, {
      method: req.method,
      headers: req.headers,
      body: req.body,
      signal: req.signal,
      decompress: false,
    } as RequestInit)
    return new Response(res.body, { status: res.status, headers: res.headers })
  },
})
console.log(`listening ${server.port}`)
