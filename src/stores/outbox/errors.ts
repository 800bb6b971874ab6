import { TidingsError } from '../../errors.js';

/**
 * The outbox could not do what was asked: write a message in the caller's transaction, read or
 * update its table, or decode a stored row. `operation` says which; `cause` holds the database's
 * own error. A failed `write` means the caller's transaction should be rolled back.
 */
export class OutboxError extends TidingsError {
  declare readonly code: 'outbox';
  constructor(
    /** What was attempted: `write`, `claim`, `mark`, `status`, `retry`, `prune`, `migrate`, `decode`. */
    readonly operation: string,
    /** The outbox table, as given (`tidings_outbox`). */
    readonly table: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super('outbox', `The outbox ${table} failed to ${operation}: ${reason}`, options);
  }
}

/**
 * The outbox table does not exist, or lacks columns this version of Tidings needs. Nothing
 * creates it behind your back: run `tidings outbox migrate` (or the SQL of
 * `PostgresOutbox.migrationSql()`) against the database first.
 */
export class OutboxSchemaError extends OutboxError {
  constructor(table: string, options?: { cause?: unknown }) {
    super(
      'check its table',
      table,
      `the table ${table} does not exist or is not an outbox table of this version. Create it ` +
        `with \`tidings outbox migrate --table ${table}\` (or run the SQL of ` +
        'PostgresOutbox.migrationSql()); see docs/outbox.md',
      options,
    );
    this.name = 'OutboxSchemaError';
  }
}

/** A message of the outbox in words for `last_error`: its error's name and message, bounded. */
export function describeFailure(error: unknown): string {
  const text =
    error instanceof Error
      ? `${error.name}: ${error.message}`
      : `a non-Error was thrown (${typeof error})`;
  return text.length <= 2000 ? text : `${text.slice(0, 1999)}…`;
}
