export { brokerReachable, canRun, uniqueName } from './broker.js';
export { type ConformanceOptions, describeTransportConformance, waitFor } from './conformance.js';
export { ROUTING_KEYS, ROUTING_TABLE } from './routing-table.js';
export {
  type TestKeyed,
  type TestOrder,
  testFollowUpSchema,
  testKeyedSchema,
  testOrderSchema,
} from './schema.js';
export {
  describeIdempotencyStoreConformance,
  type IdempotencyStoreSuiteOptions,
} from './stores.js';
export { testVhost } from './vhost.js';
