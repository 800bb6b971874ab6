export {
  type ClaimResult,
  IDEMPOTENCY_DEFAULTS,
  type IdempotencyOptions,
  type IdempotencyStore,
  MemoryIdempotencyStore,
} from './idempotency.js';
export { consoleLogger, type Logger, silentLogger } from './logger.js';
export type { Outbox, OutboxEntry, OutboxTransaction } from './outbox.js';
export {
  DEFAULT_RETRY_POLICY,
  type ResolvedRetryPolicy,
  type RetryPolicy,
  resolveRetryPolicy,
  retryDelay,
} from './retry.js';
export * from './service.js';
export { type StopOnSignalsOptions, stopOnSignals } from './signals.js';
export { validate } from './validate.js';
