import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineEvent, defineExchange } from '../contracts/event.js';
import type { OutgoingMessage } from '../envelope/envelope.js';
import { envelopeToProperties } from '../envelope/envelope.js';
import { ConfigError, ValidationError } from '../errors.js';
import { silentLogger } from '../logger.js';
import { waitFor } from '../testing/conformance.js';
import { MemoryBroker } from '../transports/memory/broker.js';
import type { Transport } from '../transports/transport.js';
import type { Outbox, OutboxEntry, OutboxTransaction } from './outbox.js';
import { createService } from './service.js';

const submit = defineEvent(defineExchange('order'), 'submit', z.object({ id: z.number().int() }));
const shipped = defineEvent(defineExchange('logistic'), 'shipped', z.object({ id: z.number() }));

/** An outbox that keeps what it is given, per transaction object. */
function recordingOutbox(): Outbox & { writes: { tx: OutboxTransaction; entry: OutboxEntry }[] } {
  const writes: { tx: OutboxTransaction; entry: OutboxEntry }[] = [];
  return {
    writes,
    async write(tx, entry) {
      writes.push({ tx, entry });
    },
  };
}

/** A memory transport whose publishes are also recorded. */
function recordingTransport(broker: MemoryBroker): Transport & { sent: OutgoingMessage[] } {
  const inner = broker.transport();
  const sent: OutgoingMessage[] = [];
  return Object.assign(Object.create(inner) as Transport, {
    sent,
    publish(message: OutgoingMessage) {
      sent.push(message);
      return inner.publish(message);
    },
  });
}

describe('publish with tx (the outbox seam)', () => {
  it('hands the built message to the outbox and sends nothing', async () => {
    const transport = recordingTransport(new MemoryBroker());
    const outbox = recordingOutbox();
    const order = createService({ name: 'order', transport, outbox, logger: silentLogger });
    const tx = { name: 'a transaction' };
    const envelope = await order.publish(submit, { id: 7 }, { tx, orderingKey: 'order:7' });
    expect(transport.sent).toEqual([]);
    expect(outbox.writes).toHaveLength(1);
    const [{ tx: given, entry }] = outbox.writes as [(typeof outbox.writes)[0]];
    expect(given).toBe(tx);
    expect(entry.envelope).toEqual(envelope);
    expect(entry.orderingKey).toBe('order:7');
    // Exactly what a direct publish sends: same exchange, routing key, body and properties.
    expect(entry.message).toEqual({
      exchange: 'order',
      routingKey: 'order.v1.submit',
      body: Buffer.from('{"id":7}'),
      properties: envelopeToProperties(envelope),
    });
  });

  it('validates first: an invalid payload reaches neither the outbox nor the broker', async () => {
    const transport = recordingTransport(new MemoryBroker());
    const outbox = recordingOutbox();
    const order = createService({ name: 'order', transport, outbox, logger: silentLogger });
    await expect(order.publish(submit, { id: 1.5 }, { tx: {} })).rejects.toBeInstanceOf(
      ValidationError,
    );
    expect(outbox.writes).toEqual([]);
    expect(transport.sent).toEqual([]);
  });

  it('without tx publishes directly, even with an outbox and an ordering key', async () => {
    const broker = new MemoryBroker();
    const transport = recordingTransport(broker);
    const outbox = recordingOutbox();
    const order = createService({
      name: 'order',
      transport,
      outbox,
      logger: silentLogger,
      unroutable: 'ignore',
    });
    await order.publish(submit, { id: 1 }, { orderingKey: 'order:1' });
    expect(outbox.writes).toEqual([]);
    expect(transport.sent).toHaveLength(1);
  });

  it('rejects tx without an outbox, an outbox without write(), and an empty ordering key', async () => {
    const transport = new MemoryBroker().transport();
    const plain = createService({ name: 'order', transport, logger: silentLogger });
    const error = await plain.publish(submit, { id: 1 }, { tx: {} }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).toMatch(/needs an outbox/);
    expect(() => createService({ name: 'order', transport, outbox: {} as Outbox })).toThrow(
      /outbox must have a write\(\) method/,
    );
    const order = createService({ name: 'order', transport, outbox: recordingOutbox() });
    await expect(order.publish(submit, { id: 1 }, { tx: {}, orderingKey: '' })).rejects.toThrow(
      /orderingKey must be a non-empty string/,
    );
  });

  it('passes the outbox failure to the caller', async () => {
    const failing: Outbox = {
      write: () => Promise.reject(new Error('relation "tidings_outbox" does not exist')),
    };
    const order = createService({
      name: 'order',
      transport: new MemoryBroker().transport(),
      outbox: failing,
    });
    await expect(order.publish(submit, { id: 1 }, { tx: {} })).rejects.toThrow(/does not exist/);
  });

  it('from a handler: ctx.publish with tx keeps the correlation and names the cause', async () => {
    const broker = new MemoryBroker();
    const outbox = recordingOutbox();
    const logistic = createService({
      name: 'logistic',
      transport: broker.transport(),
      outbox,
      logger: silentLogger,
    });
    const tx = {};
    logistic.on(submit, async (order, ctx) => {
      await ctx.publish(shipped, { id: order.id }, { tx });
    });
    await logistic.start();
    const order = createService({ name: 'order', transport: broker.transport() });
    const sent = await order.publish(submit, { id: 3 });
    await waitFor(() => outbox.writes.length === 1, 'the handler to write to the outbox');
    const { entry } = outbox.writes[0]!;
    expect(entry.envelope.correlationId).toBe(sent.correlationId);
    expect(entry.envelope.causationId).toBe(sent.id);
    expect(entry.envelope.source).toBe('logistic');
    expect(entry.orderingKey).toBeUndefined();
    await logistic.stop();
  });
});
