/**
 * llamactl's own log: levels, and text or JSON lines (for log collectors). Writes are buffered
 * and flushed every 100 ms and at exit, so the request log costs the hot path almost nothing.
 */
export type Level = 'debug' | 'info' | 'warn' | 'error'
const RANK: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 }

export interface LogOptions {
  format: 'text' | 'json'
  level: Level
}

type Fields = Record<string, string | number | boolean | null | undefined>

export class Logger {
  private buffer: string[] = []
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
    const time = new Date().toISOString()
    let line: string
    if (this.opts.format === 'json') {
      line = JSON.stringify({ time, level, msg, ...fields })
    } else {
      let rest = ''
      for (const [k, v] of Object.entries(fields)) if (v !== undefined) rest += ` ${k}=${typeof v === 'string' && /[\s"=]/.test(v) ? JSON.stringify(v) : v}`
      line = `${time} ${level} ${msg}${rest}`
    }
    this.buffer.push(`${line}\n`)
    if (!this.timer) {
      this.timer = setInterval(() => this.flush(), 100)
      this.timer.unref?.()
    }
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

  flush() {
    if (this.buffer.length === 0) return
    const text = this.buffer.join('')
    this.buffer = []
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
