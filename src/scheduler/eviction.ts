/**
 * Which running instance to stop to make room for another: the least recently used one that
 * is running and has no request in flight or waiting. A pure function of the instances' state.
 */
export interface EvictionCandidate {
  name: string
  status: string
  /** Requests being forwarded or waiting for it. */
  busy: number
  /** Unix ms of last use. */
  lastUsed: number
}

export function chooseEviction(instances: EvictionCandidate[], target: string): string | null {
  let best: EvictionCandidate | null = null
  for (const i of instances) {
    if (i.name === target || i.status !== 'running' || i.busy > 0) continue
    if (!best || i.lastUsed < best.lastUsed || (i.lastUsed === best.lastUsed && i.name < best.name)) best = i
  }
  return best?.name ?? null
}
