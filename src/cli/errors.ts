/**
 * A problem with what the CLI was given: arguments, files or modules. The CLI prints the message
 * (no stack) and exits with `exitCode`.
 */
export class CliError extends Error {
  /** @defaultValue 2, the exit code for bad input */
  readonly exitCode: number;

  constructor(message: string, options: { cause?: unknown; exitCode?: number } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CliError';
    this.exitCode = options.exitCode ?? 2;
  }
}
