/**
 * One server-sent-events stream of the page: the heartbeat that also ends it when it is no
 * longer wanted (the session ended, what it follows is gone), a bound on what a client that
 * stops reading may leave queued, and the end when the client goes away, whichever comes first.
 */
import { FOLLOWER_QUEUE_LIMIT } from '../supervisor/log-sink'
import { unlimited } from './timeouts'

export interface EventStream {
  /** Checked every heartbeat (15 s): false ends the stream. */
  alive(): boolean
  /**
   * Sends what is there and subscribes to what comes; answers what to undo at the end.
   * `end` ends the stream from inside (as when `alive` turns false).
   */
  open(send: (chunk: string) => void, end: () => void): () => void
  /** A client that stops reading past the limit is ended with this error; without one, the stream is closed. */
  dropped?: string
}

export function eventStream(request: Request, s: EventStream): Response {
  unlimited(request)
  const enc = new TextEncoder()
  let stop: (dropped?: Error) => void = () => {}
  const body = new ReadableStream<Uint8Array>({
    start(ctrl) {
      let closed = false
      let undo: () => void = () => {}
      const send = (chunk: string) => {
        if (closed) return
        // A client that stopped reading is dropped rather than queued for without bound; its
        // EventSource reconnects when it reads again.
        if ((ctrl.desiredSize ?? 0) < -FOLLOWER_QUEUE_LIMIT) return stop(s.dropped ? new Error(s.dropped) : undefined)
        try {
          ctrl.enqueue(enc.encode(chunk))
        } catch {
          stop()
        }
      }
      const onAbort = () => stop()
      let heartbeat: ReturnType<typeof setInterval> | undefined
      stop = (dropped?: Error) => {
        if (closed) return
        closed = true
        undo()
        clearInterval(heartbeat)
        request.signal.removeEventListener('abort', onAbort)
        try {
          if (dropped) ctrl.error(dropped)
          else ctrl.close()
        } catch {
          // already closed by the client
        }
      }
      send('retry: 2000\n\n')
      undo = s.open(send, () => stop())
      if (closed) undo()
      heartbeat = setInterval(() => {
        if (!s.alive()) stop()
        else send(': keep-alive\n\n')
      }, 15000)
      request.signal.addEventListener('abort', onAbort)
      if (request.signal.aborted) stop()
    },
    cancel() {
      stop()
    },
  }, { highWaterMark: 0, size: (chunk) => chunk?.byteLength ?? 0 })
  return new Response(body, {
    headers: { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no' },
  })
}
