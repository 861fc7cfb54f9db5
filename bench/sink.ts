/**
 * A backend that reads every request body and throws it away: stands in for a model server in
 * the large-body benchmark, so the figure is llamactl's memory and not a backend parsing JSON.
 * usage: bun bench/sink.ts ... --port N ...   (llama-server's arguments; only --port is read)
 */
const args = process.argv.slice(2)
const port = Number(args[args.indexOf('--port') + 1])
Bun.serve({
  hostname: '127.0.0.1',
  port,
  idleTimeout: 0,
  maxRequestBodySize: 2 ** 31,
  async fetch(req) {
    const { pathname } = new URL(req.url)
    if (pathname === '/health') return Response.json({ status: 'ok' })
    let bytes = 0
    if (req.body) for await (const c of req.body) bytes += c.byteLength
    return Response.json({ ok: true, bytes })
  },
})
console.log(`sink listening on ${port}`)
process.on('SIGTERM', () => process.exit(0))
