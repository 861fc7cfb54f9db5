/**
 * One instance's log: every line to a file with size rotation and a cap on kept files, and
 * the last lines in memory for the logs endpoint. Input arrives as raw chunks from the
 * backend's pipes; a line of any length is written whole to the file and kept in memory
 * cut to MAX_TAIL_LINE, so a runaway line never blocks the backend or eats memory.
 *
 * The file is open only while the log is held (its backend runs: BackendProcess holds it from
 * spawn to exit); a line written at other times (llamactl's own notes about a stopped
 * instance) opens it, appends and closes it again. So a thousand defined instances hold no
 * file descriptor, only the running ones do.
 */
import { closeSync, createReadStream, createWriteStream, existsSync, fchmodSync, fstatSync, openSync, renameSync, rmSync, statSync, writeSync } from 'node:fs'
import { dirname } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { createGzip } from 'node:zlib'
import { makeDir, makePrivate, PRIVATE_FILE } from '../store/private'

export const MAX_TAIL_LINE = 16 * 1024

/** Bytes queued for a log follower (the API's or the page's) that is not reading before it is dropped. */
export const FOLLOWER_QUEUE_LIMIT = 4 * 1024 * 1024

export interface LogSinkOptions {
  /** null: memory only. */
  file: string | null
  maxFileBytes: number
  maxFiles: number
  rotate: boolean
  /** Gzip each rotated file (`.1.gz`, …), off the event loop. */
  compress?: boolean
  tailLines: number
}

/** The names one rotated file may have: plain, or compressed once its gzip has finished. */
export function rotatedNames(file: string, i: number): string[] {
  return [`${file}.${i}`, `${file}.${i}.gz`]
}

type Listener = (line: string) => void
interface Follower {
  line: Listener
  end?: () => void
}

export class LogSink {
  private fd: number | null = null
  private size = 0
  /** Backends running with this log: the file stays open while there is one. */
  private holds = 0
  /** The file could not be opened: memory only, until the next hold() tries again. */
  private fileFailed = false
  private closed = false
  private ring: string[]
  private head = 0
  private count = 0
  private total = 0
  private partial: Record<'out' | 'err', string[]> = { out: [], err: [] }
  private partialLen: Record<'out' | 'err', number> = { out: 0, err: 0 }
  private spilled: Record<'out' | 'err', boolean> = { out: false, err: false }
  private listeners = new Set<Follower>()
  private decoder = { out: new TextDecoder(), err: new TextDecoder() }
  private compressing = new Set<Promise<void>>()
  private gzipCount = 0

  constructor(private opts: LogSinkOptions) {
    // Grows as lines come, up to tailLines: a thousand quiet instances cost next to nothing.
    this.ring = []
    if (opts.file) {
      try {
        makeDir(dirname(opts.file))
        // Files an older llamactl left 0644 (rotated ones too) become private.
        for (let i = 1; i <= opts.maxFiles; i++) for (const name of rotatedNames(opts.file, i)) makePrivate(name)
        // Tried once now, so a folder that cannot be written is said at once, then closed.
        this.open()
        this.closeFile()
      } catch (e) {
        this.fileUnavailable(e as Error)
      }
    }
  }

  /** A backend starts writing here: the file stays open until release(). */
  hold() {
    this.holds++
    this.fileFailed = false
  }

  /** The backend has exited: the file is closed unless another still holds it. */
  release() {
    if (this.holds > 0) this.holds--
    if (this.holds === 0) this.closeFile()
  }

  private fileUnavailable(e: Error) {
    // A read-only or full disk must not stop the instance: its log stays in memory.
    this.fileFailed = true
    this.closeFile()
    this.note(`cannot write the log file (${e.message}); keeping the log in memory only`)
  }

  private closeFile() {
    if (this.fd === null) return
    try {
      closeSync(this.fd)
    } catch {
      // already gone
    }
    this.fd = null
  }

  private open() {
    this.fd = openSync(this.opts.file!, 'a', PRIVATE_FILE)
    // 0600 whatever the umask, and for a file an older llamactl made 0644.
    try {
      fchmodSync(this.fd, PRIVATE_FILE)
    } catch {
      // not ours to change (another owner): it is written all the same
    }
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
    if (!this.opts.file || this.closed || this.fileFailed) return
    if (this.fd === null) {
      try {
        this.open()
      } catch (e) {
        this.fileUnavailable(e as Error)
        return
      }
    }
    const bytes = Buffer.from(text)
    if (this.opts.rotate && this.size > 0 && this.size + bytes.length > this.opts.maxFileBytes) this.rotate()
    if (this.fd !== null) {
      try {
        writeSync(this.fd, bytes)
        this.size += bytes.length
      } catch {
        // A full disk must not take the backend down with it; the in-memory tail still works.
      }
    }
    if (this.holds === 0) this.closeFile()
  }

  private rotate() {
    const file = this.opts.file!
    closeSync(this.fd!)
    this.fd = null
    let rotated = true
    try {
      for (const name of rotatedNames(file, this.opts.maxFiles)) rmSync(name, { force: true })
      for (let i = this.opts.maxFiles - 1; i >= 1; i--) {
        const [plain, gz] = [rotatedNames(file, i), rotatedNames(file, i + 1)]
        for (let k = 0; k < 2; k++) if (existsSync(plain[k]!)) renameSync(plain[k]!, gz[k]!)
      }
      renameSync(file, `${file}.1`)
    } catch {
      rotated = false
    }
    if (rotated && this.opts.compress) this.gzip(`${file}.1`)
    try {
      this.open()
    } catch {
      this.fileFailed = true
      return // the file cannot be opened again: memory only until the next start
    }
    // Could not rotate (a read-only folder): go on appending, and try again after another maxFileBytes.
    if (!rotated) this.size = 0
  }

  /**
   * Compresses a rotated file to `<file>.gz` in the background. When another rotation has moved
   * it meanwhile (the file at that name is no longer the one read), the copy is dropped and the
   * file stays plain: a gzip never lands under the wrong number, and nothing waits for one.
   */
  private gzip(path: string) {
    // Opened now, so the job reads the file rotated just now whatever is renamed after.
    let fd: number
    let ino: number
    try {
      fd = openSync(path, 'r')
      ino = fstatSync(fd).ino
    } catch {
      return
    }
    const partial = `${path}.gz.partial-${++this.gzipCount}`
    const job = pipeline(createReadStream('', { fd }), createGzip(), createWriteStream(partial, { mode: PRIVATE_FILE }))
      .then(() => {
        if (statSync(path, { throwIfNoEntry: false })?.ino !== ino) throw new Error('moved')
        renameSync(partial, `${path}.gz`)
        rmSync(path, { force: true })
      })
      .catch(() => rmSync(partial, { force: true }))
      .finally(() => this.compressing.delete(job))
    this.compressing.add(job)
  }

  /** Resolves when every compression started so far has finished (or given up). */
  async compressed(): Promise<void> {
    while (this.compressing.size) await Promise.all([...this.compressing])
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
    this.closeFile()
    this.closed = true
  }
}
