import { silentLogger } from '../../logger.js';
import { brokerReachable } from '../../testing/broker.js';
import { describeTransportConformance } from '../../testing/conformance.js';
import { amqpTransport } from './index.js';

const url = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const { hostname, port } = new URL(url);

if (await brokerReachable(hostname, Number(port || 5672), 'RabbitMQ')) {
  // Both queue types: quorum is the default, classic the documented alternative.
  for (const queueType of ['quorum', 'classic'] as const) {
    describeTransportConformance(`amqp (${queueType} queues)`, {
      create: () =>
        amqpTransport({
          url,
          queueType,
          connectionName: 'tidings conformance',
          logger: silentLogger,
        }),
      // RabbitMQ 3.10's default max_message_size is 128 MiB.
      features: {
        durable: true,
        multiProcess: true,
        innerHash: true,
        maxMessageBytes: 128 * 1024 * 1024,
        partitions: true,
      },
    });
  }
}
