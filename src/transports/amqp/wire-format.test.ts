import { connect as amqplibConnect } from 'amqplib';
import { afterEach, describe, expect, it } from 'vitest';
import { defineEvent, defineExchange } from '../../contracts/event.js';
import { type Envelope, HEADERS } from '../../envelope/envelope.js';
import { uuidv7, uuidv7Time } from '../../envelope/id.js';
import { silentLogger } from '../../logger.js';
import { createService, type Service } from '../../runtime/service.js';
import { brokerReachable, uniqueName } from '../../testing/broker.js';
import { waitFor } from '../../testing/conformance.js';
import { testOrderSchema } from '../../testing/schema.js';
import { type AmqpTransport, amqpTransport } from './index.js';

const url = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const { hostname, port } = new URL(url);
const up = await brokerReachable(hostname, Number(port || 5672), 'RabbitMQ');

describe.skipIf(!up)('wire formats on RabbitMQ', () => {
  const services: Service[] = [];
  const transports: AmqpTransport[] = [];

  afterEach(async () => {
    for (const s of services.splice(0)) {
      await s.stop();
      const admin = amqpTransport({ url, logger: silentLogger });
      await admin.deleteTopology(s.topology(), { exchanges: true }).catch(() => {});
      await admin.close();
    }
    for (const t of transports.splice(0)) await t.close();
  });

  it('reads wire format 1 published by plain amqplib beside format 2 from Tidings, on one queue', async () => {
    const exchange = defineExchange(uniqueName('wire'));
    const submit = defineEvent(exchange, 'submit', testOrderSchema);
    const transport = amqpTransport({ url, logger: silentLogger });
    transports.push(transport);
    const got: { id: number; envelope: Envelope }[] = [];
    const billing = createService({ name: uniqueName('billing'), transport, logger: silentLogger });
    billing.on(submit, (order, ctx) => void got.push({ id: order.id, envelope: ctx.envelope }));
    services.push(billing);
    await billing.start();

    const body = (id: number) => Buffer.from(JSON.stringify({ id, lines: [] }));
    const old = uuidv7();
    const foreign = uuidv7();
    const connection = await amqplibConnect(url);
    try {
      const channel = await connection.createConfirmChannel();
      // 1. Exactly what Tidings 0.1 wrote: every attribute as a ce- header and as a property.
      channel.publish(exchange.name, submit.routingKey(), body(1), {
        persistent: true,
        messageId: old,
        correlationId: 'conversation-1',
        type: submit.routingKey(),
        appId: 'order-0.1',
        timestamp: 1_790_000_000,
        contentType: 'application/json',
        headers: {
          'ce-specversion': '1.0',
          'ce-id': old,
          'ce-source': 'order-0.1',
          'ce-type': submit.routingKey(),
          'ce-time': '2026-09-21T14:13:20.123Z',
          'tidings-causation-id': 'cause-1',
        },
      });
      // 2. Another producer writing CloudEvents headers only, no AMQP properties.
      channel.publish(exchange.name, submit.routingKey(), body(2), {
        headers: {
          'ce-specversion': '1.0',
          'ce-id': foreign,
          'ce-source': 'legacy-shop',
          'ce-type': submit.routingKey(),
          'ce-time': '2026-09-21T14:13:21.000Z',
        },
      });
      await channel.waitForConfirms();
    } finally {
      await connection.close();
    }
    // 3. Format 2, from Tidings itself.
    const producer = createService({ name: uniqueName('order'), transport, logger: silentLogger });
    const sent = await producer.publish(submit, { id: 3, lines: [] });

    await waitFor(() => got.length === 3, 'three messages', 15_000);
    const byId = new Map(got.map((g) => [g.id, g.envelope]));
    expect(byId.get(1)).toMatchObject({
      id: old,
      source: 'order-0.1',
      time: '2026-09-21T14:13:20.123Z',
      correlationId: 'conversation-1',
      causationId: 'cause-1',
      version: 1,
    });
    expect(byId.get(2)).toMatchObject({
      id: foreign,
      source: 'legacy-shop',
      time: '2026-09-21T14:13:21.000Z',
      correlationId: foreign,
    });
    expect(byId.get(3)).toEqual(sent);
  });

  it('writes format 3: the id, type and source as properties only, the time in the id, and says so', async () => {
    const exchange = defineExchange(uniqueName('wire'));
    const submit = defineEvent(exchange, 'submit', testOrderSchema);
    const transport = amqpTransport({ url, logger: silentLogger });
    transports.push(transport);
    const producer = createService({ name: uniqueName('order'), transport, logger: silentLogger });
    const queue = uniqueName('wire-raw');
    const connection = await amqplibConnect(url);
    try {
      const channel = await connection.createChannel();
      await channel.assertExchange(exchange.name, 'topic', { durable: true });
      await channel.assertQueue(queue, { autoDelete: true });
      await channel.bindQueue(queue, exchange.name, '#');
      const sent = await producer.publish(submit, { id: 7, lines: [] });
      type Got = Exclude<Awaited<ReturnType<typeof channel.get>>, false>;
      let message: Got | undefined;
      const deadline = Date.now() + 15_000;
      while (!message && Date.now() < deadline) {
        const m = await channel.get(queue, { noAck: true });
        if (m) message = m;
        else await new Promise((r) => setTimeout(r, 20));
      }
      if (!message) throw new Error('the message did not arrive');
      expect(message.properties).toMatchObject({
        messageId: sent.id,
        type: submit.routingKey(),
        appId: producer.name,
        contentType: 'application/json',
        correlationId: undefined,
        timestamp: Math.floor(Date.parse(sent.time) / 1000),
      });
      // One header: the id is a UUIDv7 made at the message's millisecond, which is its time.
      expect(message.properties.headers).toEqual({ [HEADERS.wire]: '3' });
      expect(uuidv7Time(sent.id)).toBe(Date.parse(sent.time));
      await channel.deleteExchange(exchange.name);
    } finally {
      await connection.close();
    }
  });
});
