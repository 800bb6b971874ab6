import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = (path: string) => fileURLToPath(new URL(`./src/${path}`, import.meta.url));

/**
 * Tests that stop or restart the broker (`*.chaos.test.ts`, `chaos.test.ts`) run in a second,
 * serial pass (`vitest.chaos.config.ts`), never beside the others: a broker restart would fail
 * whatever else was talking to it at that moment.
 */
export const CHAOS_TESTS = ['src/**/chaos.test.ts', '**/*.chaos.test.ts'];

export default defineConfig({
  resolve: {
    // Tests run against the sources; the examples import `tidings` exactly as users do.
    alias: [
      { find: /^tidings\/testing$/, replacement: src('testing/index.ts') },
      { find: /^tidings\/wire$/, replacement: src('wire.ts') },
      { find: /^tidings\/ops$/, replacement: src('ops/index.ts') },
      { find: /^tidings\/memory$/, replacement: src('transports/memory/index.ts') },
      { find: /^tidings\/amqp$/, replacement: src('transports/amqp/index.ts') },
      { find: /^tidings\/nats$/, replacement: src('transports/nats/index.ts') },
      { find: /^tidings\/redis$/, replacement: src('stores/redis.ts') },
      { find: /^tidings\/postgres$/, replacement: src('stores/postgres.ts') },
      { find: /^tidings\/tooling$/, replacement: src('tooling/index.ts') },
      { find: /^tidings\/console$/, replacement: src('console/index.ts') },
      { find: /^tidings\/otel$/, replacement: src('observability/index.ts') },
      { find: /^tidings$/, replacement: src('index.ts') },
    ],
  },
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts', 'examples/**/*.test.ts'],
    exclude: ['**/node_modules/**', '**/dist/**', ...CHAOS_TESTS],
    typecheck: { enabled: true, include: ['test/**/*.test-d.ts'], tsconfig: './tsconfig.json' },
    testTimeout: 20_000,
    hookTimeout: 30_000,
    // Broker tests share one RabbitMQ; files run in parallel, tests within a file in order.
    fileParallelism: true,
  },
});
