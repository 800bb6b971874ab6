import { connect as amqplibConnect } from 'amqplib';
import { describe, expect, it } from 'vitest';
import { brokerReachable, uniqueName } from '../../testing/broker.js';
import { waitFor } from '../../testing/conformance.js';
import type { Delivery } from '../transport.js';
import { amqpTransport } from './index.js';

const url = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const broker = new URL(url);
const up = await brokerReachable(broker.hostname, Number(broker.port || 5672), 'RabbitMQ');

describe.skipIf(!up)('headers of delivered messages', () => {
  it('keeps a header named __proto__ as an ordinary header, in an object without a prototype', async () => {
    const t = amqpTransport({ url, connectionName: 'headers-test' });
    const exchange = uniqueName('ex');
    const queue = `${exchange}.q`;
    const topology = {
      exchanges: [exchange],
      queues: [{ name: queue, bindings: [{ exchange, pattern: '#' }] }],
    };
    await t.declare(topology);
    const raw = await amqplibConnect(url);
    const channel = await raw.createConfirmChannel();
    const headers = JSON.parse('{"__proto__": {"polluted": "yes"}, "x-kept": "ok"}');
    channel.publish(exchange, 'k', Buffer.from('{}'), { headers });
    await channel.waitForConfirms();
    await raw.close();
    const got: Delivery[] = [];
    await t.consume(queue, { prefetch: 1 }, (d) => {
      got.push(d);
      d.ack().catch(() => {});
    });
    await waitFor(() => got.length === 1, 'the delivery');
    const h = got[0]!.message.properties.headers;
    expect(Object.getPrototypeOf(h)).toBeNull();
    expect(Object.keys(h).sort()).toEqual(['__proto__', 'x-kept']);
    expect(h['x-kept']).toBe('ok');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    await t.deleteTopology(topology, { exchanges: true });
    await t.close();
  });
});
