/**
 * The attribute and metric names Tidings writes, in one place. Names under `messaging.*`,
 * `rabbitmq.*` and `error.type` are OpenTelemetry semantic conventions (messaging spans as of
 * semantic conventions 1.44, the renames of 1.45 written beside the names they replace); names
 * under `tidings.*` are Tidings' own. They are public, lasting identifiers: dashboards and alerts
 * are built on them. `src/observability/otel.test.ts` checks each convention name against
 * `@opentelemetry/semantic-conventions`.
 *
 * @module
 */

/** Span and metric attributes. */
export const ATTRIBUTES = {
  /** `rabbitmq` on RabbitMQ, else the transport's kind (`memory`). */
  system: 'messaging.system',
  /** The same value under the name semantic conventions 1.45 give it. */
  systemName: 'messaging.system.name',
  /** `send`, `process`, `ack`, `retry`, `dead_letter` or `requeue`. */
  operationName: 'messaging.operation.name',
  /** `send`, `process` or `settle`. */
  operationType: 'messaging.operation.type',
  /** `<exchange>:<routing key>` when sending, `<exchange>:<routing key>:<queue>` when consuming. */
  destinationName: 'messaging.destination.name',
  /** The routing key, on RabbitMQ (`order.v1.submit`). */
  routingKey: 'messaging.rabbitmq.destination.routing_key',
  /** The same, under the name semantic conventions 1.45 give it. */
  rabbitmqRoutingKey: 'rabbitmq.destination.routing_key',
  /** The envelope's id. */
  messageId: 'messaging.message.id',
  /** The envelope's correlation id. */
  conversationId: 'messaging.message.conversation_id',
  /** The handler's queue: every instance of a service consumes it, as one group. */
  consumerGroup: 'messaging.consumer.group.name',
  /** Bytes of the body. */
  bodySize: 'messaging.message.body.size',
  /** The error's name (`ValidationError`), or the dead-letter reason for input that cannot be read. */
  errorType: 'error.type',
  /** The service that sends or handles the message (`billing`). */
  service: 'tidings.service',
  /** `<exchange>.<event>`: `order.submit`. */
  event: 'tidings.event',
  /** The version of the event on the wire. */
  version: 'tidings.event.version',
  /** The envelope's causation id: the message whose handler published this one. */
  causationId: 'tidings.message.causation_id',
  /** 1 on the first delivery, 2 on the first retry, and so on. */
  attempt: 'tidings.delivery.attempt',
  /** The handler's name. */
  handler: 'tidings.handler',
  /** Why a message was dead-lettered (`handler-error`, `schema-violation`, ...). */
  deadLetterReason: 'tidings.dead_letter.reason',
  /** `false` on a send that no queue received. */
  routed: 'tidings.routed',
  /** `work` for a handler's queue, `dead-letter` for its `.dlq`. */
  queueKind: 'tidings.queue.kind',
} as const;

/** Metric names. */
export const METRICS = {
  /** Counter: messages sent (published), by event and version; failures carry `error.type`. */
  sent: 'messaging.client.sent.messages',
  /** Counter: messages delivered to a handler's queue consumer. */
  consumed: 'messaging.client.consumed.messages',
  /** Histogram, seconds: a send until the broker confirmed it (or refused it). */
  operationDuration: 'messaging.client.operation.duration',
  /** Histogram, seconds: how long handlers ran. */
  processDuration: 'messaging.process.duration',
  /** Counter: messages handled and acknowledged (duplicates acknowledged unhandled included). */
  acked: 'tidings.messages.acked',
  /** Counter: messages parked for another attempt. */
  retried: 'tidings.messages.retried',
  /** Counter: messages moved to a dead-letter queue, by reason. */
  deadLettered: 'tidings.messages.dead_lettered',
  /** Histogram, seconds: from the envelope's time (when first published) to the start of processing. */
  lag: 'tidings.delivery.lag',
  /** Gauge: messages ready in each consumed queue and its dead-letter queue. */
  queueDepth: 'tidings.queue.depth',
} as const;

/** Values of `messaging.operation.type` (semantic conventions' well-known values). */
export const OPERATION_TYPES = { send: 'send', process: 'process', settle: 'settle' } as const;

/** How a delivery was settled: the `messaging.operation.name` of a settle span. */
export type SettleOperation = 'ack' | 'retry' | 'dead_letter' | 'requeue';

/**
 * `messaging.destination.name` as the RabbitMQ conventions define it: `<exchange>:<routing key>`
 * for a send, `<exchange>:<routing key>:<queue>` for a consumer; empty parts are left out, and a
 * queue named like its routing key is named once.
 */
export function destinationName(exchange: string, routingKey: string, queue?: string): string {
  const parts: string[] = [];
  if (exchange !== '') parts.push(exchange);
  if (routingKey !== '') parts.push(routingKey);
  if (queue !== undefined && queue !== '' && queue !== routingKey) parts.push(queue);
  return parts.length === 0 ? 'amq.default' : parts.join(':');
}

/** Histogram buckets (seconds) the semantic conventions advise for messaging durations. */
export const DURATION_BUCKETS = [
  0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10,
];

/** Buckets (seconds) for the delivery lag, which spans retries' delays and consumers that were down. */
export const LAG_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600];
