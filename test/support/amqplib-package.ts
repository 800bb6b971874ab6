import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/**
 * The amqplib package the tests run on: the project's own (0.10), or the one the second pass of
 * the RabbitMQ tests points at with `TIDINGS_AMQPLIB` (an npm alias of amqplib 2.x, see
 * vitest.amqplib2.config.ts). Internal modules are loaded by path, which amqplib 2's `exports`
 * map would refuse by name.
 */
const require = createRequire(import.meta.url);
const name = process.env.TIDINGS_AMQPLIB ?? 'amqplib';
// Both 0.10 and 2.x keep their entry point, channel_api.js, at the package's root.
const dir = dirname(require.resolve(name, { paths: [process.cwd()] }));

/** Its version, from its package.json. */
export const amqplibVersion: string = (require(join(dir, 'package.json')) as { version: string })
  .version;

/** Loads one of its internal modules, e.g. `lib/defs.js`. */
export function amqplibInternal<T>(path: string): T {
  return require(join(dir, path)) as T;
}
