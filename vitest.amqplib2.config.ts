import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';
import base, { CHAOS_TESTS } from './vitest.config.js';

/**
 * The RabbitMQ transport's tests a second time, on amqplib 2 (the `amqplib-2` npm alias among the
 * devDependencies) instead of 0.10: the two ends of the peer range `^0.10.9 || ^2.3.1`. amqplib 2
 * reorders the code of `ConfirmChannel.publish` that the fast publish path stands in for, so the
 * byte-for-byte and path tests matter most here.
 */
const amqplib2 = fileURLToPath(new URL('./node_modules/amqplib-2/channel_api.js', import.meta.url));

export default defineConfig({
  ...base,
  resolve: {
    alias: [
      { find: /^amqplib$/, replacement: amqplib2 },
      ...((base.resolve?.alias ?? []) as { find: RegExp; replacement: string }[]),
    ],
  },
  test: {
    ...base.test,
    include: ['src/transports/amqp/**/*.test.ts'],
    exclude: ['**/node_modules/**', '**/dist/**', ...CHAOS_TESTS],
    typecheck: { enabled: false },
    env: { TIDINGS_AMQPLIB: 'amqplib-2' },
  },
});
