import { defineConfig } from 'vitest/config';
import base, { CHAOS_TESTS } from './vitest.config.js';

/** The broker-restart and process-kill tests: one file at a time, after the main pass. */
export default defineConfig({
  ...base,
  test: {
    ...base.test,
    include: CHAOS_TESTS,
    exclude: ['**/node_modules/**', '**/dist/**'],
    typecheck: { enabled: false },
    fileParallelism: false,
    testTimeout: 180_000,
    hookTimeout: 120_000,
  },
});
