import { connect as amqplibConnect } from 'amqplib';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../logger.js';
import { brokerReachable, uniqueName } from '../../testing/broker.js';
import { waitFor } from '../../testing/conformance.js';
import type { Delivery, Topology } from '../transport.js';
import { type AmqpTransport, amqpTransport } from './index.js';

const url = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const { hostname, port } = new URL(url);
const up = await brokerReachable(hostname, Number(port || 5672), 'RabbitMQ');

type Ack = (message: { fields: { deliveryTag: number } }, allUpTo?: boolean) => void;

/** The prototype that holds amqplib's `Channel#ack` (of the amqplib these tests run on). */
async function ackOwner(): Promise<{ ack: Ack }> {
  const connection = await amqplibConnect(url);
  try {
    let proto: unknown = Object.getPrototypeOf(await connection.createChannel());
    while (proto && !Object.hasOwn(proto, 'ack')) proto = Object.getPrototypeOf(proto);
    if (!proto) throw new Error("no prototype of amqplib's channel has ack");
    return proto as { ack: Ack };
  } finally {
    await connection.close();
  }
}

/** Every `basic.ack` amqplib sends, with its `multiple` flag, while `fn` runs. */
async function countingAcks<T>(
  fn: (acks: { tag: number; multiple: boolean }[]) => Promise<T>,
): Promise<T> {
  const acks: { tag: number; multiple: boolean }[] = [];
  const proto = await ackOwner();
  const original = proto.ack;
  proto.ack = function (this: unknown, message, allUpTo) {
    acks.push({ tag: message.fields.deliveryTag, multiple: allUpTo === true });
    return original.call(this, message, allUpTo);
  };
  try {
    return await fn(acks);
  } finally {
    proto.ack = original;
  }
}

describe.skipIf(!up)('RabbitMQ transport: batched acks', () => {
  const transports: AmqpTransport[] = [];
  const topologies: Topology[] = [];

  afterEach(async () => {
    for (const t of transports.splice(0)) await t.close();
    const admin = amqpTransport({ url, logger: silentLogger });
    for (const topology of topologies.splice(0)) {
      await admin.deleteTopology(topology, { exchanges: true }).catch(() => {});
    }
    await admin.close();
  });

  /** A queue with `n` messages (bodies "1".."n"), and a consumer holding them all unsettled. */
  async function held(n: number) {
    const exchange = uniqueName('acks');
    const queue = `${exchange}.q`;
    const topology: Topology = {
      exchanges: [exchange],
      queues: [{ name: queue, bindings: [{ exchange, pattern: '#' }] }],
    };
    topologies.push(topology);
    const t = amqpTransport({ url, logger: silentLogger, queueType: 'classic' });
    transports.push(t);
    await t.declare(topology);
    for (let i = 1; i <= n; i++) {
      await t.publish({
        exchange,
        routingKey: 'k',
        body: Buffer.from(String(i)),
        properties: { headers: {} },
      });
    }
    const got: Delivery[] = [];
    await t.consume(queue, { prefetch: n }, (d) => void got.push(d));
    await waitFor(() => got.length === n, `${n} deliveries`, 15_000);
    got.sort((a, b) => Number(a.message.body) - Number(b.message.body));
    return { t, queue, got };
  }

  /** What is left in `queue` once every consumer is gone, read with basic.get. */
  async function leftIn(queue: string): Promise<string[]> {
    const connection = await amqplibConnect(url);
    try {
      const channel = await connection.createChannel();
      const left: string[] = [];
      for (;;) {
        const m = await channel.get(queue, { noAck: true });
        if (m === false) return left.sort();
        left.push(m.content.toString());
      }
    } finally {
      await connection.close();
    }
  }

  it('acks a burst settled in one tick with one multiple ack', async () => {
    const { t, queue, got } = await held(20);
    await countingAcks(async (acks) => {
      for (const d of got) await Promise.resolve(d.ack());
      await new Promise((r) => setImmediate(r));
      expect(acks.length).toBe(1);
      expect(acks[0]!.multiple).toBe(true);
    });
    await t.close();
    expect(await leftIn(queue)).toEqual([]);
  });

  it('never lets a multiple ack cover a message still unsettled before it', async () => {
    const { t, queue, got } = await held(10);
    await countingAcks(async (acks) => {
      // 3 and 6 stay unsettled, 4 is requeued; the others are acknowledged out of order, in two
      // ticks: 1 and 2 make a run at the head (one multiple ack), 5 and 7 wait behind 3.
      for (const i of [2, 1, 5, 7]) await got[i - 1]!.ack();
      await got[4 - 1]!.requeue();
      await new Promise((r) => setImmediate(r));
      for (const i of [9, 10, 8]) await got[i - 1]!.ack();
      await new Promise((r) => setImmediate(r));
      const tag = (i: number) =>
        (got[i - 1] as unknown as { raw: { fields: { deliveryTag: number } } }).raw.fields
          .deliveryTag;
      expect(acks).toContainEqual({ tag: tag(2), multiple: true });
      expect(acks.filter((a) => a.multiple)).toHaveLength(1);
      expect(acks.length).toBe(6);
    });
    // Closing returns what is unsettled to the queue; an over-eager multiple ack would have
    // taken 3 or 6 with it.
    await t.close();
    expect(await leftIn(queue)).toEqual(['3', '4', '6']);
  });

  it('keeps a message whose retry copy is not yet confirmed out of a later multiple ack', async () => {
    const { t, queue, got } = await held(5);
    const parking = got[0]!.retry(60_000, { 'x-test': 'parked' });
    for (const d of got.slice(1)) await d.ack();
    await parking;
    await new Promise((r) => setImmediate(r));
    await t.close();
    // The original of 1 is acknowledged once its copy is parked in the retry queue: the work
    // queue is empty, and nothing was lost on the way.
    expect(await leftIn(queue)).toEqual([]);
    expect(await leftIn(`${queue}.retry.1`).catch(() => ['no retry queue'])).toEqual(['1']);
  });
});
