export * from './event.js';
export * from './key.js';
export { AMQP_SHORTSTR_MAX, assertName } from './names.js';
export { compilePattern, matchesPattern, splitWords, type TopicMatcher } from './pattern.js';
