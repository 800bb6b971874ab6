import { describeTransportConformance } from '../../testing/conformance.js';
import { MemoryBroker } from './broker.js';

const broker = new MemoryBroker();

describeTransportConformance('memory', {
  create: () => broker.transport(),
  features: {
    durable: false,
    multiProcess: false,
    innerHash: true,
    maxMessageBytes: Infinity,
    partitions: true,
  },
});
