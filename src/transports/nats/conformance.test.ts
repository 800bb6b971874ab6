import { silentLogger } from '../../logger.js';
import { brokerReachable } from '../../testing/broker.js';
import { describeTransportConformance } from '../../testing/conformance.js';
import { natsTransport } from './index.js';

const url = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const { hostname, port } = new URL(url);

if (await brokerReachable(hostname, Number(port || 4222), 'NATS')) {
  const probe = natsTransport({ url, logger: silentLogger });
  const maxMessageBytes = await probe.maxPayload();
  await probe.close();
  describeTransportConformance('nats', {
    create: () => natsTransport({ url, name: 'tidings conformance', logger: silentLogger }),
    // NATS cannot put `#` before a literal word, and a message must fit the server's max_payload.
    features: {
      durable: true,
      multiProcess: true,
      innerHash: false,
      maxMessageBytes,
      partitions: false,
    },
  });
}
