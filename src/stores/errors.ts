import { TidingsError } from '../errors.js';

/**
 * An idempotency store or inbox could not reach its backend, or the backend refused a command.
 *
 * Thrown from `claim`, the runtime retries the message later (with the handler's retry policy),
 * so nothing runs twice and nothing is lost. From `complete` and `release`, the runtime logs it
 * and carries on: the effects already happened, or the claim expires with its lease.
 */
export class IdempotencyStoreError extends TidingsError {
  declare readonly code: 'idempotency-store';
  constructor(
    /** Which store failed, e.g. `Redis` or `PostgreSQL`. */
    readonly store: string,
    /** What was attempted: `claim`, `complete`, `release`, `purge`, `ensureSchema`, `run`. */
    readonly operation: string,
    /** The key it was attempted on, when there is one. */
    readonly key: string | undefined,
    options: { cause: unknown },
  ) {
    super(
      'idempotency-store',
      `The ${store} idempotency store failed to ${operation}${key === undefined ? '' : ` ${JSON.stringify(key)}`}: ` +
        `${describe(options.cause)}. Check that ${store} is reachable and the schema exists.`,
      options,
    );
  }
}

function describe(cause: unknown): string {
  return cause instanceof Error ? cause.message : String(cause);
}
