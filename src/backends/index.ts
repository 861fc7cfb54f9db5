/**
 * The backend registry: every backend llamactl runs, each defined once in its own module
 * (identity, config section, flag table, argv, parser, parse-command route, form fields).
 * Everything that lists backends (the API's backend_type, the routes, the page) reads this
 * list; each backend names its config section, whose variables and default command the
 * settings table holds.
 */
import { llamaCpp } from './llama-cpp'
import { mlx } from './mlx'
import type { Backend } from './types'
import { vllm } from './vllm'

export type { Backend }

export const BACKENDS = [llamaCpp, mlx, vllm] as const
type AnyBackend = (typeof BACKENDS)[number]
export type BackendType = AnyBackend['type']
export const BACKEND_TYPES: readonly BackendType[] = BACKENDS.map((b) => b.type)

const BY_TYPE = new Map<string, AnyBackend>(BACKENDS.map((b) => [b.type, b]))

export function backendFor(type: BackendType): AnyBackend {
  return BY_TYPE.get(type)!
}

/** The backend of a backend_type that came from outside (a form, a path); undefined if none is. */
export function findBackend(type: string): AnyBackend | undefined {
  return BY_TYPE.get(type)
}
