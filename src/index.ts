/**
 * Tidings: typed, versioned, asynchronous events between services. This entry holds what a
 * service needs: contracts, services and handlers, connecting to a broker, the errors, and the
 * embedded broker. Below it: `tidings/wire` (envelopes, codecs, routing keys and patterns, for
 * transports and tools), `tidings/ops` (dead-letter operations), `tidings/memory`, `tidings/amqp`,
 * `tidings/nats`, `tidings/redis`, `tidings/postgres`, `tidings/tooling`, `tidings/otel` (OpenTelemetry), `tidings/console` and
 * `tidings/testing`.
 *
 * @module
 */

export {
  type AnyEvent,
  type AnySchema,
  defineEvent,
  defineExchange,
  type EventDefinition,
  type EventOptions,
  type EventVersion,
  type Exchange,
  type ExchangeOptions,
  type LatestVersionOf,
  type Payload,
  type PayloadInput,
  type SchemaInput,
  type SchemaOutput,
  type VersionOf,
  type VersionOptions,
  type WireFormat,
} from './contracts/event.js';
export {
  type DeadLetterReason,
  type Envelope,
  HEADERS,
  type HeaderValue,
  type IncomingMessage,
  type MessageProperties,
  type OutgoingMessage,
} from './envelope/envelope.js';
export { uuidv7 } from './envelope/id.js';
export {
  BrokerOperationError,
  ConfigError,
  ConnectionError,
  InvalidNameError,
  MessageEncodingError,
  NonRetryableError,
  PartitionKeyError,
  PublishBufferFullError,
  PublishRejectedError,
  PublishTimeoutError,
  StateError,
  TidingsError,
  type TidingsErrorCode,
  TopologyConflictError,
  UnroutableError,
  ValidationError,
  type ValidationIssue,
} from './errors.js';
export {
  consoleLogger,
  type FieldsFirstLogger,
  type Logger,
  pinoLogger,
  silentLogger,
} from './logger.js';
export { redactUrl } from './redact.js';
export { type RunningService, type RunServiceOptions, runService, type Stoppable } from './run.js';
export {
  type ClaimResult,
  IDEMPOTENCY_DEFAULTS,
  type IdempotencyOptions,
  type IdempotencyStore,
  MemoryIdempotencyStore,
  type MemoryIdempotencyStoreOptions,
} from './runtime/idempotency.js';
export type { Outbox, OutboxEntry, OutboxTransaction } from './runtime/outbox.js';
export { DEFAULT_RETRY_POLICY, type RetryPolicy } from './runtime/retry.js';
export {
  createService,
  type DeliveryProbe,
  type EventMessage,
  type Handler,
  type HandlerContext,
  type HandlerInfo,
  type HandlerOptions,
  type Instrumentation,
  type InstrumentedService,
  type Listener,
  type MultiHandlerOptions,
  type PartitionOptions,
  type Publication,
  type Publish,
  type PublishOptions,
  type PublishProbe,
  Service,
  type ServiceDescription,
  type ServiceEvents,
  type ServiceInstrumentation,
  type ServiceOptions,
  type ServiceState,
  type UnroutablePolicy,
} from './runtime/service.js';
export { type StopOnSignalsOptions, stopOnSignals } from './runtime/signals.js';
export { connect } from './transports/connect.js';
export { MemoryBroker, MemoryTransport, memoryTransport } from './transports/memory/index.js';
export {
  type ConsumeOptions,
  type Consumer,
  DEFAULT_EXCHANGE,
  type Delivery,
  deadLetterQueueName,
  type PublishOutcome,
  partitionQueueName,
  type QueueSpec,
  type QueueStats,
  type Tap,
  type TapOptions,
  type Topology,
  type Transport,
  type TransportFeatures,
} from './transports/transport.js';
