/**
 * A small Prometheus registry: counters, gauges and histograms keyed by label values, rendered
 * in the text exposition format. Label sets are fixed per metric and their values come from
 * bounded sets (instance names, a fixed route list, status codes), so clients cannot grow the
 * series count.
 */

type Labels = Record<string, string>

function key(values: string[]): string {
  return values.join('\u0000')
}

function escapeLabel(v: string): string {
  return v.replaceAll('\\', '\\\\').replaceAll('\n', '\\n').replaceAll('"', '\\"')
}

function labelText(names: string[], values: string[], extra = ''): string {
  const parts = names.map((n, i) => `${n}="${escapeLabel(values[i]!)}"`)
  if (extra) parts.push(extra)
  return parts.length ? `{${parts.join(',')}}` : ''
}

abstract class Metric {
  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: string[],
  ) {}
  abstract render(): string
  /** Drops every series whose label `name` has `value` (a deleted instance). */
  abstract forget(name: string, value: string): void
  protected header(type: string) {
    return `# HELP ${this.name} ${this.help}\n# TYPE ${this.name} ${type}\n`
  }
}

export class Counter extends Metric {
  private series = new Map<string, { values: string[]; n: number }>()
  inc(values: string[], by = 1) {
    const k = key(values)
    const s = this.series.get(k)
    if (s) s.n += by
    else this.series.set(k, { values, n: by })
  }
  get(values: string[]): number {
    return this.series.get(key(values))?.n ?? 0
  }
  render() {
    let out = this.header('counter')
    for (const s of this.series.values()) out += `${this.name}${labelText(this.labelNames, s.values)} ${s.n}\n`
    return out
  }
  forget(name: string, value: string) {
    const i = this.labelNames.indexOf(name)
    for (const [k, s] of this.series) if (s.values[i] === value) this.series.delete(k)
  }
}

export class Gauge extends Metric {
  private series = new Map<string, { values: string[]; n: number }>()
  /** For gauges computed when scraped. */
  collect: (() => [string[], number][]) | null = null
  set(values: string[], n: number) {
    this.series.set(key(values), { values, n })
  }
  render() {
    let out = this.header('gauge')
    const rows: [string[], number][] = this.collect ? this.collect() : [...this.series.values()].map((s) => [s.values, s.n])
    for (const [values, n] of rows) out += `${this.name}${labelText(this.labelNames, values)} ${n}\n`
    return out
  }
  forget(name: string, value: string) {
    const i = this.labelNames.indexOf(name)
    for (const [k, s] of this.series) if (s.values[i] === value) this.series.delete(k)
  }
}

export class Histogram extends Metric {
  private series = new Map<string, { values: string[]; counts: number[]; sum: number; count: number }>()
  constructor(
    name: string,
    help: string,
    labelNames: string[],
    readonly buckets: number[],
  ) {
    super(name, help, labelNames)
  }
  observe(values: string[], v: number) {
    const k = key(values)
    let s = this.series.get(k)
    if (!s) {
      s = { values, counts: new Array(this.buckets.length).fill(0), sum: 0, count: 0 }
      this.series.set(k, s)
    }
    for (let i = 0; i < this.buckets.length; i++) if (v <= this.buckets[i]!) s.counts[i]!++
    s.sum += v
    s.count++
  }
  count(values: string[]): number {
    return this.series.get(key(values))?.count ?? 0
  }
  render() {
    let out = this.header('histogram')
    for (const s of this.series.values()) {
      this.buckets.forEach((b, i) => {
        out += `${this.name}_bucket${labelText(this.labelNames, s.values, `le="${b}"`)} ${s.counts[i]}\n`
      })
      out += `${this.name}_bucket${labelText(this.labelNames, s.values, 'le="+Inf"')} ${s.count}\n`
      out += `${this.name}_sum${labelText(this.labelNames, s.values)} ${s.sum}\n`
      out += `${this.name}_count${labelText(this.labelNames, s.values)} ${s.count}\n`
    }
    return out
  }
  forget(name: string, value: string) {
    const i = this.labelNames.indexOf(name)
    for (const [k, s] of this.series) if (s.values[i] === value) this.series.delete(k)
  }
}

export class Registry {
  private metrics: Metric[] = []
  counter(name: string, help: string, labels: string[] = []) {
    return this.add(new Counter(name, help, labels))
  }
  gauge(name: string, help: string, labels: string[] = []) {
    return this.add(new Gauge(name, help, labels))
  }
  histogram(name: string, help: string, labels: string[], buckets: number[]) {
    return this.add(new Histogram(name, help, labels, buckets))
  }
  private add<M extends Metric>(m: M): M {
    this.metrics.push(m)
    return m
  }
  forget(label: string, value: string) {
    for (const m of this.metrics) if (m.labelNames.includes(label)) m.forget(label, value)
  }
  render(): string {
    return this.metrics.map((m) => m.render()).join('')
  }
}

export type { Labels }
