/** Times and durations as the page shows them (server-rendered: UTC, no client clock). */

/** "3 h 12 min", "45 s": the two largest units. */
export function duration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000))
  const units: [number, string][] = [
    [Math.floor(s / 86400), 'd'],
    [Math.floor(s / 3600) % 24, 'h'],
    [Math.floor(s / 60) % 60, 'min'],
    [s % 60, 's'],
  ]
  const first = units.findIndex(([n]) => n > 0)
  if (first === -1) return '0 s'
  return units
    .slice(first, first + 2)
    .filter(([n]) => n > 0)
    .map(([n, u]) => `${n} ${u}`)
    .join(' ')
}

/** "2 min ago", or "never" for 0/null. */
export function ago(then: number | null, now: number): string {
  if (!then) return 'never'
  if (now - then < 1000) return 'just now'
  return `${duration(now - then)} ago`
}

/** "2025-06-01 14:03 UTC" from unix seconds. */
export function utc(unixSeconds: number): string {
  return `${new Date(unixSeconds * 1000).toISOString().slice(0, 16).replace('T', ' ')} UTC`
}

/** ISO timestamp for a <time datetime="…">. */
export function iso(unixSeconds: number): string {
  return new Date(unixSeconds * 1000).toISOString()
}
