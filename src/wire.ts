/**
 * `tidings/wire`: the building blocks below the service API, for transports, tools and tests:
 * envelopes and their wire names, the codecs (native and Celery), routing keys and topic
 * patterns, schema validation and the retry arithmetic. A service needs none of it.
 *
 * @module
 */

export {
  AMQP_SHORTSTR_MAX,
  assertName,
  bucketOf,
  bucketsOfPartition,
  compilePattern,
  isKeyed,
  KEY_BUCKETS,
  type KeyFunction,
  type KeyValue,
  keyOf,
  keyText,
  MAX_PARTITIONS,
  matchesPattern,
  parseRoutingKey,
  partitionOfBucket,
  partitionOfKey,
  routingKeyOf,
  type SchemaAt,
  type SchemasOf,
  splitWords,
  type TopicMatcher,
} from './contracts/index.js';
export {
  type CeleryDecodeError,
  type CeleryDecodeFailure,
  type CeleryEncodeOptions,
  type CeleryMessage,
  type DecodedCelery,
  decodeCelery,
  encodeCelery,
  isCeleryMessage,
} from './envelope/celery.js';
export {
  type Codec,
  celeryCodec,
  codecFor,
  type Decoded,
  type DecodedMessage,
  type DecodeFailure,
  type DecodeFailureReason,
  decodeMessage,
  tidingsCodec,
} from './envelope/codec.js';
export {
  attemptsOf,
  envelopeFromMessage,
  envelopeToProperties,
  SPEC_VERSION,
  timeFromTimestamp,
} from './envelope/envelope.js';
export { isoNow, uuidv7 } from './envelope/id.js';
export {
  isRetryable,
  type ResolvedRetryPolicy,
  resolveRetryPolicy,
  retryDelay,
} from './runtime/retry.js';
export { validate } from './runtime/validate.js';
export {
  partitionBuckets,
  partitionExchangeName,
  unkeyedExchangeName,
} from './transports/transport.js';
