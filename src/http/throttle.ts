/**
 * The HTTP side of the failure limit (src/auth/failures.ts): the client's address from its
 * socket, the 429 answers, and holding a limited address's failure answers for the delay.
 * Requests without a socket (app.handle in tests) have no address and are not limited.
 */
import type { FailureLimit } from '../auth/failures'
import { errorResponse } from './errors'
import { clientAddress } from './timeouts'

const failedKey = new WeakSet<Request>()

function tooMany(retryAfter: number): Response {
  return errorResponse(429, `too many failed sign-ins or wrong keys from this address; try again in ${retryAfter} s`, {
    'retry-after': String(retryAfter),
  })
}

/** A 429 when attempts from this address are refused without being checked; else null. */
export function refuseUnchecked(request: Request, limit: FailureLimit): Response | null {
  if (!limit.enabled || !limit.mayRefuse) return null
  const address = clientAddress(request)
  const wait = address ? limit.refusing(address) : 0
  return wait ? tooMany(wait) : null
}

/** Marks the request as one whose credential was checked and was wrong (its answer is `failed`'s to give). */
export function noteFailedKey(request: Request) {
  failedKey.add(request)
}

export function keyFailed(request: Request): boolean {
  return failedKey.has(request)
}

/** A failed attempt: `answer` as it is, or, once the address is limited, a 429 after the delay. */
export async function failed(request: Request, limit: FailureLimit, answer: Response): Promise<Response> {
  if (!limit.enabled) return answer
  const address = clientAddress(request)
  if (!address) return answer
  const verdict = limit.fail(address)
  if (!verdict.limited) return answer
  try {
    if (verdict.holdMs > 0) await wait(verdict.holdMs, request.signal)
  } finally {
    verdict.done()
  }
  return tooMany(verdict.retryAfter)
}

/** Resolves after `ms`, or at once when the client goes away. */
function wait(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve()
    const timer = setTimeout(done, ms)
    function done() {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
    signal.addEventListener('abort', done, { once: true })
  })
}
