import { deadLetterQueueName } from '../transport.js';

/**
 * The kind of queue the transport declares.
 *
 * - `quorum`: Raft-replicated and durable; supports a delivery limit (poison messages go to the
 *   dead-letter queue) and at-least-once dead-lettering, so a message leaving a retry queue is not
 *   lost if the broker stops at that moment. RabbitMQ 3.10 or later.
 * - `classic`: one copy, on one node; about a third faster to publish to on a single node, with
 *   at-most-once dead-lettering.
 */
export type QueueType = 'quorum' | 'classic';

/** What decides the arguments of the queues: the transport's options. */
export interface QueueArgumentOptions {
  readonly queueType: QueueType;
  /** Quorum only: deliveries after which RabbitMQ dead-letters a message; undefined for none. */
  readonly deliveryLimit: number | undefined;
}

/** `x-` arguments of a queue declaration, as amqplib sends them. */
export type QueueArguments = Readonly<Record<string, string | number | boolean>>;

/*
 * Every RabbitMQ `x-` argument Tidings uses is produced in this module, so the wire contract with
 * the broker (what a queue "is") lives in one place. A change here changes the arguments of
 * existing queues, which RabbitMQ refuses (PRECONDITION_FAILED): treat these as persistent, like
 * queue names.
 */

function typeArgument(o: QueueArgumentOptions): Record<string, string> {
  return { 'x-queue-type': o.queueType };
}

/**
 * Dead-letters to `routingKey` through the default exchange, so the message reaches exactly that
 * queue and no other. On quorum queues the strategy is at-least-once: the source keeps the message
 * until the target has confirmed it (this needs `x-overflow: reject-publish`).
 */
function deadLetterArguments(routingKey: string, o: QueueArgumentOptions): Record<string, string> {
  const args: Record<string, string> = {
    'x-dead-letter-exchange': '',
    'x-dead-letter-routing-key': routingKey,
  };
  if (o.queueType === 'quorum') {
    args['x-dead-letter-strategy'] = 'at-least-once';
    args['x-overflow'] = 'reject-publish';
  }
  return args;
}

/**
 * A work queue (`<service>.<exchange>.<event>`): its type; messages RabbitMQ itself dead-letters
 * (delivery limit reached, a `max-length` policy) go to `<queue>.dlq`; on quorum queues, the
 * delivery limit.
 */
export function workQueueArguments(queue: string, o: QueueArgumentOptions): QueueArguments {
  const args: Record<string, string | number> = {
    ...typeArgument(o),
    ...deadLetterArguments(deadLetterQueueName(queue), o),
  };
  if (o.queueType === 'quorum' && o.deliveryLimit !== undefined) {
    args['x-delivery-limit'] = o.deliveryLimit;
  }
  return args;
}

/** A dead-letter queue (`<queue>.dlq`): only its type. Messages stay until replayed or purged. */
export function deadLetterQueueArguments(o: QueueArgumentOptions): QueueArguments {
  return typeArgument(o);
}

/**
 * A retry queue (`<queue>.retry.<n>`): no consumer ever reads it. Each message carries its delay
 * as its `expiration`; when it expires RabbitMQ dead-letters it to the work queue `queue` only.
 */
export function retryQueueArguments(queue: string, o: QueueArgumentOptions): QueueArguments {
  return { ...typeArgument(o), ...deadLetterArguments(queue, o) };
}

/**
 * A partition of a partitioned queue (`<queue>.p<i>`): a work queue whose dead letters go to the
 * partitioned queue's shared `<queue>.dlq`, with a single active consumer (`x-single-active-
 * consumer`), so that however many replicas consume it, one at a time receives its messages, in
 * order, and the next takes over (with what was unacknowledged) when it goes.
 */
export function partitionQueueArguments(
  deadLetterQueue: string,
  o: QueueArgumentOptions,
): QueueArguments {
  const args: Record<string, string | number | boolean> = {
    ...typeArgument(o),
    ...deadLetterArguments(deadLetterQueue, o),
    'x-single-active-consumer': true,
  };
  if (o.queueType === 'quorum' && o.deliveryLimit !== undefined) {
    args['x-delivery-limit'] = o.deliveryLimit;
  }
  return args;
}

/**
 * The headers exchange of a partitioned queue (`<queue>.partition.<n>`): what matches none of
 * its bucket bindings (a message without `tidings-bucket`) goes to its alternate exchange,
 * `<queue>.unkeyed`, instead of being dropped.
 */
export function partitionExchangeArguments(unkeyedExchange: string): QueueArguments {
  return { 'alternate-exchange': unkeyedExchange };
}

/**
 * A tap's temporary queue: at most `maxLength` copies wait; past that RabbitMQ drops the oldest,
 * so a tap nobody reads cannot grow without bound.
 */
export function tapQueueArguments(maxLength: number): QueueArguments {
  return { 'x-max-length': maxLength, 'x-overflow': 'drop-head' };
}
