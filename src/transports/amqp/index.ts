/**
 * `tidings/amqp`: the RabbitMQ transport. amqplib is an optional peer dependency, needed only by
 * this entry point.
 */
export type { QueueArgumentOptions, QueueArguments, QueueType } from './args.js';
export type { AmqpTransportEvents, ConnectionRole, Unsubscribe } from './events.js';
export type {
  AmqpEndpoint,
  AmqpTlsOptions,
  AmqpTransportOptions,
  ReconnectOptions,
  ResolvedAmqpOptions,
} from './options.js';
export {
  type Declaration,
  type ExchangeType,
  MAX_RETRY_LEVEL,
  planTopology,
  retryLevel,
  retryQueueName,
} from './topology.js';
export { AmqpTransport, amqpTransport } from './transport.js';
export {
  createTemporaryVhost,
  type TemporaryVhost,
  type TemporaryVhostOptions,
  VhostAdminError,
} from './vhost.js';
