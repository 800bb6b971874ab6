export * from './contracts/index.js';
export * from './envelope/index.js';
export * from './errors.js';
export * from './ops/index.js';
export * from './runtime/index.js';
export { connect, redactUrl } from './transports/connect.js';
export {
  MemoryBroker,
  MemoryTransport,
  memoryTransport,
  sharedMemoryBroker,
} from './transports/memory/index.js';
export type {
  ConsumeOptions,
  Consumer,
  Delivery,
  PublishOutcome,
  QueueSpec,
  QueueStats,
  Tap,
  TapOptions,
  Topology,
  Transport,
  TransportFeatures,
} from './transports/transport.js';
export { DEFAULT_EXCHANGE, deadLetterQueueName } from './transports/transport.js';
