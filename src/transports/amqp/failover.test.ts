import { describe, expect, it } from 'vitest';
import { defineEvent, defineExchange } from '../../contracts/event.js';
import { silentLogger } from '../../logger.js';
import { createService } from '../../runtime/service.js';
import { brokerReachable, uniqueName } from '../../testing/broker.js';
import { waitFor } from '../../testing/conformance.js';
import { testOrderSchema } from '../../testing/schema.js';
import { amqpTransport } from './index.js';
import { resolveAmqpOptions } from './options.js';

const url = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const broker = new URL(url);
const up = await brokerReachable(broker.hostname, Number(broker.port || 5672), 'RabbitMQ');

describe('several RabbitMQ hosts', () => {
  it('takes the hosts from urls, or from a url naming several, and checks them', () => {
    const listed = resolveAmqpOptions({
      urls: ['amqp://u:secret@node1:5672/shop', 'amqp://u:secret@node2:5673/shop'],
      logger: silentLogger,
    });
    const inline = resolveAmqpOptions({
      url: 'amqp://u:secret@node1:5672,node2:5673/shop?heartbeat=5',
      logger: silentLogger,
    });
    for (const o of [listed, inline]) {
      expect(o.endpoints.map((e) => `${e.hostname}:${e.port}`)).toEqual([
        'node1:5672',
        'node2:5673',
      ]);
      expect(o.endpoints.map((e) => e.displayUrl)).toEqual([
        'amqp://u:***@node1:5672/shop',
        'amqp://u:***@node2:5673/shop',
      ]);
      expect(o.vhost).toBe('shop');
    }
    expect(inline.heartbeat).toBe(5);
    expect(() =>
      resolveAmqpOptions({ urls: ['amqp://a', 'amqps://b'], logger: silentLogger }),
    ).toThrow(/protocol of the first/);
    expect(() => resolveAmqpOptions({ urls: [], logger: silentLogger })).toThrow(/non-empty/);
    expect(() =>
      resolveAmqpOptions({ url: 'amqp://a', urls: ['amqp://b'], logger: silentLogger }),
    ).toThrow(/not both/);
  });

  it.skipIf(!up)('connects to the next host when the first cannot be reached', async () => {
    // Port 1 on loopback: nothing listens there, so the connection is refused at once.
    const dead = `amqp://guest:guest@127.0.0.1:1/`;
    const transport = amqpTransport({ urls: [dead, url], logger: silentLogger });
    const connected: string[] = [];
    transport.on('connected', (e) => connected.push(e.url));
    const exchange = defineExchange(uniqueName('ha'));
    const submit = defineEvent(exchange, 'submit', testOrderSchema);
    const service = createService({ name: uniqueName('svc'), transport, logger: silentLogger });
    const got: number[] = [];
    service.on(submit, (o) => void got.push(o.id));
    try {
      await service.start();
      await service.publish(submit, { id: 7, lines: [] });
      await waitFor(() => got.length === 1, 'the message', 15_000);
      expect(connected.length).toBeGreaterThan(0);
      expect(connected.every((u) => u.includes(`:${broker.port || 5672}/`))).toBe(true);
    } finally {
      await service.stop();
      await transport.deleteTopology(service.topology(), { exchanges: true }).catch(() => {});
      await transport.close();
    }
  });
});
