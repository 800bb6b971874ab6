import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineEvent, defineExchange } from '../contracts/event.js';
import { HEADERS } from '../envelope/envelope.js';
import { silentLogger } from '../logger.js';
import { waitFor } from '../testing/conformance.js';
import { MemoryBroker } from '../transports/memory/broker.js';
import { createService } from './service.js';

const fixture = JSON.parse(
  readFileSync(new URL('../envelope/fixtures/celery-order-submit.json', import.meta.url), 'utf8'),
);
const Line = z.object({ id: z.number(), quantity: z.number(), price: z.number() });
const Order = z.object({ id: z.number(), lines: z.array(Line) });

function setup(format?: 'celery') {
  const broker = new MemoryBroker();
  const order = defineExchange('order', format ? { format } : {});
  const submit = defineEvent(order, 'submit', Order);
  const got: { id: number; source: string; wire: number }[] = [];
  const billing = createService({
    name: 'billing',
    transport: broker.transport(),
    logger: silentLogger,
  });
  billing.on(
    submit,
    (o, ctx) => void got.push({ id: o.id, source: ctx.envelope.source, wire: ctx.wireVersion }),
  );
  return { broker, submit, got, billing };
}

describe('Celery task protocol v2 on the wire', () => {
  it('publishes in Celery format when the exchange says so, and a Tidings consumer reads it', async () => {
    const { broker, submit, got, billing } = setup('celery');
    await billing.start();
    const producer = createService({ name: 'order', transport: broker.transport() });
    const sent = await producer.publish(submit, {
      id: 1,
      lines: [{ id: 1, quantity: 2, price: 3 }],
    });
    await waitFor(() => got.length === 1, 'the handler');
    expect(got[0]).toEqual({ id: 1, source: 'order', wire: 1 });
    const audit = broker.transport();
    await audit.declare({
      exchanges: ['order'],
      queues: [{ name: 'audit', bindings: [{ exchange: 'order', pattern: '#' }] }],
    });
    await producer.publish(submit, { id: 2, lines: [] }, { id: sent.id });
    const raw = await audit.get('audit');
    expect(JSON.parse(raw!.message.body.toString())).toEqual([
      [],
      { instance: { id: 2, lines: [] } },
      { callbacks: null, errbacks: null, chain: null, chord: null },
    ]);
    expect(raw!.message.properties.headers).toMatchObject({
      task: 'order.v1.submit',
      id: sent.id,
      lang: 'py',
    });
    await billing.stop();
  });

  it('takes a message captured from a real Celery producer, and a mixed stream on one queue', async () => {
    const { broker, submit, got, billing } = setup();
    await billing.start();
    const t = broker.transport();
    await t.publish({
      exchange: 'order',
      routingKey: fixture.routingKey,
      body: Buffer.from(fixture.body),
      properties: fixture.properties,
    });
    const producer = createService({ name: 'order', transport: broker.transport() });
    await producer.publish(submit, { id: 2, lines: [] });
    await producer.publish(submit, { id: 3, lines: [] }, { format: 'celery' });
    await waitFor(() => got.length === 3, 'three orders');
    expect(got.map((g) => g.id).sort()).toEqual([1, 2, 3]);
    expect(got.find((g) => g.id === 1)?.source).toBe(fixture.properties.headers.origin);
    await billing.stop();
  });

  it('dead-letters a malformed Celery message with its reason, and keeps going', async () => {
    const { broker, got, billing } = setup();
    await billing.start();
    const t = broker.transport();
    const bad = (body: string) =>
      t.publish({
        exchange: 'order',
        routingKey: 'order.v1.submit',
        body: Buffer.from(body),
        properties: fixture.properties,
      });
    await bad('[[], {"nothing": 1}, {}]');
    await bad('{"not": "a celery body"}');
    await bad('[[], {"instance": {"id": "x"}}, {}]');
    await bad(fixture.body);
    await waitFor(
      () => broker.depth('billing.order.submit.dlq') === 3 && got.length === 1,
      'three dead letters',
    );
    const reasons: string[] = [];
    for (
      let d = await t.get('billing.order.submit.dlq');
      d;
      d = await t.get('billing.order.submit.dlq')
    ) {
      reasons.push(String(d.message.properties.headers[HEADERS.deadReason]));
      await d.ack();
    }
    expect(reasons.sort()).toEqual(['invalid-celery', 'invalid-celery', 'schema-violation']);
    await billing.stop();
  });
});
