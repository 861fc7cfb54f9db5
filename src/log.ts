/**
 * llamactl's own log: levels, and text or JSON lines (for log collectors). Lines are kept as
 * they came and formatted and written every 100 ms and at exit, so the request log costs the
 * hot path one small object.
 */
export type Level = 'debug' | 'info' | 'warn' | 'error'
const RANK: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 }

export interface LogOptions {
  format: 'text' | 'json'
  level: Level
}

type Fields = Record<string, string | number | boolean | null | undefined>

interface Entry {
  time: number
  level: Level
  msg: string
  fields: Fields
}

export class Logger {
  /** Lines not yet written, as they came: formatting waits for the flush, off the request's path. */
  private buffer: Entry[] = []
  private timer: ReturnType<typeof setInterval> | null = null

  constructor(
    private opts: LogOptions,
    private sink: (text: string) => void = (t) => process.stdout.write(t),
  ) {}

  enabled(level: Level): boolean {
    return RANK[level] >= RANK[this.opts.level]
  }

  log(level: Level, msg: string, fields: Fields = {}) {
    if (!this.enabled(level)) return
    this.buffer.push({ time: Date.now(), level, msg, fields })
    if (!this.timer) {
      this.timer = setInterval(() => this.flush(), 100)
      this.timer.unref?.()
    }
  }

  private format({ time, level, msg, fields }: Entry): string {
    const iso = new Date(time).toISOString()
    if (this.opts.format === 'json') return JSON.stringify({ time: iso, level, msg, ...fields })
    let rest = ''
    for (const [k, v] of Object.entries(fields)) if (v !== undefined) rest += ` ${k}=${typeof v === 'string' && /[\s"=]/.test(v) ? JSON.stringify(v) : v}`
    return `${iso} ${level} ${msg}${rest}`
  }

  debug(msg: string, f?: Fields) {
    this.log('debug', msg, f)
  }
  info(msg: string, f?: Fields) {
    this.log('info', msg, f)
  }
  warn(msg: string, f?: Fields) {
    this.log('warn', msg, f)
  }
  error(msg: string, f?: Fields) {
    this.log('error', msg, f)
  }

  /** Writes what is buffered (every 100 ms, and at a clean stop: nothing is lost). */
  flush() {
    if (this.buffer.length === 0) return
    const entries = this.buffer
    this.buffer = []
    let text = ''
    for (const e of entries) text += `${this.format(e)}\n`
    this.sink(text)
  }
}

const requestInstances = new WeakMap<Request, string>()

/** Which instance a request was for, for the request log line. */
export function noteInstance(request: Request, name: string) {
  requestInstances.set(request, name)
}

export function instanceOf(request: Request): string | undefined {
  return requestInstances.get(request)
}
