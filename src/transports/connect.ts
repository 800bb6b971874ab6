import { ConfigError } from '../errors.js';
import { redactUrl } from '../redact.js';

export { redactUrl } from '../redact.js';

import { sharedMemoryBroker } from './memory/index.js';
import type { Transport } from './transport.js';

/**
 * Opens a transport from a URL, so a service moves from the embedded broker to RabbitMQ or NATS by
 * configuration alone (`BROKER_URL`):
 *
 * - `memory://` or `memory://<name>`: the in-process broker of that name (default `default`),
 *   shared by every service of the process that uses the same URL.
 * - `amqp://user:password@host:5672/vhost` or `amqps://…`: RabbitMQ, through `tidings/amqp`
 *   (amqplib must be installed; it is loaded only then). Query parameters `heartbeat`,
 *   `frame_max` and `connection_name` are honoured; other options need `amqpTransport(options)`.
 *   Nothing connects until the transport is first used.
 * - `nats://user:password@host:4222` (or `nats://token@host:4222`): NATS JetStream, through
 *   `tidings/nats` (`@nats-io/transport-node` and `@nats-io/jetstream` must be installed; they
 *   are loaded only then). The query parameter `namespace` is honoured; other options need
 *   `natsTransport(options)`. Nothing connects until the transport is first used.
 */
export async function connect(url: string): Promise<Transport> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigError([`not a URL: ${redactUrl(url)}`], 'broker URL');
  }
  switch (parsed.protocol) {
    case 'memory:':
      return sharedMemoryBroker(parsed.hostname || 'default').transport();
    case 'amqp:':
    case 'amqps:': {
      let amqp: typeof import('./amqp/index.js');
      try {
        amqp = await import('./amqp/index.js');
      } catch (error) {
        if (String((error as Error)?.message).includes('amqplib')) {
          throw new ConfigError(
            [`${parsed.protocol}// URLs need the amqplib package: npm install amqplib`],
            'broker URL',
          );
        }
        throw error;
      }
      return amqp.amqpTransport(url);
    }
    case 'nats:': {
      let nats: typeof import('./nats/index.js');
      try {
        nats = await import('./nats/index.js');
      } catch (error) {
        if (String((error as Error)?.message).includes('@nats-io')) {
          throw new ConfigError(
            [
              'nats:// URLs need the NATS client: npm install @nats-io/transport-node @nats-io/jetstream',
            ],
            'broker URL',
          );
        }
        throw error;
      }
      return nats.natsTransport(url);
    }
    default:
      throw new ConfigError(
        [
          `unsupported scheme "${parsed.protocol}" in ${redactUrl(url)} (expected memory:, amqp:, amqps: or nats:)`,
        ],
        'broker URL',
      );
  }
}
