import type { TSchema } from '@sinclair/typebox'
import type { FlagTable, Understood } from './spec'

/** A plain field of the page's instance form: the backend option it sets (and the field's name). */
export interface FormField {
  name: string
  label: string
  hint: string
  numeric: boolean
}

/** The port field every backend's form has. */
export const PORT_FIELD: FormField = { name: 'port', label: 'Port', hint: 'empty: a free port from instances.port_range', numeric: true }

/**
 * What llamactl needs to know to run one kind of inference server: its identity (T, its
 * backend_type; K, its config section), options, command lines and form. Every backend fact
 * lives here once; the registry in index.ts lists the backends.
 */
export interface Backend<T extends string = string, K extends string = string> {
  type: T
  /** The section under `backends:` in the config (its variables and default command are there). */
  configKey: K
  /** The server's name in messages: llama-server, mlx_lm.server, vllm serve. */
  label: string
  /** Its name in the page's backend menu. */
  title: string
  /** The options the page's form shows as plain fields; the rest are advanced rows. */
  formFields: FormField[]
  /** Its name in /api/v1/backends/{name}/parse-command. */
  routeName: string
  /** The seed's key for its options in a parsed command: llama_server_options, … */
  seedKey: string
  /** Answers 200 once the server is ready to serve. */
  healthPath: string
  /**
   * How many requests the running server decodes at once, as it says itself (llama-server's
   * /props `total_slots`): the path to ask and how to read the answer; absent when it cannot say.
   */
  slots?: { path: string; read(body: unknown): number | null }
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
  /** Reads what the binary understands (its --help) once, off the event loop, for flagsOf. */
  learnFlags(argv0: string, args: string[]): Promise<void>
  flagsOf(argv0: string, args: string[]): Understood
  /** Options from a command line (see parse-command); throws BadRequest when it cannot be read. */
  parseCommand(command: string): ParsedCommand
}

export interface ParsedCommand {
  options: Record<string, unknown>
  /** `NAME=value` words before the program. */
  environment: Record<string, string>
}
