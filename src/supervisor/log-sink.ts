/**
 * One instance's log: every line to a file with size rotation and a cap on kept files, and
 * the last lines in memory for the logs endpoint. Input arrives as raw chunks from the
 * backend's pipes; a line of any length is written whole to the file and kept in memory
 * cut to MAX_TAIL_LINE, so a runaway line never blocks the backend or eats memory.
 */
import { closeSync, existsSync, fstatSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs'
import { dirname } from 'node:path'

export const MAX_TAIL_LINE = 16 * 1024

/** Bytes queued for a log follower (the API's or the page's) that is not reading before it is dropped. */
export const FOLLOWER_QUEUE_LIMIT = 4 * 1024 * 1024

export interface LogSinkOptions {
  /** null: memory only. */
  file: string | null
  maxFileBytes: number
  maxFiles: number
  rotate: boolean
  tailLines: number
}

type Listener = (line: string) => void
interface Follower {
  line: Listener
  end?: () => void
}

export class LogSink {
  private fd: number | null = null
  private size = 0
  private ring: string[]
  private head = 0
  private count = 0
  private total = 0
  private partial: Record<'out' | 'err', string[]> = { out: [], err: [] }
  private partialLen: Record<'out' | 'err', number> = { out: 0, err: 0 }
  private spilled: Record<'out' | 'err', boolean> = { out: false, err: false }
  private listeners = new Set<Follower>()
  private decoder = { out: new TextDecoder(), err: new TextDecoder() }

  constructor(private opts: LogSinkOptions) {
    // Grows as lines come, up to tailLines: a thousand quiet instances cost next to nothing.
    this.ring = []
    if (opts.file) {
      try {
        mkdirSync(dirname(opts.file), { recursive: true })
        this.open()
      } catch (e) {
        // A read-only or full disk must not stop the instance: its log stays in memory.
        this.note(`cannot write the log file (${(e as Error).message}); keeping the log in memory only`)
      }
    }
  }

  private open() {
    this.fd = openSync(this.opts.file!, 'a', 0o640)
    this.size = fstatSync(this.fd).size
  }

  /** Feeds raw bytes from stdout ('out') or stderr ('err'). */
  write(stream: 'out' | 'err', chunk: Uint8Array) {
    const text = this.decoder[stream].decode(chunk, { stream: true })
    let start = 0
    for (;;) {
      const nl = text.indexOf('\n', start)
      if (nl === -1) break
      this.pushPiece(stream, text.slice(start, nl))
      this.endLine(stream)
      start = nl + 1
    }
    if (start < text.length) this.pushPiece(stream, text.slice(start))
  }

  /** A line written by llamactl itself (start, exit, restart), marked so users can tell. */
  note(message: string) {
    this.emit(`[llamactl] ${new Date().toISOString()} ${message}`)
  }

  /** Flushes half-written lines (the process ended). */
  flush() {
    for (const s of ['out', 'err'] as const) if (this.partialLen[s] > 0 || this.spilled[s]) this.endLine(s)
  }

  private pushPiece(stream: 'out' | 'err', piece: string) {
    if (!piece) return
    if (this.spilled[stream]) {
      // Already streaming this long line to the file: write through, keep nothing more in memory.
      this.writeFile(piece)
      return
    }
    if (this.partialLen[stream] + piece.length > MAX_TAIL_LINE) {
      const soFar = this.partial[stream].join('')
      this.writeFile(soFar + piece)
      this.partial[stream] = [(soFar + piece.slice(0, MAX_TAIL_LINE)).slice(0, MAX_TAIL_LINE)]
      this.spilled[stream] = true
      return
    }
    this.partial[stream].push(piece)
    this.partialLen[stream] += piece.length
  }

  private endLine(stream: 'out' | 'err') {
    const spilled = this.spilled[stream]
    let line = this.partial[stream].join('')
    if (line.endsWith('\r')) line = line.slice(0, -1)
    this.partial[stream] = []
    this.partialLen[stream] = 0
    this.spilled[stream] = false
    if (spilled) {
      this.writeFile('\n')
      this.remember(`${line} … [line cut in memory; whole in the log file]`)
    } else {
      this.emit(line)
    }
  }

  private emit(line: string) {
    this.writeFile(`${line}\n`)
    this.remember(line)
  }

  private remember(line: string) {
    const cap = this.opts.tailLines
    if (this.ring.length < cap) this.ring.push(line)
    else this.ring[(this.head + this.count) % cap] = line
    if (this.count < cap) this.count++
    else this.head = (this.head + 1) % cap
    this.total++
    for (const l of this.listeners) l.line(line)
  }

  private writeFile(text: string) {
    if (this.fd === null) return
    const bytes = Buffer.from(text)
    if (this.opts.rotate && this.size > 0 && this.size + bytes.length > this.opts.maxFileBytes) this.rotate()
    if (this.fd === null) return
    try {
      writeSync(this.fd, bytes)
      this.size += bytes.length
    } catch {
      // A full disk must not take the backend down with it; the in-memory tail still works.
    }
  }

  private rotate() {
    const file = this.opts.file!
    closeSync(this.fd!)
    this.fd = null
    let rotated = true
    try {
      rmSync(`${file}.${this.opts.maxFiles}`, { force: true })
      for (let i = this.opts.maxFiles - 1; i >= 1; i--) {
        if (existsSync(`${file}.${i}`)) renameSync(`${file}.${i}`, `${file}.${i + 1}`)
      }
      renameSync(file, `${file}.1`)
    } catch {
      rotated = false
    }
    try {
      this.open()
    } catch {
      return // the file cannot be opened again: memory only from here
    }
    // Could not rotate (a read-only folder): go on appending, and try again after another maxFileBytes.
    if (!rotated) this.size = 0
  }

  /** The last n lines (all kept lines when n is undefined or negative). */
  tail(n?: number): string[] {
    const take = n === undefined || n < 0 ? this.count : Math.min(n, this.count)
    const out: string[] = []
    for (let i = this.count - take; i < this.count; i++) out.push(this.ring[(this.head + i) % this.opts.tailLines]!)
    return out
  }

  /** Lines kept since the sink was made: a cursor for since(). */
  get written(): number {
    return this.total
  }

  /**
   * The lines after cursor `after` (a value of `written`) that are still in memory, and how
   * many in between are no longer kept. A cursor from another sink (larger than `written`)
   * counts from the start.
   */
  since(after: number): { lines: string[]; missed: number } {
    const from = after > this.total || after < 0 ? 0 : after
    const wanted = this.total - from
    const lines = this.tail(wanted)
    return { lines, missed: wanted - lines.length }
  }

  /** Calls `line` for every new line; `end` when the log closes (the instance was deleted). */
  subscribe(line: Listener, end?: () => void): () => void {
    const f = { line, end }
    this.listeners.add(f)
    return () => this.listeners.delete(f)
  }

  close() {
    this.flush()
    for (const l of this.listeners) l.end?.()
    this.listeners.clear()
    if (this.fd !== null) closeSync(this.fd)
    this.fd = null
  }
}
