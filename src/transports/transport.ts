import { bucketsOfPartition } from '../contracts/key.js';
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
  /** Short name of the broker kind: `memory`, `amqp`, `nats`. */
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

  /**
   * Optional, for tooling (the console): a queue's ready messages and consumers, read without
   * touching its messages (RabbitMQ: a passive `queue.declare`). Resolves `undefined` when the
   * queue does not exist. A transport without it simply has no such numbers to show.
   */
  queueStats?(queue: string): Promise<QueueStats | undefined>;

  /**
   * Optional, for tooling (the console's live tail): copies of the messages published to
   * `exchange` from now on whose routing key matches `pattern`, handed to `onMessage` in arrival
   * order. The copies come from a temporary queue of the tap's own (RabbitMQ: server-named,
   * exclusive, auto-delete, non-durable, consumed without acks), so every other queue receives
   * its messages exactly as before.
   *
   * - Bounded: when more than `maxLength` copies wait for the tap, the oldest are dropped. A tap
   *   is for watching, never a delivery guarantee.
   * - Side effect: while the tap is bound, a message that reaches no other queue is routed to the
   *   tap, so the publisher is not told it was unroutable (as with any queue bound by hand).
   * - Resolves once the tap's queue is bound; rejects when the exchange does not exist. When the
   *   tap ends by itself (its connection was lost, its queue deleted), `onEnd` is called once and
   *   the tap is not resumed: open another one. `close()` ends it and deletes its queue.
   */
  tap?(
    exchange: string,
    pattern: string,
    onMessage: (message: IncomingMessage) => void,
    options?: TapOptions,
  ): Promise<Tap>;
}

/** What {@link Transport.queueStats} reports of a queue. */
export interface QueueStats {
  /** Messages ready for delivery (not those delivered and not yet settled). */
  readonly messages: number;
  /** Consumers attached to the queue. */
  readonly consumers: number;
}

/** Options of {@link Transport.tap}. */
export interface TapOptions {
  /** Copies kept waiting for the tap before the oldest are dropped. @defaultValue 1000 */
  readonly maxLength?: number | undefined;
  /** Called once when the tap ends by itself (not after `close()`), with why. */
  readonly onEnd?: ((error: Error) => void) | undefined;
}

/** A running tap: see {@link Transport.tap}. */
export interface Tap {
  /** Stops the copies and deletes the tap's queue. Idempotent. */
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
  /**
   * Spread the queue over this many partition queues, `<name>.p0` … (see
   * {@link partitionQueueName}), instead of one queue `<name>`: every message matching the
   * bindings goes to exactly one partition, chosen by its key's bucket (`tidings-bucket`);
   * messages without a bucket go to partition 0. Each partition has at most one active consumer
   * at a time (a second consumer waits as a standby), and they share one dead-letter queue,
   * `<name>.dlq`. Needs `TransportFeatures.partitions`. See docs/scaling.md.
   * @defaultValue undefined: one queue
   */
  readonly partitions?: number | undefined;
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

/** The name of partition `index` of a partitioned queue: `<queue>.p<index>`. A permanent name. */
export function partitionQueueName(queue: string, index: number): string {
  return `${queue}.p${index}`;
}

/**
 * The exchange that splits a partitioned queue's messages over its partitions by bucket:
 * `<queue>.partition.<count>`. Its count is in its name, so changing the count makes a new one
 * (and the old one is deleted once the new one is bound): no old binding survives to deliver a
 * key to two partitions.
 */
export function partitionExchangeName(queue: string, count: number): string {
  return `${queue}.partition.${count}`;
}

/**
 * Where messages without a bucket go: `<queue>.unkeyed`, which feeds partition 0 (a producer that
 * knows nothing of keys, such as a Celery worker, still reaches the handler; such messages stay
 * in order among themselves).
 */
export function unkeyedExchangeName(queue: string): string {
  return `${queue}.unkeyed`;
}

/**
 * The buckets each partition of a `count`-partition queue receives: `result[i]` lists partition
 * i's. The assignment is the contracts' (`partitionOfBucket`), the same on every transport.
 */
export function partitionBuckets(count: number): number[][] {
  return Array.from({ length: count }, (_, i) => bucketsOfPartition(i, count));
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
  /**
   * Stops the consumer and gives every delivery it has not settled back to its queue at once, in
   * their original places, before another consumer can take them; with a single active consumer
   * (a partition), before the next consumer becomes active, so it starts where this one stopped.
   * Settling such a delivery afterwards does nothing. Used to hand a partition over in order.
   * Optional: without it the runtime cancels and requeues one delivery at a time.
   */
  release?(): Promise<void>;
}

/**
 * One delivered message and the ways to settle it. Settling twice is a bug and throws.
 */
export interface Delivery {
  readonly message: IncomingMessage;
  /** The queue it came from. */
  readonly queue: string;
  /**
   * Taken with `get()`: how many messages were still ready in the queue behind this one (AMQP
   * `basic.get-ok`'s message count), so the depth of the queue is this plus one, plus any taken
   * before and not yet settled. `undefined` for a consumed delivery.
   */
  readonly remaining?: number | undefined;
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
   * the queue's dead-letter queue (`<queue>.dlq`; for a partition, its partitioned queue's
   * shared one). The original is acknowledged once the copy is safely stored.
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
  /**
   * Binding patterns may put `#` before a literal word (`a.#.c`, `#.a`). Where false (NATS), such
   * a pattern is refused by `declare` with `UnsupportedBindingError` (code `unsupported-binding`)
   * before anything is created, and every other pattern routes exactly as on RabbitMQ.
   */
  readonly innerHash: boolean;
  /**
   * The largest message, body and headers, the broker accepts, in bytes (`Infinity` when it is
   * far above anything the suite sends). The suite tests the runtime's `oversize` limit below it.
   */
  readonly maxMessageBytes: number;
  /**
   * Partitioned queues (`QueueSpec.partitions`): routing by bucket to one partition, the
   * unkeyed fallback to partition 0, one active consumer per partition, a shared dead-letter
   * queue (see docs/scaling.md). Where false, `declare` refuses a partitioned queue with
   * `UnsupportedBindingError` before anything is created.
   */
  readonly partitions: boolean;
}
