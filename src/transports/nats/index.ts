/**
 * `tidings/nats`: the NATS JetStream transport. `@nats-io/transport-node` and
 * `@nats-io/jetstream` are optional peer dependencies, needed only by this entry point.
 */
export type { NatsReconnectOptions, NatsTransportOptions, ResolvedNatsOptions } from './options.js';
export {
  bindingConsumerName,
  exchangeStreamName,
  exchangeSubject,
  normalizePattern,
  patternFilter,
  queueStreamName,
  queueSubject,
} from './subjects.js';
export { type PlannedBinding, planQueue, type QueuePlan } from './topology.js';
export { NatsTransport, type NatsTransportEvents, natsTransport } from './transport.js';
