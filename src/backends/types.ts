import type { TSchema } from '@sinclair/typebox'
import type { BackendKey } from '../config/settings'
import type { FlagTable, Understood } from './spec'

export const BACKEND_TYPES = ['llama_cpp', 'mlx_lm', 'vllm'] as const
export type BackendType = (typeof BACKEND_TYPES)[number]

/** What llamactl needs to know to run one kind of inference server. */
export interface Backend {
  type: BackendType
  /** The section under `backends:` in the config. */
  configKey: BackendKey
  /** The server's name in messages: llama-server, mlx_lm.server, vllm serve. */
  label: string
  /** Its name in /api/v1/backends/{name}/parse-command. */
  routeName: string
  /** The seed's key for its options in a parsed command: llama_server_options, … */
  seedKey: string
  /** Answers 200 once the server is ready to serve. */
  healthPath: string
  table: FlagTable
  /** TypeBox schema of its backend_options (for the OpenAPI document). */
  schema: TSchema
  /** Words between the executable and the options when run natively (`serve` for vLLM). */
  subcommand: string[]
  /** Throws BadRequest for options the backend cannot take. */
  validate(options: Record<string, unknown>): void
  /**
   * The instance's own argv (after the command, its args and the subcommand); host and port
   * decided by llamactl. With the flags the binary understands (see capabilities.ts), each
   * option gets a spelling that binary knows; BadRequest when it has none (named `binary`).
   */
  buildArgs(options: Record<string, unknown>, where: { host: string; port: number }, understood?: Understood, binary?: string): string[]
  /** The flags `argv0 ...args` understands (from its --help), null when it cannot say; see capabilities.ts. */
  flagsOf(argv0: string, args: string[]): Understood
  /** Options from a command line (see parse-command); throws BadRequest when it cannot be read. */
  parseCommand(command: string): ParsedCommand
}

export interface ParsedCommand {
  options: Record<string, unknown>
  /** `NAME=value` words before the program. */
  environment: Record<string, string>
}
