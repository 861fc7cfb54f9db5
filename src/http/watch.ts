/** An Observer that notes status, time to first byte and token usage for the metrics. */
import { StreamUsage, type Usage, usageOfBody } from '../metrics/usage'
import type { Observer } from './forward'

export function watchResponse(): Observer & { status: number; headersAt: number; usage(): Usage | null } {
  let stream: StreamUsage | null = null
  let body: Uint8Array | null = null
  return {
    status: 0,
    headersAt: 0,
    headers(status, contentType) {
      this.status = status
      this.headersAt = performance.now()
      if (contentType?.includes('text/event-stream')) stream = new StreamUsage()
    },
    chunk(c) {
      stream?.push(c)
    },
    body(b) {
      body = b
    },
    // A stream that broke after its headers is counted by what the client got, not the 200 it began with.
    broken(status) {
      this.status = status
    },
    // Parsed later, off the response's path.
    usage() {
      return stream ? stream.usage : body ? usageOfBody(body) : null
    },
  }
}
