/**
 * Every error Tidings throws on purpose is a {@link TidingsError}. Each failure has its own small
 * class with typed fields, so callers branch with `instanceof` instead of parsing messages.
 */

/**
 * Base class of all errors raised by Tidings. `code` is stable and safe to match on; each class
 * narrows it to a literal of its own (`ValidationError['code']` is `'validation'`), and
 * {@link TidingsErrorCode} lists them all.
 */
export class TidingsError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A name (exchange, event, service) breaks the naming rules. Thrown at definition time. */
export class InvalidNameError extends TidingsError {
  declare readonly code: 'invalid-name';
  constructor(
    readonly kind: string,
    readonly value: string,
    readonly reason: string,
  ) {
    super('invalid-name', `Invalid ${kind} name ${JSON.stringify(value)}: ${reason}.`);
  }
}

/** One problem found by a schema, with the path to the offending value. */
export interface ValidationIssue {
  readonly message: string;
  /** Path from the payload's root, e.g. `['lines', 0, 'price']`. Empty for the root itself. */
  readonly path: readonly PropertyKey[];
}

/**
 * A payload does not satisfy its event's schema. On publish nothing is sent; on consume the
 * message is dead-lettered with reason `schema-violation`.
 */
export class ValidationError extends TidingsError {
  declare readonly code: 'validation';
  constructor(
    /** Routing key of the event version the payload was checked against. */
    readonly routingKey: string,
    readonly issues: readonly ValidationIssue[],
  ) {
    super(
      'validation',
      `Payload for ${routingKey} is invalid: ${issues
        .slice(0, 5)
        .map(formatIssue)
        .join('; ')}${issues.length > 5 ? `; and ${issues.length - 5} more` : ''}`,
    );
  }
}

function formatIssue(issue: ValidationIssue): string {
  const path = issue.path.length === 0 ? '(root)' : issue.path.map(String).join('.');
  return `${path}: ${issue.message}`;
}

/** A published message matched no queue and the publisher's `unroutable` policy is `error`. */
export class UnroutableError extends TidingsError {
  declare readonly code: 'unroutable';
  constructor(
    readonly exchange: string,
    readonly routingKey: string,
  ) {
    super(
      'unroutable',
      `No queue is bound to receive ${routingKey} on exchange "${exchange}": the message was not delivered. ` +
        'Start a consumer first, or set the publisher option `unroutable` to "warn" or "ignore".',
    );
  }
}

/** The broker refused to take responsibility for a message (RabbitMQ basic.nack, or an unknown exchange). */
export class PublishRejectedError extends TidingsError {
  declare readonly code: 'publish-rejected';
  constructor(
    readonly routingKey: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super('publish-rejected', `The broker rejected ${routingKey}: ${reason}`, options);
  }
}

/**
 * A message cannot be written in AMQP as given, for example a message id or correlation id over
 * 255 bytes where AMQP allows a short string. Nothing was sent.
 */
export class MessageEncodingError extends TidingsError {
  declare readonly code: 'message-encoding';
  constructor(
    readonly routingKey: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(
      'message-encoding',
      `${routingKey} cannot be encoded for AMQP, so nothing was sent: ${reason}`,
      options,
    );
  }
}

/** A publish waited longer than allowed (for a connection or for the broker's confirm). */
export class PublishTimeoutError extends TidingsError {
  declare readonly code: 'publish-timeout';
  constructor(
    readonly routingKey: string,
    readonly waitedMs: number,
  ) {
    super(
      'publish-timeout',
      `Publishing ${routingKey} timed out after ${waitedMs} ms without a confirm from the broker.`,
    );
  }
}

/** Something was used in a state that does not allow it (publishing after `stop()`, `on` after `start()`). */
export class StateError extends TidingsError {
  declare readonly code: 'state';
  constructor(message: string) {
    super('state', message);
  }
}

/** A configuration object has one or more problems; all of them are listed. */
export class ConfigError extends TidingsError {
  declare readonly code: 'config';
  constructor(
    readonly problems: readonly string[],
    what = 'configuration',
  ) {
    super('config', `Invalid ${what}:\n  - ${problems.join('\n  - ')}`);
  }
}

/**
 * Throw this (or a subclass) from a handler to skip retries: the message goes straight to the
 * dead-letter queue, with reason `handler-error` and error name `NonRetryableError` (or the
 * subclass's name).
 */
export class NonRetryableError extends TidingsError {
  declare readonly code: 'non-retryable';
  constructor(message: string, options?: { cause?: unknown }) {
    super('non-retryable', message, options);
  }
}

/**
 * A queue or exchange already exists with other arguments than the ones Tidings would declare.
 * Nothing was changed on the broker; delete the entity or align the options.
 */
export class TopologyConflictError extends TidingsError {
  declare readonly code: 'topology-conflict';
  constructor(
    readonly entity: string,
    readonly difference: string,
    options?: { cause?: unknown },
  ) {
    super(
      'topology-conflict',
      `${entity} already exists with different arguments: ${difference}. ` +
        'Delete it (after draining it) or change the options to match.',
      options,
    );
  }
}

/** The broker cannot be reached or refused the connection. The URL in the message has no password. */
export class ConnectionError extends TidingsError {
  declare readonly code: 'connection';
  constructor(message: string, options?: { cause?: unknown }) {
    super('connection', message, options);
  }
}

/**
 * A publish was refused before reaching the broker because too many publishes were already
 * waiting for a connection to the broker to come back. Nothing was sent; retry later, or raise
 * the transport's buffer limit.
 */
export class PublishBufferFullError extends TidingsError {
  declare readonly code: 'publish-buffer-full';
  constructor(
    readonly routingKey: string,
    /** How many publishes may wait at once. */
    readonly limit: number,
  ) {
    super(
      'publish-buffer-full',
      `Cannot publish ${routingKey}: ${limit} publishes are already waiting for the broker. ` +
        'Wait for the connection to recover, or raise `maxBufferedPublishes`.',
    );
  }
}

/**
 * The broker refused an operation other than a publish (declaring, binding, deleting, consuming)
 * for a reason that is not an argument conflict, such as missing permissions.
 */
export class BrokerOperationError extends TidingsError {
  declare readonly code: 'broker-operation';
  constructor(
    /** What was attempted, e.g. `declare queue "billing.order.submit"`. */
    readonly operation: string,
    /** The AMQP reply code (403 access refused, 404 not found, 405 locked, ...), when known. */
    readonly replyCode: number | undefined,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super('broker-operation', `The broker refused to ${operation}: ${reason}`, options);
  }
}

/**
 * An event's key could not be read from a payload: the contract's key function threw, or did not
 * return a non-empty string or a finite number (or a publish's `key` option was not one). Nothing
 * was sent.
 */
export class PartitionKeyError extends TidingsError {
  declare readonly code: 'partition-key';
  constructor(
    /** Routing key of the event version. */
    readonly routingKey: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super('partition-key', `Cannot read the key of ${routingKey}: ${reason}`, options);
  }
}

/**
 * The transport cannot express a binding: NATS JetStream has no wildcard for "zero or more words"
 * before a literal word (`order.#.submit`), and nats-server 2.9 gives a consumer one filter
 * subject, so two bindings of one queue whose patterns overlap without one containing the other
 * cannot share it. Thrown by `declare` before anything is created; nothing is routed wrongly.
 */
export class UnsupportedBindingError extends TidingsError {
  declare readonly code: 'unsupported-binding';
  constructor(
    readonly queue: string,
    readonly exchange: string,
    readonly pattern: string,
    readonly reason: string,
  ) {
    super(
      'unsupported-binding',
      `Cannot bind queue "${queue}" to exchange "${exchange}" with "${pattern}": ${reason}.`,
    );
  }
}

/**
 * The `code` of every error this module defines, for a `switch` over `error.code`. The optional
 * parts add their own: `idempotency-store` (tidings/redis, tidings/postgres), `replay`
 * (tidings/ops), `contracts` and `snapshot-format` (tidings/tooling).
 */
export type TidingsErrorCode =
  | InvalidNameError['code']
  | ValidationError['code']
  | UnroutableError['code']
  | PublishRejectedError['code']
  | MessageEncodingError['code']
  | PublishTimeoutError['code']
  | StateError['code']
  | ConfigError['code']
  | NonRetryableError['code']
  | TopologyConflictError['code']
  | ConnectionError['code']
  | PublishBufferFullError['code']
  | BrokerOperationError['code']
  | UnsupportedBindingError['code']
  | PartitionKeyError['code'];
