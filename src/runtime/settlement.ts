import {
  attemptsOf,
  type DeadLetterReason,
  type Envelope,
  HEADERS,
  type HeaderValue,
} from '../envelope/envelope.js';
import { redactSecrets } from '../redact.js';
import type { Delivery } from '../transports/transport.js';
import type { Observers } from './events.js';
import type { RegisteredHandler } from './handlers.js';
import { messageLogFields } from './instrumentation.js';
import type { ResolvedServiceOptions } from './options.js';
import { isRetryable, retryDelay } from './retry.js';

/**
 * What happens to a message that was not handled: the ack policy's second half. A handler that
 * throws is retried later with backoff while attempts remain and the error is retryable, then
 * dead-lettered with its history; input that can never be handled is dead-lettered at once with
 * its reason. Every dead letter carries why, where and how often it failed (see `HEADERS`).
 *
 * @module
 */

/** An error as dead-letter headers record it. */
export interface FailureDescription {
  readonly name?: string | undefined;
  readonly message: string;
  readonly stack?: string | undefined;
  /** JSON array of schema issues, for `schema-violation`. */
  readonly issues?: string | undefined;
}

/** What settling needs to know of the service. */
export interface SettlementScope {
  readonly service: ResolvedServiceOptions;
  readonly observers: Observers;
  /** Aborted when the service gives up waiting for its handlers on `stop()`. */
  readonly signal: AbortSignal;
}

/**
 * A handler threw on attempt `attempt`: park the message for a retry with backoff, or, after the
 * last attempt or on an error that is not retryable, dead-letter it with the history. During an
 * aborted shutdown the message goes back to its queue untouched instead (the abort is not its
 * fault, so no attempt is spent).
 */
export function settleFailure(
  scope: SettlementScope,
  h: RegisteredHandler,
  delivery: Delivery,
  envelope: Envelope,
  attempt: number,
  error: unknown,
): Promise<void> {
  if (scope.signal.aborted) return delivery.requeue();
  const willRetry = attempt < h.retry.maxAttempts && isRetryable(h.retry, error);
  scope.observers.emit('failed', {
    service: scope.service.name,
    queue: h.queue,
    envelope,
    error,
    attempt,
    willRetry,
  });
  const now = new Date().toISOString();
  const firstFailure = delivery.message.properties.headers[HEADERS.firstFailure] ?? now;
  if (willRetry) {
    return delivery.retry(retryDelay(h.retry, attempt), {
      [HEADERS.attempts]: attempt,
      [HEADERS.firstFailure]: firstFailure,
      [HEADERS.lastFailure]: now,
      [HEADERS.errorName]: errorName(error),
      [HEADERS.errorMessage]: bounded(redactSecrets(errorMessage(error)), 1000),
    });
  }
  return deadLetter(
    scope,
    h,
    delivery,
    'handler-error',
    describeError(error),
    attempt,
    firstFailure,
  );
}

/**
 * Moves a message to its queue's dead-letter queue with `reason` and the failure, then reports
 * it (the `dead-lettered` event and a warning). The body and the original headers are kept as
 * they are, so a replay sends the very same message.
 */
export async function deadLetter(
  scope: SettlementScope,
  h: RegisteredHandler,
  delivery: Delivery,
  reason: DeadLetterReason,
  error: FailureDescription,
  attempts = attemptsOf(delivery.message) + 1,
  firstFailure?: HeaderValue,
): Promise<void> {
  const now = new Date().toISOString();
  const m = delivery.message;
  const h0 = m.properties.headers;
  const headers: Record<string, HeaderValue> = {
    [HEADERS.deadReason]: reason,
    [HEADERS.errorName]: error.name ?? reason,
    [HEADERS.errorMessage]: bounded(redactSecrets(error.message), 1000),
    [HEADERS.attempts]: attempts,
    [HEADERS.firstFailure]: firstFailure ?? h0[HEADERS.firstFailure] ?? now,
    [HEADERS.lastFailure]: now,
    [HEADERS.service]: scope.service.name,
    [HEADERS.handler]: h.name,
    // The queue it failed in, where a replay sends it: the handler's, or one of its partitions.
    [HEADERS.queue]: delivery.queue,
    // A replayed message travels through the default exchange: keep where it was first published.
    [HEADERS.originalExchange]: h0[HEADERS.originalExchange] ?? m.exchange,
    [HEADERS.originalRoutingKey]: h0[HEADERS.originalRoutingKey] ?? m.routingKey,
  };
  if (error.stack) headers[HEADERS.errorStack] = bounded(redactSecrets(error.stack), 2000);
  if (error.issues) headers[HEADERS.issues] = bounded(error.issues, 4000);
  await delivery.deadLetter(headers);
  const id = m.properties.headers[HEADERS.id];
  scope.observers.emit('dead-lettered', {
    service: scope.service.name,
    queue: h.queue,
    reason,
    routingKey: m.routingKey,
    messageId: typeof id === 'string' ? id : m.properties.messageId,
    error: error.message,
  });
  scope.service.logger.warn(`dead-lettered a message of ${h.queue}: ${reason}`, {
    routingKey: m.routingKey,
    error: error.message,
    ...messageLogFields(m),
  });
}

function errorName(error: unknown): string {
  if (error instanceof Error) return error.name;
  return typeof error;
}

function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  // A thrown non-Error (a config object, a response) may hold anything: only its kind is kept.
  if (typeof error === 'string') return error;
  return `a non-Error value was thrown (${error === null ? 'null' : typeof error})`;
}

/** An error as dead-letter headers record it: name, message (after `prefix`), first stack lines. */
export function describeError(error: unknown, prefix?: string): FailureDescription {
  const message = prefix ? `${prefix}: ${errorMessage(error)}` : errorMessage(error);
  if (error instanceof Error && error.stack) {
    return {
      name: errorName(error),
      message,
      stack: error.stack.split('\n').slice(0, 12).join('\n'),
    };
  }
  return { name: errorName(error), message };
}

function bounded(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}
