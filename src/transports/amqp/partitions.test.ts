import { connect as amqplibConnect, type Channel } from 'amqplib';
import { describe, expect, it } from 'vitest';
import { defineEvent, defineExchange } from '../../contracts/event.js';
import { bucketsOfPartition } from '../../contracts/key.js';
import { TopologyConflictError } from '../../errors.js';
import { silentLogger } from '../../logger.js';
import { createService } from '../../runtime/service.js';
import { brokerReachable, uniqueName } from '../../testing/broker.js';
import { waitFor } from '../../testing/conformance.js';
import { testKeyedSchema } from '../../testing/schema.js';
import { partitionQueueName } from '../transport.js';
import { amqpTransport, planTopology } from './index.js';

const url = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const { hostname, port } = new URL(url);
const up = await brokerReachable(hostname, Number(port || 5672), 'RabbitMQ');

async function raw<T>(fn: (channel: Channel) => Promise<T>): Promise<T> {
  const connection = await amqplibConnect(url);
  const channel = await connection.createChannel();
  channel.on('error', () => {});
  try {
    return await fn(channel);
  } finally {
    await connection.close().catch(() => {});
  }
}

describe('partitioned queues on RabbitMQ', () => {
  it('plans the same entities, names and arguments every time (they are persistent)', () => {
    const plan = planTopology(
      {
        exchanges: [],
        queues: [
          {
            name: 'billing.order.submit',
            bindings: [{ exchange: 'order', pattern: 'order.*.submit' }],
            partitions: 2,
          },
        ],
      },
      { queueType: 'quorum', deliveryLimit: 20 },
    );
    const buckets = plan.filter((d) => d.kind === 'binding' && d.arguments);
    expect(buckets).toHaveLength(64);
    const shown = plan.filter(
      (d) => !(d.kind === 'binding' && d.arguments) && d.kind !== 'exchange-delete',
    );
    expect(shown).toMatchSnapshot();
    expect(
      buckets
        .filter((d) => d.kind === 'binding' && d.queue.endsWith('.p1'))
        .map((d) => (d.kind === 'binding' ? d.arguments?.['tidings-bucket'] : '')),
    ).toEqual(bucketsOfPartition(1, 2).map(String));
    const deleted = plan.filter((d) => d.kind === 'exchange-delete').map((d) => d.name);
    expect(deleted).toHaveLength(63);
    expect(deleted).not.toContain('billing.order.submit.partition.2');
    // The old partition exchanges go only after the new one is bound.
    const boundAt = plan.findIndex((d) => d.kind === 'exchange-binding');
    const firstDelete = plan.findIndex((d) => d.kind === 'exchange-delete');
    expect(boundAt).toBeLessThan(firstDelete);
  });

  it.skipIf(!up)(
    'reports a partition queue that exists with other arguments, naming every difference',
    async () => {
      const queue = uniqueName('drift');
      const exchange = uniqueName('ex');
      const spec = {
        exchanges: [exchange],
        queues: [{ name: queue, bindings: [{ exchange, pattern: '#' }], partitions: 1 }],
      };
      const classic = amqpTransport({ url, queueType: 'classic', logger: silentLogger });
      const quorum = amqpTransport({ url, logger: silentLogger });
      try {
        await classic.declare(spec);
        const error = await quorum.declare(spec).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(error).toBeInstanceOf(TopologyConflictError);
        expect((error as TopologyConflictError).entity).toContain(`${queue}.dlq`);
        expect((error as TopologyConflictError).difference).toContain('x-queue-type');
      } finally {
        await classic.deleteTopology(spec, { exchanges: true });
        await Promise.all([classic.close(), quorum.close()]);
      }
    },
  );

  it.skipIf(!up)(
    'declares the partitioned topology again when a partition is deleted under its consumer, and resumes',
    async () => {
      const transport = amqpTransport({
        url,
        logger: silentLogger,
        reconnect: { initialDelayMs: 20, maxDelayMs: 200 },
      });
      const exchange = defineExchange(uniqueName('shop'));
      const placed = defineEvent(exchange, 'placed', testKeyedSchema, { key: (o) => o.customer });
      const service = createService({ name: uniqueName('svc'), transport, logger: silentLogger });
      const got: string[] = [];
      service.on(placed, (o) => void got.push(o.customer), { partitions: 2 });
      const resumed: string[] = [];
      transport.on('consumer-resumed', (e) => resumed.push(e.queue));
      const queue = service.describe().handlers[0]!.queue;
      try {
        await service.start();
        await raw((channel) => channel.deleteQueue(partitionQueueName(queue, 0)));
        await waitFor(
          () => resumed.includes(partitionQueueName(queue, 0)),
          'the consumer of p0 to resume',
          20_000,
        );
        const producer = createService({ name: 'producer', transport, logger: silentLogger });
        // Keys of both partitions, p0 among them.
        const keys = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'];
        for (const customer of keys) await producer.publish(placed, { customer, seq: 1 });
        await waitFor(() => got.length === keys.length, 'every message', 20_000);
        expect([...got].sort()).toEqual(keys);
      } finally {
        await service.stop();
        await transport.deleteTopology(service.topology(), { exchanges: true }).catch(() => {});
        await transport.close();
      }
    },
  );
});
