/** An Observer that notes status, time to first byte (and a stream's first token) and token usage for the metrics. */
import { StreamUsage, type Usage, usageOfBody } from '../metrics/usage'
import type { Observer } from './forward'

/** A stream event with generated text: OpenAI's delta content, a completion's text. */
const CONTENT = /"(content|text)":"[^"]/

export function watchResponse(): Observer & { status: number; headersAt: number; firstTokenAt: number; usage(): Usage | null } {
  let stream: StreamUsage | null = null
  let body: Uint8Array | null = null
  return {
    status: 0,
    headersAt: 0,
    firstTokenAt: 0,
    headers(status, contentType) {
      this.status = status
      this.headersAt = performance.now()
      if (contentType?.includes('text/event-stream')) stream = new StreamUsage()
    },
    chunk(c) {
      if (!stream) return
      stream.push(c)
      // Looked for only until found: the first events of a stream, then never again.
      if (!this.firstTokenAt && CONTENT.test(Buffer.from(c.buffer, c.byteOffset, c.byteLength).toString('latin1'))) this.firstTokenAt = performance.now()
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
