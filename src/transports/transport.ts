import type { HeaderValue, IncomingMessage, OutgoingMessage } from '../envelope/envelope.js';

/**
 * The seam between the runtime and a broker. The runtime owns validation, envelopes and the
 * ack policy (when to retry, when to dead-letter); a transport owns the wire: topology, publishing
 * with the broker's confirmation, delivery with acks, delayed redelivery and the dead-letter queue.
 *
 * What it deliberately leaves out: serialisation (bodies are opaque bytes), schemas, retry
 * decisions, and ordering across queues. Every transport passes the conformance suite in
 * `tidings/testing`; a `TransportFeatures` object says what one does not promise.
 */
export interface Transport {
  /** Short name of the broker kind: `memory`, `amqp`. */
  readonly kind: string;

  /**
   * Declares exchanges, queues and bindings, plus each queue's retry and dead-letter queues.
   * Idempotent: declaring what exists with the same arguments does nothing. Resolves when the
   * broker has all of it. Rejects with a `TopologyConflictError` naming the entity and the
   * difference when something exists with other arguments.
   */
  declare(topology: Topology): Promise<void>;

  /**
   * Publishes one message to an exchange. Resolves once the broker has taken responsibility for
   * it (RabbitMQ: publisher confirm on a persistent message), with `routed: false` when no queue
   * was bound to receive it. Rejects with `PublishRejectedError` when the broker refuses it (no
   * such exchange, negative confirm) and `PublishTimeoutError` when no answer comes in time.
   * Many publishes may be in flight at once; the transport applies backpressure itself.
   */
  publish(message: OutgoingMessage): Promise<PublishOutcome>;

  /**
   * Optional: {@link publish} done within the call, for a transport whose broker takes a message
   * synchronously (the embedded broker). Returns the outcome, or throws what `publish` would
   * reject with. The runtime uses it, when present, to spare a promise and a turn of the
   * microtask queue per message; a transport that must wait for its broker leaves it out.
   */
  publishNow?(message: OutgoingMessage): PublishOutcome;

  /**
   * Starts delivering the messages of a queue to `onDelivery`, at most `prefetch` unacknowledged
   * at a time. Each delivery must be settled exactly once (`ack`, `retry`, `deadLetter` or
   * `requeue`). Messages left unsettled when the consumer is cancelled stay with it until settled;
   * those still unsettled when the transport closes (or the process dies) are redelivered, with
   * `redelivered: true`, to another consumer.
   */
  consume(
    queue: string,
    options: ConsumeOptions,
    onDelivery: (delivery: Delivery) => void,
  ): Promise<Consumer>;

  /**
   * Takes the next ready message of a queue, if any, without a consumer (AMQP `basic.get`). The
   * delivery must be settled like any other; `requeue()` puts it back in its original place.
   * Resolves `undefined` when the queue is empty. Used by tooling (dead-letter inspection and
   * replay), not on the hot path.
   */
  get(queue: string): Promise<Delivery | undefined>;

  /**
   * Deletes the queues of a topology (with their retry and dead-letter queues) and, when
   * `exchanges` is true, its exchanges. For tests and tooling; messages in them are lost.
   */
  deleteTopology(topology: Topology, options?: { exchanges?: boolean }): Promise<void>;

  /**
   * Closes the transport: waits for outstanding publishes to be confirmed, then releases the
   * connection. Unsettled deliveries return to their queues. Idempotent.
   */
  close(): Promise<void>;
}

/** What a transport should create: exchanges, and queues with their bindings. */
export interface Topology {
  readonly exchanges: readonly string[];
  readonly queues: readonly QueueSpec[];
}

/** One work queue; the transport adds its retry and dead-letter queues. */
export interface QueueSpec {
  /** `<service>.<exchange>.<event>`. A permanent identifier: renaming it strands its messages. */
  readonly name: string;
  readonly bindings: readonly { readonly exchange: string; readonly pattern: string }[];
}

/**
 * The default exchange's name. Publishing to it with a queue's name as the routing key delivers to
 * that queue alone (AMQP's default exchange); replays use it so that only the failed consumer gets
 * the message again.
 */
export const DEFAULT_EXCHANGE = '';

/** The name of a queue's dead-letter queue. */
export function deadLetterQueueName(queue: string): string {
  return `${queue}.dlq`;
}

/** How a publish ended, when it did not fail. */
export interface PublishOutcome {
  /** False when the message matched no queue (AMQP `basic.return` for a `mandatory` publish). */
  readonly routed: boolean;
}

export interface ConsumeOptions {
  /** Maximum unacknowledged deliveries outstanding to this consumer. */
  readonly prefetch: number;
}

/** A running consumer. */
export interface Consumer {
  /**
   * Stops new deliveries. Resolves when the broker will send no more; deliveries already handed
   * out may still be settled afterwards.
   */
  cancel(): Promise<void>;
}

/**
 * One delivered message and the ways to settle it. Settling twice is a bug and throws.
 */
export interface Delivery {
  readonly message: IncomingMessage;
  /** The queue it came from. */
  readonly queue: string;
  /** Done: the broker forgets the message. */
  ack(): Promise<void>;
  /**
   * Optional: {@link ack} done within the call (the ack is handed to the broker, or queued to
   * leave in this tick), throwing where `ack` would reject. The runtime uses it, when present, so
   * that a message handled synchronously costs no promise at all; `ack` stays the contract.
   */
  ackNow?(): void;
  /**
   * Handling failed and should be tried again later: the message is parked for `delayMs`
   * without blocking the queue, then delivered again to the same queue only, with `headers`
   * merged into its headers. The original is acknowledged once the copy is safely parked.
   */
  retry(delayMs: number, headers: Record<string, HeaderValue>): Promise<void>;
  /**
   * Handling is impossible: the message, body and headers unchanged plus `headers`, moves to
   * the queue's dead-letter queue (`<queue>.dlq`). The original is acknowledged once the copy is
   * safely stored.
   */
  deadLetter(headers: Record<string, HeaderValue>): Promise<void>;
  /** Gives the message back to the queue untouched, for another delivery (used on shutdown). */
  requeue(): Promise<void>;
}

/** What a transport does not promise; the conformance suite skips the matching tests. */
export interface TransportFeatures {
  /** Messages survive a restart of the broker. */
  readonly durable: boolean;
  /** Several processes can share a queue. */
  readonly multiProcess: boolean;
}
