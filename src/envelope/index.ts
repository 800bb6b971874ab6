export * from './celery.js';
export * from './envelope.js';
export { uuidv7 } from './id.js';
