/**
 * A delaying TCP relay for the multi-host suite (`tc netem` is not in this kernel): listens on
 * LISTEN_HOST (port 0: a free one), and for each connection opens one to TARGET_HOST:TARGET_PORT
 * and copies bytes both ways, one chunk at a time in each direction: a chunk is passed on
 * DELAY_MS after it arrived and the chunk before it was passed on (a slow link, not a parallel
 * delay line). Chunks larger than MAX_CHUNK bytes (0: no limit) are cut into pieces of at most
 * that many, each held on its own, so a fast answer becomes a slow trickle. Order is kept in
 * each direction.
 *
 *   bun test/nodes/relay.ts LISTEN_HOST TARGET_HOST TARGET_PORT DELAY_MS [MAX_CHUNK]
 *
 * It prints `listening PORT`, then one line per event, which the harness reads:
 *   held CONN DIR SEQ BYTES AT       a piece arrived (DIR: up = client → target, down = target → client)
 *   released CONN DIR SEQ BYTES HELD_MS
 *   closed CONN
 * No content is ever printed. SIGTERM ends it.
 */
import { connect, createServer, type Socket } from 'node:net'

const [listenHost, targetHost, targetPortText, delayText, maxChunkText = '0'] = process.argv.slice(2)
const targetPort = Number(targetPortText)
const delay = Number(delayText)
const maxChunk = Number(maxChunkText)
if (!listenHost || !targetHost || !Number.isInteger(targetPort) || !(delay >= 0) || !(maxChunk >= 0)) {
  console.error('usage: bun test/nodes/relay.ts LISTEN_HOST TARGET_HOST TARGET_PORT DELAY_MS [MAX_CHUNK]')
  process.exit(2)
}

const say = (line: string) => process.stdout.write(`${line}\n`)
let conns = 0

/** Copies `from` to `to`, holding each piece `delay` ms; a piece is released only after the one before it. */
function pipe(conn: number, dir: 'up' | 'down', from: Socket, to: Socket): () => Promise<void> {
  let seq = 0
  let last = Promise.resolve()
  const hold = (piece: Buffer) => {
    const n = seq++
    const at = performance.now()
    say(`held ${conn} ${dir} ${n} ${piece.length} ${at.toFixed(3)}`)
    // held `delay` after the piece before it went: a slow link, one piece at a time
    last = last.then(async () => {
      await Bun.sleep(delay)
      if (to.destroyed) return
      to.write(piece)
      say(`released ${conn} ${dir} ${n} ${piece.length} ${(performance.now() - at).toFixed(3)}`)
    })
  }
  from.on('data', (chunk: Buffer) => {
    if (maxChunk > 0) for (let i = 0; i < chunk.length; i += maxChunk) hold(chunk.subarray(i, i + maxChunk))
    else hold(chunk)
  })
  // the end of one side reaches the other after what was held before it
  from.on('end', () => {
    last = last.then(() => {
      if (!to.destroyed) to.end()
    })
  })
  return () => last
}

const server = createServer((client) => {
  const conn = conns++
  const upstream = connect({ host: targetHost, port: targetPort })
  const close = () => {
    if (client.destroyed && upstream.destroyed) return
    client.destroy()
    upstream.destroy()
    say(`closed ${conn}`)
  }
  client.on('error', close)
  upstream.on('error', close)
  const upHeld = pipe(conn, 'up', client, upstream)
  const downHeld = pipe(conn, 'down', upstream, client)
  // a side that closes is closed on the other once what it sent before has been passed on
  client.on('close', () => void upHeld().then(close))
  upstream.on('close', () => void downHeld().then(close))
})

server.listen(0, listenHost, () => {
  const addr = server.address()
  say(`listening ${typeof addr === 'object' && addr ? addr.port : '?'}`)
})
process.on('SIGTERM', () => process.exit(0))
