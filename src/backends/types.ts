import type { BackendKey } from '../config/settings'
import type { FlagSpec } from './spec'

export const BACKEND_TYPES = ['llama_cpp', 'mlx_lm', 'vllm'] as const
export type BackendType = (typeof BACKEND_TYPES)[number]

/** What llamactl needs to know to run one kind of inference server. */
export interface Backend {
  type: BackendType
  /** The section under `backends:` in the config. */
  configKey: BackendKey
  /** Answers 200 once the server is ready to serve. */
  healthPath: string
  specs: Map<string, FlagSpec>
  /** Throws BadRequest for options the backend cannot take. */
  validate(options: Record<string, unknown>): void
  /** The instance's own argv (after the configured command and args); host and port decided by llamactl. */
  buildArgs(options: Record<string, unknown>, where: { host: string; port: number }): string[]
}
