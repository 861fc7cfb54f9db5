/**
 * Error kinds a user can cause, each with its HTTP status. The HTTP layer maps these in one
 * place (src/http/errors.ts); nothing else decides a status code or matches on message text.
 */
export class AppError extends Error {
  readonly status: number = 500
  /** Headers the response carries (Retry-After on a 503). */
  constructor(
    message: string,
    readonly headers?: Record<string, string>,
  ) {
    super(message)
  }
}
export class BadRequest extends AppError {
  override readonly status = 400
}
export class Forbidden extends AppError {
  override readonly status = 403
}
export class NotFound extends AppError {
  override readonly status = 404
}
export class Conflict extends AppError {
  override readonly status = 409
}
export class PayloadTooLarge extends AppError {
  override readonly status = 413
}
/** The instance's request queue is full, or the request waited in it for queue_timeout. */
export class TooManyRequests extends AppError {
  override readonly status = 429
}
export class UnsupportedMediaType extends AppError {
  override readonly status = 415
}
/** The client closed the connection before it had sent the whole request (nginx's 499): nobody to answer, nothing done. */
export class ClientClosed extends AppError {
  override readonly status = 499
}
export class StartFailed extends AppError {
  override readonly status = 500
}
/** A backend command llamactl ran for information (llama-server --help, …) did not give it. */
export class CommandFailed extends AppError {
  override readonly status = 500
}
export class BadGateway extends AppError {
  override readonly status = 502
}
export class Unavailable extends AppError {
  override readonly status = 503
}
/** A change could not be saved because the database could not be written (read-only, I/O error). Nothing changed. */
export class StorageFailed extends AppError {
  override readonly status = 500
}
/** A change could not be saved because the disk is full. Nothing changed. */
export class InsufficientStorage extends AppError {
  override readonly status = 507
}

/** Start-up configuration problems: one line naming the key and where it came from. */
export class ConfigError extends Error {}
