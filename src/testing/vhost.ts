import {
  createTemporaryVhost,
  type TemporaryVhost,
  VhostAdminError,
} from '../transports/amqp/vhost.js';

/**
 * A RabbitMQ vhost of its own for one test file, so that its exchanges, queues and messages never
 * meet those of other test files or of a user's runs, even under fixed names such as `order`.
 * Made with `rabbitmqctl` (see `createTemporaryVhost` in `tidings/amqp`); delete it in `afterAll`.
 * When `rabbitmqctl` cannot make it, resolves `undefined` after saying so on stderr, so the tests
 * are skipped with a visible reason; in CI (`CI` set) it rejects instead.
 *
 * ```ts
 * const vhost = up ? await testVhost(AMQP_URL, 'interop') : undefined;
 * describe.skipIf(!vhost)('on a vhost of its own', () => {
 *   afterAll(() => vhost?.delete());
 *   // connect to vhost.url
 * });
 * ```
 */
export async function testVhost(
  url: string,
  prefix = 'tidings-test',
): Promise<TemporaryVhost | undefined> {
  try {
    return await createTemporaryVhost(url, { prefix });
  } catch (error) {
    if (!(error instanceof VhostAdminError) || process.env.CI) throw error;
    console.warn(`\n  SKIPPED: these tests need a vhost of their own. ${error.message}\n`);
    return undefined;
  }
}
