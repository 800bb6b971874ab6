export * from './celery.js';
export * from './codec.js';
export * from './envelope.js';
export { uuidv7 } from './id.js';
